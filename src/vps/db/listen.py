"""PostgreSQL LISTEN: call back on every notification of a channel, reconnecting as needed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from vps.db.engine import Database

log = logging.getLogger("vps.db")


async def listen(
    database: Database,
    channel: str,
    on_notify: Callable[[], None],
    stopping: asyncio.Event,
    retry_seconds: float,
) -> None:
    """Call `on_notify` for every notification on `channel` until `stopping` is set.

    Reconnects when the connection is lost, and calls `on_notify` once connected (for
    anything announced while it was not listening)."""
    while not stopping.is_set():
        lost = asyncio.Event()
        try:
            async with database.engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver_connection: Any = raw.driver_connection

                def notified(*_args: Any) -> None:
                    on_notify()

                def on_lost(*_args: Any, lost: asyncio.Event = lost) -> None:
                    lost.set()

                await driver_connection.add_listener(channel, notified)
                driver_connection.add_termination_listener(on_lost)
                on_notify()
                stop = asyncio.create_task(stopping.wait())
                dropped = asyncio.create_task(lost.wait())
                await asyncio.wait({stop, dropped}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                dropped.cancel()
                # The connection goes back to the pool: leave it as we found it.
                with contextlib.suppress(Exception):
                    driver_connection.remove_termination_listener(on_lost)
                    await driver_connection.remove_listener(channel, notified)
        except (OperationalError, DBAPIError, OSError) as error:
            log.warning("listener on %s lost its connection: %s", channel, type(error).__name__)
        if not stopping.is_set():
            await asyncio.sleep(retry_seconds)
