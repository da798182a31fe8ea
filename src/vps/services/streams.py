"""Delivering events to the streams and long-polls of one API process.

One `EventHub` per process reads the event table after its cursor (only while someone
listens) and hands each new event to the subscriptions it matches. It looks when a write
in this process committed events, on PostgreSQL when any process announced some
(`LISTEN vps_events`), and every `poll_seconds` otherwise (a worker in another process on
SQLite). Because event ids are given in commit order, "everything after my cursor" never
misses an event that commits later with a smaller id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import orjson

from vps.db.engine import Database
from vps.db.listen import listen
from vps.db.repositories import events as stored
from vps.db.repositories.events import EVENTS_CHANNEL, LogHead, StoredEvent
from vps.domain.errors import TooManyStreams
from vps.domain.states import ServerStatus
from vps.services.events import SERVER_STATUS

log = logging.getLogger("vps.api")

# Events read per query; a stream replaying from the database reads as many per batch.
BATCH = 500
# A subscriber this far behind is dropped (its stream ends; the client resumes with
# Last-Event-ID from the database) rather than buffering without bound.
MAX_BACKLOG = 10_000

T = TypeVar("T")


@dataclass(eq=False)
class Subscription:
    """A listener's queue of new events of one account (and optionally one server)."""

    account_id: int
    server_id: int | None
    # The hub's cursor when the subscription started: every later event is delivered to
    # the queue, every earlier one is the reader's to replay from the database.
    start: int
    # A stream (counted against the account's limit) rather than a long-poll.
    is_stream: bool = False
    queue: asyncio.Queue[StoredEvent] = field(default_factory=asyncio.Queue)
    dropped: bool = False

    def matches(self, event: StoredEvent) -> bool:
        return event.account_id == self.account_id and (
            self.server_id is None or event.server_id == self.server_id
        )

    async def next(self, within: float) -> StoredEvent | None:
        """The next event, or None after `within` seconds without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), within)
        except TimeoutError:
            return None


class EventHub:
    def __init__(self, database: Database, poll_seconds: float) -> None:
        self.database = database
        self._poll_seconds = poll_seconds
        self._subscriptions: set[Subscription] = set()
        self._cursor = 0
        self._lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        database.event_listeners.append(self.wake)

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def head(self) -> LogHead:
        async with self.database.read() as session:
            return await stored.head(session)

    async def subscribe(
        self, account_id: int, server_id: int | None = None, *, stream_limit: int | None = None
    ) -> Subscription:
        """A new subscription. With `stream_limit`, it is a stream, refused (TooManyStreams)
        when the account has that many open on this process already."""
        self._start()
        assert self._lock is not None
        async with self._lock:
            if stream_limit is not None:
                self._check_stream_limit(account_id, stream_limit)
            if not self._subscriptions:
                # Idle until now: start from the present rather than read the past.
                self._cursor = (await self.head()).last_id
            subscription = Subscription(
                account_id, server_id, self._cursor, is_stream=stream_limit is not None
            )
            self._subscriptions.add(subscription)
        return subscription

    def _check_stream_limit(self, account_id: int, limit: int) -> None:
        open_streams = sum(
            1 for s in self._subscriptions if s.is_stream and s.account_id == account_id
        )
        if open_streams >= limit:
            raise TooManyStreams(
                f"The account has {open_streams} event streams open already: close one "
                "(one stream of the whole account follows every server)."
            )

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def _start(self) -> None:
        if self._tasks:
            return
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._run(), name="vps-event-hub"))
        if not self.database.is_sqlite:
            self._tasks.append(
                asyncio.create_task(
                    listen(self.database, EVENTS_CHANNEL, self.wake, self._stopping, 1.0),
                    name="vps-event-listener",
                )
            )

    async def close(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()
            if not self._subscriptions:
                continue
            try:
                while await self._deliver() == BATCH:
                    pass
            except Exception:  # the database is away: streams wait, and we try again
                log.warning("could not read new events", exc_info=True)

    async def _deliver(self) -> int:
        assert self._lock is not None
        async with self._lock:
            async with self.database.read() as session:
                batch = await stored.after(session, self._cursor, BATCH)
            for event in batch:
                for subscription in list(self._subscriptions):
                    if not subscription.matches(event):
                        continue
                    if subscription.queue.qsize() >= MAX_BACKLOG:
                        subscription.dropped = True
                        self._subscriptions.discard(subscription)
                        continue
                    subscription.queue.put_nowait(event)
            if batch:
                self._cursor = batch[-1].id
            return len(batch)


@dataclass(frozen=True)
class Reset:
    """The stream cannot replay everything after the client's Last-Event-ID."""

    reason: str


HEARTBEAT = None


async def follow(
    hub: EventHub,
    subscription: Subscription,
    last_event_id: int | None,
    heartbeat_seconds: float,
) -> AsyncIterator[StoredEvent | Reset | None]:
    """The events of a stream, in id order: first those after `last_event_id` still kept
    (replayed from the database), then new ones as they commit; `None` (a heartbeat) after
    `heartbeat_seconds` without one. A server's stream ends after its `deleted` event; any
    stream ends if its reader fell too far behind (it resumes from the database).

    The caller subscribed already (before answering), and this unsubscribes at the end."""
    try:
        if last_event_id is not None:
            async for replayed in _replay(hub, subscription, last_event_id):
                yield replayed
        while not (subscription.dropped and subscription.queue.empty()):
            event = await subscription.next(heartbeat_seconds)
            if event is None:
                yield HEARTBEAT
                continue
            yield event
            if subscription.server_id is not None and _is_deletion(event):
                return
    finally:
        hub.unsubscribe(subscription)


async def _replay(
    hub: EventHub, subscription: Subscription, last_event_id: int
) -> AsyncIterator[StoredEvent | Reset]:
    head = await hub.head()
    if last_event_id > head.last_id:
        yield Reset(f"Event {last_event_id} does not exist: following from now.")
        return
    if last_event_id < head.pruned_through:
        yield Reset(
            f"Events up to {head.pruned_through} are no longer kept: some changes after "
            f"event {last_event_id} were missed; read the current state again."
        )
    cursor = max(last_event_id, head.pruned_through)
    while cursor < subscription.start:
        async with hub.database.read() as session:
            batch = await stored.after(
                session,
                cursor,
                BATCH,
                account_id=subscription.account_id,
                server_id=subscription.server_id,
            )
        batch = [event for event in batch if event.id <= subscription.start]
        if not batch:
            return
        for event in batch:
            yield event
        cursor = batch[-1].id


def _is_deletion(event: StoredEvent) -> bool:
    return (
        event.type == SERVER_STATUS
        and orjson.loads(event.data).get("status") == ServerStatus.DELETED.value
    )


async def wait_for(
    hub: EventHub,
    account_id: int,
    server_id: int | None,
    check: Callable[[], Awaitable[tuple[bool, T]]],
    seconds: float,
) -> T:
    """Long-poll: `check()` now, and again after each event of the server (or account),
    until it says done or `seconds` pass; returns its last answer.

    Subscribing before the first check means no change can slip in between."""
    subscription = await hub.subscribe(account_id, server_id)
    try:
        deadline = time.monotonic() + seconds
        done, result = await check()
        while not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or subscription.dropped:
                break
            if await subscription.next(remaining) is None:
                break
            # Several events may have arrived: one read covers them all.
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            done, result = await check()
        if not done:
            _, result = await check()
        return result
    finally:
        hub.unsubscribe(subscription)
