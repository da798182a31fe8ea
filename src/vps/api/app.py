"""The ASGI application factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vps import __version__
from vps.api.bodylimit import BodyLimitMiddleware
from vps.api.deps import AppState
from vps.api.errors import install_error_handlers
from vps.api.middleware import RequestContextMiddleware
from vps.api.openapi import install_openapi
from vps.api.ratelimit import RateLimitMiddleware, build_rate_limiter
from vps.api.replay import install_replay_handler
from vps.api.routes import ROUTERS
from vps.api.routes import emulator as emulator_routes
from vps.api.routes import panel as panel_routes
from vps.config import Settings
from vps.db.engine import Database
from vps.services.emulator import EmulatorControls
from vps.services.streams import EventHub

DESCRIPTION = """\
The VPS.org Servers API: create, configure, manage and monitor virtual private servers.

Every request carries `Authorization: Bearer <token>`. Every error has the same shape:
`{"error": {"code", "message", "request_id", ...}}`; a `400` names the offending `fields`,
a `402` says how many credits are `required` and `available`.
"""


def create_app(
    settings: Settings,
    database: Database,
    *,
    wake_worker: Callable[[], None] = lambda: None,
    lifespan: Callable[[FastAPI], AsyncIterator[None]] | None = None,
    emulator: EmulatorControls | None = None,
) -> FastAPI:
    """Build the API around an existing database handle.

    `wake_worker` is called after each committed write, so a worker in the same process
    starts on new work at once; `lifespan` runs around the application's life (the embedded
    worker of `vps serve`); `emulator`, when given, mounts the emulator's controls.
    """

    hub = EventHub(database, settings.event_poll_seconds)

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        outer = asynccontextmanager(lifespan)(app) if lifespan else contextlib.nullcontext()
        async with outer:
            try:
                yield
            finally:  # before the database goes
                await hub.close()

    app = FastAPI(
        title="VPS.org Servers API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        redirect_slashes=False,
        lifespan=_lifespan,
    )
    app.state.vps = AppState(
        settings=settings,
        database=database,
        wake_worker=wake_worker,
        events=hub,
        emulator=emulator,
    )
    routers = (
        *ROUTERS,
        *((panel_routes.router,) if settings.panel else ()),
        *((emulator_routes.router,) if emulator else ()),
    )
    for router in routers:
        app.include_router(router)
    install_error_handlers(app, routers)
    install_replay_handler(app)
    install_openapi(app)
    # The last added runs first: a request gets its id, is counted, then has its body capped.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    limiter = build_rate_limiter(settings)
    if limiter is not None:
        app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(RequestContextMiddleware)
    return app
