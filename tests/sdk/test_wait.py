"""`wait_until` and `actions.wait` against the emulator: success, failure, deadline, and the
fallbacks (long-poll, then polling) when the API in front lacks streams or long-polls."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.sdk.conftest import unique_name
from vps.client import Client, NotFound, Server, WaitFailed, WaitTimeout
from vps.testing import Emulator, EmulatorAccount


def _create(client: Client) -> Server:
    return client.servers.create(name=unique_name(), plan_id=1, os_id=5, location="us-west")


def test_wait_until_active_follows_the_stream(vps_account: EmulatorAccount) -> None:
    recording = OlderApi(streams=True, wait_for="keep")  # hides nothing: records paths
    with Client(vps_account.url, vps_account.token, transport=recording) as client:
        server = _create(client)
        active = client.servers.wait_until(server.id, "active", timeout=30)
    assert active.status == "active"
    assert active.ip_address is not None
    server_path = f"http://x/api/v1/servers/{server.id}/"
    # Subscribed first, then read: a change between the two cannot be missed.
    assert recording.paths[1:3] == [server_path + "events/", server_path]
    assert not any("wait_for" in path for path in recording.paths)


def test_a_failed_build_raises_wait_failed_with_the_error(
    client: Client, vps_emulator: Emulator
) -> None:
    vps_emulator.fail_next("create", message="disk on fire")
    server = _create(client)
    with pytest.raises(WaitFailed) as caught:
        server.wait_until("active", timeout=30)
    assert caught.value.status == "error"
    assert caught.value.server.id == server.id
    assert caught.value.error is not None
    assert caught.value.error.code
    assert "disk on fire" in caught.value.error.message
    assert server.action is not None
    assert client.actions.wait(server.action.id, timeout=30).status == "failed"


def test_wait_failed_when_the_server_settles_elsewhere(client: Client) -> None:
    server = _create(client).wait_until("active", timeout=30)
    with pytest.raises(WaitFailed) as caught:
        server.wait_until("stopped", timeout=5)
    assert caught.value.status == "active"


def test_wait_timeout_carries_the_last_server_seen(client: Client, vps_emulator: Emulator) -> None:
    vps_emulator.set_timings(provision_seconds=60)
    server = _create(client)
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        server.wait_until("active", timeout=1.5)
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 6.0
    assert isinstance(caught.value.last, Server)
    assert caught.value.last.status == "provisioning"


def test_action_wait_times_out_while_running(client: Client, vps_emulator: Emulator) -> None:
    vps_emulator.set_timings(provision_seconds=60)
    server = _create(client)
    assert server.action is not None
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        client.actions.wait(server.action.id, timeout=1.0)
    assert time.monotonic() - started < 6.0
    assert caught.value.last is not None
    assert caught.value.last.status == "running"


def test_action_get_long_polls_until_done(client: Client, vps_emulator: Emulator) -> None:
    vps_emulator.set_timings(provision_seconds=1.0)
    server = _create(client)
    assert server.action is not None
    action = client.actions.get(server.action.id, wait=30)
    assert action.status == "succeeded"
    assert action.progress == 100


def test_waiting_for_deleted_ends_at_the_404(client: Client) -> None:
    server = _create(client).wait_until("active", timeout=30)
    client.servers.delete(server.id)
    assert server.wait_until("deleted", timeout=10).status == "deleted"
    with pytest.raises(NotFound):
        # Without a server seen first there is nothing to return.
        client.servers.wait_until(server.id, "deleted", timeout=10)
    other = _create(client).wait_until("active", timeout=30)
    client.servers.delete(other.id)
    with pytest.raises(WaitFailed) as caught:
        other.wait_until("stopped", timeout=10)
    assert caught.value.status == "deleted"


class OlderApi(httpx.BaseTransport):
    """The real API seen through a proxy that hides newer features, as an older deployment
    would: event streams answer 404, and/or `wait_for` is dropped or made invalid."""

    def __init__(self, *, streams: bool, wait_for: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.streams = streams
        self.wait_for = wait_for  # "keep", "ignored" (dropped) or "rejected" (a 400)
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(str(request.url.copy_with(scheme="http", netloc=b"x")))
        if not self.streams and request.url.path.endswith("/events/"):
            body = {
                "error": {"code": "not_found", "message": "No such endpoint.", "request_id": "-"}
            }
            return httpx.Response(404, json=body)
        if "wait_for" in request.url.params and self.wait_for != "keep":
            params = request.url.params.remove("wait_for").remove("wait")
            if self.wait_for == "rejected":
                params = params.set("wait_for", "no-such-status")
            request = httpx.Request(
                request.method,
                request.url.copy_with(params=params),
                headers=request.headers,
                extensions=request.extensions,
            )
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("wait_for", ["keep", "ignored", "rejected"])
def test_fallbacks_when_streams_or_long_polls_are_missing(
    vps_account: EmulatorAccount, wait_for: str
) -> None:
    older = OlderApi(streams=False, wait_for=wait_for)
    with Client(vps_account.url, vps_account.token, transport=older) as client:
        server = _create(client)
        active = server.wait_until("active", timeout=30)
    assert active.status == "active"
    server_path = f"/api/v1/servers/{server.id}/"
    assert older.paths[1] == f"http://x{server_path}events/"  # the stream was tried first
    long_polls = [i for i, path in enumerate(older.paths) if "wait_for=active" in path]
    assert long_polls, "the long-poll was tried next"
    if wait_for == "keep":
        return
    # Without the long-poll, one attempt, then plain polling.
    assert len(long_polls) == 1
    polls = older.paths[long_polls[0] + 1 :]
    assert polls and all(path == f"http://x{server_path}" for path in polls)


def test_wait_failed_through_the_long_poll(
    vps_account: EmulatorAccount, vps_emulator: Emulator
) -> None:
    vps_emulator.fail_next("create")
    with Client(
        vps_account.url, vps_account.token, transport=OlderApi(streams=False, wait_for="keep")
    ) as client:
        server = _create(client)
        with pytest.raises(WaitFailed) as caught:
            server.wait_until("active", timeout=30)
    assert caught.value.status == "error"


def test_wait_until_long_polls_when_the_account_has_no_stream_left() -> None:
    """The account's streams are all taken (by the caller itself): the wait does not sit
    out `Retry-After`s, it long-polls at once."""
    with Emulator(event_streams_per_account=1) as emulator:
        account = emulator.create_account()
        with Client(account.url, account.token) as client:
            hog = client.events()
            try:
                server = _create(client)
                started = time.monotonic()
                assert server.wait_until("active", timeout=30).status == "active"
                assert time.monotonic() - started < 4
            finally:
                hog.close()
