"""Event streams (SSE) and long-polls, over real HTTP connections to a running server.

The streams are read from a real uvicorn (`vps.testing.Emulator`) on the test database, so
the worker of the session and the emulator's own change servers side by side, as several
processes would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from tests.factories import Factory, Tenant
from vps.config import Settings
from vps.db.engine import Database
from vps.db.models import ServerEvent
from vps.db.repositories import events as stored
from vps.db.types import utcnow
from vps.testing import Emulator

SERVERS = "/api/v1/servers/"
DEADLINE = 20.0


@pytest.fixture(scope="module")
def live(settings: Settings) -> Iterator[Emulator]:
    """A real HTTP server on the test database (with a worker of its own)."""
    with Emulator(
        database_url=settings.database_url,
        event_heartbeat_seconds=0.3,
        event_streams_per_account=3,
        sim_provision_seconds=0.05,
        sim_action_seconds=0.02,
        sim_delete_seconds=0.01,
    ) as emulator:
        yield emulator


@pytest.fixture
async def http(live: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=DEADLINE) as client:
        yield client


async def live_tenant(
    factory: Factory, http: httpx.AsyncClient, credits: str = "1000.00"
) -> Tenant:
    tenant = await factory.tenant(credits)
    return Tenant(tenant.name, tenant.token, http)


@dataclass
class Stream:
    """An event stream read in the background: events as dicts, in order of arrival."""

    status_code: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: bool = False
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(
        self, condition: Callable[[list[dict[str, Any]]], bool], what: str
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + DEADLINE
        while not condition(self.events):
            if self.ended:
                raise AssertionError(f"the stream ended before {what}: {self.events}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}: {self.events}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self.events

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["_event"] == kind]


def parse_block(lines: list[str]) -> dict[str, Any] | None:
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    if "data" not in fields:
        return None
    event: dict[str, Any] = orjson.loads(fields["data"])
    event["_event"] = fields.get("event", "message")
    event["_id"] = fields.get("id")
    return event


@contextlib.asynccontextmanager
async def open_stream(
    tenant: Tenant, path: str = "/api/v1/events/", last_event_id: str | None = None
) -> AsyncIterator[Stream]:
    """Read the stream until the block ends; the response headers have arrived (so the
    subscription exists) when the block starts."""
    stream = Stream()
    headers = dict(tenant.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    opened = asyncio.Event()

    async def read() -> None:
        try:
            async with tenant.http.stream("GET", path, headers=headers) as response:
                stream.status_code = response.status_code
                opened.set()
                block: list[str] = []
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        stream.comments.append(line)
                        stream._arrived.set()
                    elif line:
                        block.append(line)
                    else:
                        event = parse_block(block)
                        block = []
                        if event is not None:
                            stream.events.append(event)
                            stream._arrived.set()
        finally:
            stream.ended = True
            opened.set()
            stream._arrived.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(opened.wait(), DEADLINE)
    try:
        yield stream
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def statuses(stream: Stream, server_id: int) -> list[str]:
    return [
        event["status"]
        for event in stream.of_type("server.status")
        if event["server_id"] == server_id
    ]


def has_status(server_id: int, status: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: any(
        e["_event"] == "server.status" and e["server_id"] == server_id and e["status"] == status
        for e in events
    )


# Streams ---------------------------------------------------------------------------------


async def test_the_account_stream_follows_a_server_from_create_to_delete(
    factory: Factory, http: httpx.AsyncClient
) -> None:
    tenant = await live_tenant(factory, http)
    async with open_stream(tenant) as stream:
        assert stream.status_code == 200
        created = await tenant.create_server(name="streamed")
        server_id = created["id"]
        await stream.until(has_status(server_id, "active"), "active")
        deleted = await tenant.delete(f"{SERVERS}{server_id}/")
        assert deleted.status_code == 204
        await stream.until(has_status(server_id, "deleted"), "deleted")

    assert statuses(stream, server_id) == ["provisioning", "active", "deleting", "deleted"]
    ids = [int(event["_id"]) for event in stream.events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(event["id"] == int(event["_id"]) for event in stream.events)
    actions = [
        (event["action"]["kind"], event["action"]["status"])
        for event in stream.of_type("action.status")
    ]
    assert actions == [
        ("create", "running"),
        ("create", "succeeded"),
        ("delete", "running"),
        ("delete", "succeeded"),
    ]
    # An action event carries the action as GET /actions/{id}/ shows it.
    last = stream.of_type("action.status")[-1]["action"]
    shown = await tenant.get(f"/api/v1/actions/{last['id']}/")
    assert shown.json() == last
    transitions = [(e["previous_status"], e["status"]) for e in stream.of_type("server.status")]
    assert transitions == [
        (None, "provisioning"),
        ("provisioning", "active"),
        ("active", "deleting"),
        ("deleting", "deleted"),
    ]


async def test_an_edit_is_an_event_with_the_new_values(
    factory: Factory, http: httpx.AsyncClient
) -> None:
    tenant = await live_tenant(factory, http)
    server = await tenant.active_server(name="before")
    async with open_stream(tenant, f"{SERVERS}{server['id']}/events/") as stream:
        patched = await tenant.patch(f"{SERVERS}{server['id']}/", json={"name": "after"})
        assert patched.status_code == 200
        replaced = await tenant.put(
            f"{SERVERS}{server['id']}/",
            json={"name": "again", "hostname": "again.example.com", "backups_enabled": True},
        )
        assert replaced.status_code == 200
        # Nothing changed, nothing said: an empty PATCH is no edit.
        assert (await tenant.patch(f"{SERVERS}{server['id']}/", json={})).status_code == 200
        await stream.until(lambda events: len(stream.of_type("server.updated")) >= 2, "edits")
    edits = [event["changes"] for event in stream.of_type("server.updated")]
    assert edits == [
        {"name": "after"},
        {"name": "again", "hostname": "again.example.com", "backups_enabled": True},
    ]
    assert all(event["server_id"] == server["id"] for event in stream.of_type("server.updated"))


async def test_a_server_stream_ends_after_the_server_is_deleted(
    factory: Factory, http: httpx.AsyncClient
) -> None:
    tenant = await live_tenant(factory, http)
    server = await tenant.active_server(name="ends")
    other = await tenant.create_server(name="other")
    async with open_stream(tenant, f"{SERVERS}{server['id']}/events/") as stream:
        assert stream.status_code == 200
        assert (await tenant.post(f"{SERVERS}{server['id']}/reboot/")).status_code == 200
        await stream.until(has_status(server["id"], "active"), "rebooted")
        assert (await tenant.delete(f"{SERVERS}{server['id']}/")).status_code == 204
        await stream.until(lambda _events: stream.ended, "the stream to end")
    assert statuses(stream, server["id"]) == ["rebooting", "active", "deleting", "deleted"]
    # Only this server's events: the other server's build is not in it.
    assert {event["server_id"] for event in stream.events} == {server["id"]}
    assert other["id"] != server["id"]


async def test_a_stream_resumed_with_last_event_id_replays_exactly_what_was_missed(
    factory: Factory, http: httpx.AsyncClient
) -> None:
    tenant = await live_tenant(factory, http)
    async with open_stream(tenant) as stream:
        created = await tenant.create_server(name="resumed")
        server_id = created["id"]
        await stream.until(has_status(server_id, "active"), "active")
        seen = [int(event["_id"]) for event in stream.events]

    # While nobody listens: a stop, to the end.
    assert (await tenant.post(f"{SERVERS}{server_id}/stop/")).status_code == 200
    await tenant.wait_for_status(server_id, "stopped")

    async with open_stream(tenant, last_event_id=str(seen[-1])) as resumed:
        await resumed.until(has_status(server_id, "stopped"), "the missed stop")
        assert (await tenant.post(f"{SERVERS}{server_id}/start/")).status_code == 200
        await resumed.until(has_status(server_id, "active"), "the new start")
    replayed = [int(event["_id"]) for event in resumed.events]
    assert min(replayed) > seen[-1]
    assert replayed == sorted(replayed) and len(set(replayed)) == len(replayed)
    assert statuses(resumed, server_id) == ["stopping", "stopped", "starting", "active"]

    # From the very start: everything the account ever had, once each, in order.
    async with open_stream(tenant, last_event_id="0") as everything:
        await everything.until(has_status(server_id, "active"), "the replay")
        await everything.until(
            lambda events: (
                len([e for e in events if e["_event"] != "reset"]) >= len(seen) + len(replayed)
            ),
            "every event",
        )
    everything_ids = [int(e["_id"]) for e in everything.events if e["_event"] != "reset"]
    assert everything_ids == seen + replayed


async def test_streams_never_carry_another_accounts_events(
    factory: Factory, http: httpx.AsyncClient
) -> None:
    owner = await live_tenant(factory, http)
    outsider = await live_tenant(factory, http)
    async with open_stream(outsider) as stream:
        theirs = await owner.create_server(name="not-yours")
        mine = await outsider.create_server(name="mine")
        await stream.until(has_status(mine["id"], "active"), "own server active")
        await owner.wait_for_status(theirs["id"], "active")
    assert {event["server_id"] for event in stream.events} == {mine["id"]}
    # Nor by asking for the other account's server by id: as unknown as any id.
    foreign = await outsider.get(f"{SERVERS}{theirs['id']}/events/")
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "not_found"


async def test_an_idle_stream_sends_heartbeats(factory: Factory, http: httpx.AsyncClient) -> None:
    tenant = await live_tenant(factory, http)
    async with open_stream(tenant) as stream:
        await stream.until(lambda _events: len(stream.comments) >= 2, "two heartbeats")
    assert stream.comments[:2] == [": heartbeat", ": heartbeat"]
    assert stream.events == []


async def test_an_account_may_hold_only_so_many_streams(
    factory: Factory, http: httpx.AsyncClient
) -> None:
    tenant = await live_tenant(factory, http)
    server = await tenant.create_server(name="watched")
    async with (
        open_stream(tenant) as first,
        open_stream(tenant) as second,
        open_stream(tenant, f"{SERVERS}{server['id']}/events/") as third,
    ):
        assert [first.status_code, second.status_code, third.status_code] == [200] * 3
        refused = await tenant.get("/api/v1/events/")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_streams"
        assert refused.headers["Retry-After"] == "5"
        # Long-polls are not streams: still answered.
        polled = await tenant.get(f"{SERVERS}{server['id']}/", params={"wait": 0.1})
        assert polled.status_code == 200
        # Another account is not affected.
        other = await live_tenant(factory, http)
        async with open_stream(other) as theirs:
            assert theirs.status_code == 200

    # Closed streams free their places (once the server has seen the disconnect).
    async def reopened() -> bool:
        async with open_stream(tenant) as again:
            return again.status_code == 200

    deadline = time.monotonic() + DEADLINE
    while not await reopened():
        assert time.monotonic() < deadline, "a closed stream kept its place"
        await asyncio.sleep(0.1)


async def test_a_refused_change_has_no_event(factory: Factory, http: httpx.AsyncClient) -> None:
    tenant = await live_tenant(factory, http, credits="1.00")
    async with open_stream(tenant) as stream:
        refused = await tenant.post(
            SERVERS, json={"name": "too-dear", "plan_id": 1, "os_id": 5, "location": "us-west"}
        )
        assert refused.status_code == 402
        # A heartbeat after the refusal: anything the refusal had sent would be before it.
        count = len(stream.comments)
        await stream.until(lambda _events: len(stream.comments) > count, "a heartbeat")
    assert stream.events == []


async def test_last_event_id_must_be_an_event_id(
    factory: Factory, http: httpx.AsyncClient, database: Database
) -> None:
    tenant = await live_tenant(factory, http)
    for bad in ("abc", "-1", "1.5", "99999999999999999999"):
        response = await tenant.get("/api/v1/events/", headers={"Last-Event-ID": bad})
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["fields"][0]["field"] == "Last-Event-ID"
    async with database.read() as session:
        head = await stored.head(session)
    future = str(head.last_id + 1_000_000)
    async with open_stream(tenant, last_event_id=future) as stream:
        await stream.until(lambda events: bool(events), "the reset")
    assert stream.events[0]["_event"] == "reset"
    assert "does not exist" in stream.events[0]["reason"]


async def test_a_resume_from_before_pruned_events_is_told_to_read_again(
    factory: Factory, http: httpx.AsyncClient, database: Database
) -> None:
    tenant = await live_tenant(factory, http)
    async with open_stream(tenant) as stream:
        server = await tenant.create_server(name="pruned")
        await stream.until(has_status(server["id"], "active"), "active")
    first = int(stream.events[0]["_id"])
    # Every event so far goes, as the retention sweep would delete them.
    async with database.write() as session:
        while await stored.prune(session, utcnow() + timedelta(seconds=1), 1000):
            pass
    async with database.read() as session:
        head = await stored.head(session)
    assert head.pruned_through >= int(stream.events[-1]["_id"])
    async with open_stream(tenant, last_event_id=str(first - 1)) as resumed:
        assert (await tenant.post(f"{SERVERS}{server['id']}/reboot/")).status_code == 200
        await resumed.until(has_status(server["id"], "active"), "the reboot")
    assert resumed.events[0]["_event"] == "reset"
    assert "no longer kept" in resumed.events[0]["reason"]
    assert statuses(resumed, server["id"]) == ["rebooting", "active"]


async def test_concurrent_writes_reach_a_stream_once_each_in_id_order(
    factory: Factory, http: httpx.AsyncClient
) -> None:
    """Ids are given in commit order, so no event can commit behind a reader's cursor."""
    tenant = await live_tenant(factory, http)
    async with open_stream(tenant) as stream:
        created = await asyncio.gather(
            *(tenant.create_server(name=f"burst-{n}") for n in range(12))
        )
        ids = {server["id"] for server in created}
        await stream.until(
            lambda events: (
                {
                    e["server_id"]
                    for e in events
                    if e["_event"] == "server.status" and e["status"] == "active"
                }
                >= ids
            ),
            "every server active",
        )
    event_ids = [int(event["_id"]) for event in stream.events]
    assert event_ids == sorted(event_ids) and len(set(event_ids)) == len(event_ids)
    for server_id in ids:
        assert statuses(stream, server_id) == ["provisioning", "active"]


