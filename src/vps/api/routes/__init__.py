"""The API's routers, in the order they are mounted."""

from vps.api.routes import actions, audit, catalog, events, servers

ROUTERS = (servers.router, actions.router, catalog.router, audit.router, events.router)
