"""`Client` and `AsyncClient` offer the same interface: the same groups and methods, with
the same signatures; the async ones are coroutine functions (or async iterators)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from vps.client import (
    AsyncClient,
    AsyncEventStream,
    AsyncServer,
    Client,
    ConfigurationError,
    EventStream,
    Server,
)

GROUPS = ["servers", "actions", "plans", "operating_systems", "locations", "ssh_keys", "account"]
#: Methods that return a stream or an iterator rather than a result.
NOT_COROUTINES = {("servers", "events"), ("servers", "iterate")}

SERVER = {
    "id": 3,
    "name": "web-1",
    "status": "active",
    "location": "us-west",
    "plan": {"id": 1, "name": "s", "vcpus": 1, "memory": 1, "storage": 1, "bandwidth": 1},
    "os": {"id": 5, "name": "Debian"},
    "backups_enabled": False,
    "created_at": "2026-11-28T23:59:59Z",
    "updated_at": "2026-11-28T23:59:59Z",
}


def _methods(group: object) -> dict[str, Any]:
    return {
        name: getattr(group, name)
        for name in dir(group)
        if not name.startswith("_") and callable(getattr(group, name))
    }


async def test_every_group_method_has_the_same_signature_in_both_clients() -> None:
    sync_client = Client("http://api.test", "vps_token")
    async with AsyncClient("http://api.test", "vps_token") as async_client:
        for group_name in GROUPS:
            sync_methods = _methods(getattr(sync_client, group_name))
            async_methods = _methods(getattr(async_client, group_name))
            assert sync_methods.keys() == async_methods.keys(), group_name
            assert sync_methods, group_name
            for name, method in sync_methods.items():
                twin = async_methods[name]
                assert inspect.signature(method) == inspect.signature(twin), (group_name, name)
                assert "self" not in inspect.signature(method).parameters
                assert not inspect.iscoroutinefunction(method), (group_name, name)
                is_coroutine = (group_name, name) not in NOT_COROUTINES
                assert inspect.iscoroutinefunction(twin) is is_coroutine, (group_name, name)
                assert method.__name__ == name
    sync_client.close()


async def test_streams_and_iterators_are_of_their_client_kind() -> None:
    with Client("http://api.test", "vps_token") as sync_client:
        assert isinstance(sync_client.servers.iterate(), Iterator)
    async with AsyncClient("http://api.test", "vps_token") as async_client:
        assert isinstance(async_client.servers.iterate(), AsyncIterator)
        stream = async_client.servers.events(3)  # subscribes only when iterated or entered
        assert isinstance(stream, AsyncEventStream)
        assert not isinstance(stream, EventStream)
        assert stream.last_event_id is None
        await stream.close()


def test_a_server_not_read_through_a_client_says_so() -> None:
    with pytest.raises(ConfigurationError, match="not read through a Client"):
        Server.model_validate(SERVER).refresh()
    with pytest.raises(ConfigurationError, match="not read through an AsyncClient"):
        AsyncServer.model_validate(SERVER)._bound()