async def test_the_worker_deletes_events_past_their_retention(
    factory: Factory, database: Database, http: httpx.AsyncClient
) -> None:
    from vps.drivers.simulator import SimulatorDriver
    from vps.worker.engine import Worker, WorkerConfig

    tenant = await live_tenant(factory, http)
    await tenant.active_server(name="old-news")
    worker = Worker(database, SimulatorDriver(), WorkerConfig(event_retention_seconds=0))
    await worker.prune_events()
    async with database.read() as session:
        left = await session.scalar(
            select(func.count()).select_from(ServerEvent).where(ServerEvent.created_at < utcnow())
        )
    assert left == 0


# Long-polls (the in-process client: they are ordinary responses) --------------------------


async def test_an_action_long_poll_answers_when_the_action_finishes(factory: Factory) -> None:
    tenant = await factory.tenant()
    created = await tenant.create_server(name="long-poll")
    await factory.force_status(created["id"], "provisioning")  # held: no worker takes it
    action_id = created["action"]["id"]

    started = time.monotonic()
    held = await tenant.get(f"/api/v1/actions/{action_id}/", params={"wait": 0.4})
    assert held.status_code == 200
    assert held.json()["status"] == "running"
    assert time.monotonic() - started >= 0.4

    waiting = asyncio.create_task(tenant.get(f"/api/v1/actions/{action_id}/", params={"wait": 30}))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    started = time.monotonic()
    await factory.release_hold(created["id"])
    answered = await waiting
    assert answered.status_code == 200
    assert answered.json()["status"] == "succeeded"
    assert time.monotonic() - started < 10

    # A finished action answers at once.
    started = time.monotonic()
    again = await tenant.get(f"/api/v1/actions/{action_id}/", params={"wait": 30})
    assert again.json()["status"] == "succeeded"
    assert time.monotonic() - started < 5


