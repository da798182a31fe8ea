"""`vps`: run the API and the worker, migrate the database, administer accounts.

Every `vps` invocation imports this module, and most of them are user commands that only
talk HTTP. So the server side (uvicorn, the app, the database, the services) is imported
inside the operator commands that use it, not here: a user command starts without it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from vps.cli.admin import accounts_app, catalog_app, credits_app, tokens_app
from vps.cli.common import fail, run_with_database, settings
from vps.cli.hosts import hosts_app
from vps.cli.user import USER_COMMANDS, servers_app, ssh_keys_app

if TYPE_CHECKING:
    from vps.config import Settings
    from vps.db.engine import Database

app = typer.Typer(
    help="VPS.org Servers API control plane.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(credits_app, name="credits")
app.add_typer(tokens_app, name="tokens")
app.add_typer(catalog_app, name="catalog")
app.add_typer(hosts_app, name="hosts")
app.add_typer(servers_app, name="servers")
app.add_typer(ssh_keys_app, name="ssh-keys")
for _name, _command in USER_COMMANDS:
    app.command(_name)(_command)


# How long a stopping `vps serve` lets open requests finish. Event streams never finish by
# themselves (their clients resume elsewhere with Last-Event-ID), nor do long-polls soon.
SHUTDOWN_GRACE_SECONDS = 5


def _configure_logging(level: str) -> None:
    import logging.config

    from vps.cli.logs import logging_config

    logging.config.dictConfig(logging_config(level))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _prepare(config: Settings, database: Database) -> str | None:
    """Migrate, and on a brand-new local SQLite database create the demo account.

    Returns the demo token when one was created.
    """
    from vps.db import migrate
    from vps.db.types import utcnow
    from vps.domain.money import parse_amount
    from vps.services import accounts

    if config.auto_migrate:
        await migrate.upgrade(database)
    elif not await migrate.is_up_to_date(database):
        raise fail("the database schema is not up to date: run `vps db upgrade`")
    if not (config.demo and config.is_sqlite and _is_loopback(config.host)):
        return None
    async with database.write() as session:
        if not await accounts.is_empty(session):
            return None
        now = utcnow()
        account = await accounts.create_account(
            session, "demo", parse_amount(config.demo_credits), now
        )
        plain, _ = await accounts.create_token(
            session, account.name, now, read_only=False, expires_in=None, label="demo"
        )
    return plain


def _print_welcome(config: Settings, token: str) -> None:
    base = f"http://{config.host}:{config.port}"
    typer.echo(
        f"""
First start: created the account 'demo' with {config.demo_credits} credits and this API token
(shown once; `vps tokens create demo` makes another):

    export VPS_TOKEN={token}

Try it:

    curl -H "Authorization: Bearer $VPS_TOKEN" {base}/api/v1/servers/
    curl -X POST {base}/api/v1/servers/ -H "Authorization: Bearer $VPS_TOKEN" \\
      -H "Content-Type: application/json" \\
      -d '{{"name": "web-server-02", "plan_id": 1, "os_id": 5, "location": "us-west"}}'

Interactive docs: {base}/api/v1/docs
"""
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (VPS_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (VPS_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="API processes")] = 1,
) -> None:
    """Run the API, with the lifecycle worker embedded (VPS_EMBEDDED_WORKER)."""
    import logging

    import uvicorn

    from vps.cli.logs import logging_config
    from vps.config import Settings
    from vps.runtime import build_app, build_database

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    config = Settings(**overrides)  # type: ignore[arg-type]
    _configure_logging(config.log_level)
    _check_driver(config)
    database = build_database(config)

    async def prepare() -> str | None:
        try:
            return await _prepare(config, database)
        finally:
            await database.dispose()

    token = asyncio.run(prepare())
    if token:
        _print_welcome(config, token)
    if config.emulator_controls:
        if workers > 1:
            raise fail("VPS_EMULATOR_CONTROLS needs one API process: each has its own simulator")
        logging.getLogger("vps").warning(
            "emulator controls are on at /_emulator/ (unauthenticated): never in production"
        )
    log_level = config.log_level.lower()
    if workers == 1:
        uvicorn.run(
            build_app(config),
            host=config.host,
            port=config.port,
            log_level=log_level,
            log_config=logging_config(log_level),
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )
        return
    # Several processes: each builds its own app from the environment.
    os.environ.update(VPS_HOST=config.host, VPS_PORT=str(config.port))
    uvicorn.run(
        "vps.runtime:app_from_environment",
        factory=True,
        host=config.host,
        port=config.port,
        workers=workers,
        log_level=log_level,
        log_config=logging_config(log_level),
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )


def _check_driver(config: Settings) -> None:
    from vps.drivers.registry import DriverUnavailable
    from vps.runtime import check_driver

    try:
        check_driver(config)
    except DriverUnavailable as error:
        raise fail(str(error)) from None


@app.command()
def worker() -> None:
    """Run a lifecycle worker alone (any number may run against one database)."""
    from vps.db import migrate
    from vps.runtime import build_worker

    config = settings()
    _configure_logging(config.log_level)
    _check_driver(config)

    async def main(database: Database) -> None:
        if not await migrate.is_up_to_date(database):
            raise fail("the database schema is not up to date: run `vps db upgrade`")
        engine = build_worker(config, database)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop)
        try:
            await engine.run()
        finally:
            await engine.hypervisors.close()

    run_with_database(main)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    from vps.db import migrate

    async def main(database: Database) -> None:
        await migrate.upgrade(database)

    run_with_database(main)
    typer.echo("database is up to date")


def main() -> None:
    app()
