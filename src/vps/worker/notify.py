"""PostgreSQL LISTEN/NOTIFY: wake an idle worker the moment new work is committed."""

from __future__ import annotations

import asyncio

from vps.db.engine import Database
from vps.db.listen import listen
from vps.db.repositories.servers import WORK_CHANNEL


async def listen_for_work(
    database: Database, wake: asyncio.Event, stopping: asyncio.Event, retry_seconds: float
) -> None:
    """Set `wake` on every notification of new work until `stopping` is set, so an idle
    worker starts within milliseconds instead of at its next poll. Reconnects when the
    connection is lost (and wakes the worker then, for anything announced meanwhile)."""
    await listen(database, WORK_CHANNEL, wake.set, stopping, retry_seconds)