async def test_a_server_long_poll_answers_on_the_status_waited_for(factory: Factory) -> None:
    tenant = await factory.tenant()
    created = await tenant.create_server(name="wait-for")
    await factory.force_status(created["id"], "provisioning")
    waiting = asyncio.create_task(
        tenant.get(f"{SERVERS}{created['id']}/", params={"wait_for": "active", "wait": 30})
    )
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await factory.release_hold(created["id"])
    answered = await waiting
    assert answered.status_code == 200
    assert answered.json()["status"] == "active"
    assert answered.headers["ETag"]

    # Settled elsewhere: waiting for `stopped` on an active server answers at once.
    started = time.monotonic()
    settled = await tenant.get(
        f"{SERVERS}{created['id']}/", params={"wait_for": "stopped", "wait": 30}
    )
    assert settled.json()["status"] == "active"
    assert time.monotonic() - started < 5

    # `wait` alone: answered when the status changes.
    changed = asyncio.create_task(tenant.get(f"{SERVERS}{created['id']}/", params={"wait": 30}))
    await asyncio.sleep(0.1)
    assert not changed.done()
    assert (await tenant.post(f"{SERVERS}{created['id']}/stop/")).status_code == 200
    assert (await changed).json()["status"] in ("stopping", "stopped")

    # Nothing happens: the current state when the wait ends.
    await tenant.wait_for_status(created["id"], "stopped")
    started = time.monotonic()
    quiet = await tenant.get(f"{SERVERS}{created['id']}/", params={"wait": 0.3})
    assert quiet.json()["status"] == "stopped"
    assert time.monotonic() - started >= 0.3


