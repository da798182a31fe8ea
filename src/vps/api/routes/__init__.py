"""The API's routers, in the order they are mounted."""

from vps.api.routes import catalog, servers

ROUTERS = (servers.router, catalog.router)
