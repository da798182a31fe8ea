"""PostgreSQL LISTEN/NOTIFY: wake an idle worker the moment new work is committed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from vps.db.engine import Database
from vps.db.repositories.servers import WORK_CHANNEL

log = logging.getLogger("vps.worker")


async def listen_for_work(
    database: Database, wake: asyncio.Event, stopping: asyncio.Event, retry_seconds: float
) -> None:
    """Set `wake` on every notification of new work until `stopping` is set, so an idle
    worker starts within milliseconds instead of at its next poll. Reconnects when the
    connection is lost (and wakes the worker then, for anything announced meanwhile)."""
    while not stopping.is_set():
        lost = asyncio.Event()
        try:
            async with database.engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver_connection: Any = raw.driver_connection

                def on_work(*_args: Any) -> None:
                    wake.set()

                def on_lost(*_args: Any, lost: asyncio.Event = lost) -> None:
                    lost.set()

                await driver_connection.add_listener(WORK_CHANNEL, on_work)
                driver_connection.add_termination_listener(on_lost)
                wake.set()
                stop = asyncio.create_task(stopping.wait())
                dropped = asyncio.create_task(lost.wait())
                await asyncio.wait({stop, dropped}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                dropped.cancel()
                # The connection goes back to the pool: leave it as we found it.
                with contextlib.suppress(Exception):
                    driver_connection.remove_termination_listener(on_lost)
                    await driver_connection.remove_listener(WORK_CHANNEL, on_work)
        except (OperationalError, DBAPIError, OSError) as error:
            log.warning("work listener lost its connection: %s", type(error).__name__)
        if not stopping.is_set():
            await asyncio.sleep(retry_seconds)