async def test_a_server_deleted_during_a_long_poll_is_not_found(factory: Factory) -> None:
    tenant = await factory.tenant()
    created = await tenant.create_server(name="gone")
    await factory.force_status(created["id"], "provisioning")
    waiting = asyncio.create_task(
        tenant.get(f"{SERVERS}{created['id']}/", params={"wait_for": "active", "wait": 30})
    )
    await asyncio.sleep(0.1)
    assert (await tenant.delete(f"{SERVERS}{created['id']}/")).status_code == 204
    answered = await waiting
    assert answered.status_code == 404
    await factory.release_hold(created["id"])


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/actions/{action}/", {"wait": "0"}, "wait"),
        ("/api/v1/actions/{action}/", {"wait": "61"}, "wait"),
        ("/api/v1/actions/{action}/", {"wait": "soon"}, "wait"),
        ("/api/v1/servers/{server}/", {"wait": "-1"}, "wait"),
        ("/api/v1/servers/{server}/", {"wait_for": "deleted"}, "wait_for"),
        ("/api/v1/servers/{server}/", {"wait_for": "ACTIVE"}, "wait_for"),
    ],
)
async def test_long_poll_parameters_are_checked(
    factory: Factory, path: str, params: dict[str, str], field: str
) -> None:
    tenant = await factory.tenant()
    created = await tenant.create_server(name="checked")
    url = path.format(action=created["action"]["id"], server=created["id"])
    response = await tenant.get(url, params=params)
    assert response.status_code == 400, response.text
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]
