"""The sync client against the emulator's real HTTP API: every endpoint group, and typed
errors built from real answers."""

from __future__ import annotations

import socket
import uuid
from decimal import Decimal

import pytest

from tests.sdk.conftest import ed25519_public_key, unique_name
from vps.client import (
    STABLE_STATUSES,
    Action,
    BadRequest,
    Client,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    InsufficientCredits,
    InvalidState,
    NotFound,
    Plan,
    PreconditionFailed,
    Server,
    Unauthenticated,
)
from vps.testing import Emulator, EmulatorAccount


def _create(client: Client, **overrides: object) -> Server:
    arguments: dict[str, object] = {
        "name": unique_name(),
        "plan_id": 1,
        "os_id": 5,
        "location": "us-west",
    }
    arguments.update(overrides)
    return client.servers.create(**arguments)  # type: ignore[arg-type]


def test_configuration_from_the_environment(
    vps_account: EmulatorAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPS_API_URL", vps_account.url + "/api/v1/")
    monkeypatch.setenv("VPS_TOKEN", vps_account.token)
    with Client() as client:
        assert client.account.get().name == vps_account.name
    monkeypatch.delenv("VPS_TOKEN")
    with pytest.raises(ConfigurationError, match="VPS_TOKEN"):
        Client()


def test_a_wrong_token_is_unauthenticated(vps_account: EmulatorAccount) -> None:
    with (
        Client(vps_account.url, "vps_not-a-real-token") as client,
        pytest.raises(Unauthenticated) as caught,
    ):
        client.servers.list()
    assert caught.value.status == 401
    assert caught.value.code == "unauthenticated"
    assert caught.value.request_id


def test_catalog(client: Client) -> None:
    plans = client.plans.list()
    assert all(isinstance(plan, Plan) for plan in plans)
    standard = next(plan for plan in plans if plan.id == 1)
    assert standard.monthly_price == Decimal("24.00")
    assert standard.backups_monthly_price == Decimal("4.80")
    assert standard.vcpus == 2
    assert {os.id for os in client.operating_systems.list()} >= {3, 5, 6, 7}
    assert {location.code for location in client.locations.list()} >= {"us-west", "us-east"}


def test_create_get_and_wait_until_active(client: Client) -> None:
    created = _create(client, hostname="web.example.com", backups_enabled=True)
    assert created.status == "provisioning"
    assert created.ip_address is None
    assert created.hostname == "web.example.com"
    assert created.backups_enabled is True
    assert created.plan.id == 1 and created.os.id == 5
    assert created.message
    assert isinstance(created.action, Action)
    assert created.action.kind == "create"
    assert created.etag

    active = created.wait_until("active", timeout=30)
    assert active.status == "active"
    assert active.ip_address is not None and active.ipv6_address is not None
    assert active.etag and active.etag != created.etag

    fetched = client.servers.get(created.id)
    assert fetched.id == created.id
    assert fetched.status == "active"
    assert fetched.resource_usage is not None
    assert client.actions.wait(created.action.id, timeout=30).status == "succeeded"


def test_list_filters_and_iterate_over_pages(client: Client) -> None:
    west = [_create(client) for _ in range(3)]
    east = _create(client, location="us-east")
    page = client.servers.list(location="us-west", page_size=2)
    assert page.count == 3
    assert len(page.results) == 2
    assert page.next is not None and page.previous is None
    second = client.servers.list(location="us-west", page=2, page_size=2)
    assert [s.id for s in page.results + second.results] == [s.id for s in west]
    assert [s.id for s in client.servers.iterate(page_size=2)] == [s.id for s in [*west, east]]
    east.wait_until("active", timeout=30)
    assert [s.id for s in client.servers.iterate(status="active", location="us-east")] == [east.id]
    # A listed server is bound to the client too.
    assert second.results[0].refresh().id == west[2].id


def test_update_patch_sends_only_the_fields_passed(client: Client) -> None:
    # Settled first: the build bumps the version, which would make `if_match` stale.
    server = _create(client, hostname="old.example.com", backups_enabled=True).wait_until(
        "active", timeout=30
    )
    renamed = client.servers.update(server.id, name="renamed-1")
    assert renamed.name == "renamed-1"
    assert renamed.hostname == "old.example.com"
    assert renamed.backups_enabled is True
    changed = client.servers.update(server.id, backups_enabled=False, if_match=renamed.etag)
    assert changed.backups_enabled is False
    assert changed.name == "renamed-1"


def test_update_sends_none_as_a_value(client: Client) -> None:
    server = _create(client, hostname="kept.example.com")
    # None is sent as null (not left out): this API refuses a null hostname on PATCH.
    with pytest.raises(BadRequest) as caught:
        client.servers.update(server.id, hostname=None)
    assert caught.value.field == "hostname"
    assert client.servers.get(server.id).hostname == "kept.example.com"


def test_an_unreachable_api_raises_connection_failed_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    with (
        Client(f"http://127.0.0.1:{port}", "vps_token", sleep=sleeps.append, max_retries=2) as c,
        pytest.raises(ConnectionFailed),
    ):
        c.plans.list()
    assert len(sleeps) == 2
    assert all(0.0 <= delay <= 1.0 for delay in sleeps)


def test_replace_puts_every_field(client: Client) -> None:
    server = _create(client)
    replaced = client.servers.replace(
        server.id, name="replaced", hostname="new.example.com", backups_enabled=True
    )
    assert (replaced.name, replaced.hostname, replaced.backups_enabled) == (
        "replaced",
        "new.example.com",
        True,
    )
    assert client.servers.get(server.id).hostname == "new.example.com"


def test_a_stale_etag_is_precondition_failed_with_the_current_one(client: Client) -> None:
    server = _create(client)
    current = client.servers.update(server.id, name="moved-on")
    with pytest.raises(PreconditionFailed) as caught:
        client.servers.update(server.id, name="too-late", if_match=server.etag)
    assert caught.value.status == 412
    assert caught.value.code == "precondition_failed"
    assert caught.value.current_etag is not None
    assert caught.value.current_etag == client.servers.get(server.id).etag
    assert client.servers.get(server.id).name == current.name
    with pytest.raises(PreconditionFailed):
        client.servers.delete(server.id, if_match=server.etag)


def test_power_actions_and_their_history(client: Client) -> None:
    server = _create(client).wait_until("active", timeout=30)
    stopping = client.servers.stop(server.id)
    assert stopping.status in {"stopping", "stopped"}
    assert stopping.action is not None and stopping.action.kind == "stop"
    assert stopping.message
    stopped = stopping.wait_until("stopped", timeout=30)
    with pytest.raises(InvalidState) as caught:
        client.servers.stop(server.id)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_state"
    assert caught.value.current_status == "stopped"
    started = stopped.start()
    assert started.action is not None and started.action.kind == "start"
    started.wait_until("active", timeout=30)
    rebooting = client.servers.reboot(server.id, idempotency_key=str(uuid.uuid4()))
    assert rebooting.action is not None and rebooting.action.kind == "reboot"
    assert client.actions.wait(rebooting.action.id, timeout=30).status == "succeeded"
    assert client.servers.wait_until(server.id, "active", timeout=30).status == "active"

    history = client.servers.actions(server.id, page_size=100)
    assert history.count == 4
    assert sorted(action.kind for action in history.results) == [
        "create",
        "reboot",
        "start",
        "stop",
    ]
    assert all(action.server_id == server.id for action in history.results)


def test_a_replayed_idempotency_key_does_the_work_once(client: Client) -> None:
    key = str(uuid.uuid4())
    name = unique_name()
    first = client.servers.create(
        name=name, plan_id=1, os_id=5, location="us-west", idempotency_key=key
    )
    again = client.servers.create(
        name=name, plan_id=1, os_id=5, location="us-west", idempotency_key=key
    )
    assert again.id == first.id
    assert client.servers.list().count == 1


def test_delete_returns_the_action_and_the_server_is_gone(client: Client) -> None:
    server = _create(client).wait_until("active", timeout=30)
    action = client.servers.delete(server.id, if_match="*")
    assert action.kind == "delete"
    assert action.server_id == server.id
    with pytest.raises(NotFound) as caught:
        client.servers.get(server.id)
    assert caught.value.status == 404
    assert caught.value.code == "not_found"
    finished = client.actions.wait(action.id, timeout=30)
    assert finished.status == "succeeded"
    assert finished.finished_at is not None
    gone = server.wait_until("deleted", timeout=10)
    assert gone.status == "deleted" and gone.id == server.id


def test_bad_request_names_the_field(client: Client) -> None:
    with pytest.raises(BadRequest) as caught:
        _create(client, plan_id=999_999)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_parameters"
    assert caught.value.field == "plan_id"
    assert caught.value.details["error"]["fields"][0]["field"] == "plan_id"
    assert not isinstance(caught.value, InvalidState)
    with pytest.raises(BadRequest) as invalid_name:
        _create(client, name="-bad-")
    assert invalid_name.value.field == "name"


def test_insufficient_credits_carry_the_amounts(
    client: Client, vps_account: EmulatorAccount, vps_emulator: Emulator
) -> None:
    vps_emulator.set_credits(vps_account.name, "0.00")
    with pytest.raises(InsufficientCredits) as caught:
        _create(client)
    assert caught.value.status == 402
    assert caught.value.code == "insufficient_credits"
    assert caught.value.required == Decimal("24.00")
    assert caught.value.available == Decimal("0.00")
    assert client.servers.list().count == 0


def test_not_found_for_unknown_ids(client: Client) -> None:
    for call in (
        lambda: client.servers.get(987_654),
        lambda: client.actions.get(987_654),
        lambda: client.ssh_keys.get(987_654),
        lambda: client.servers.start(987_654),
    ):
        with pytest.raises(NotFound):
            call()


def test_ssh_keys(client: Client) -> None:
    public_key = ed25519_public_key()
    key = client.ssh_keys.create(name="laptop", public_key=public_key)
    assert key.name == "laptop"
    assert key.fingerprint.startswith("SHA256:")
    assert client.ssh_keys.get(key.id) == key
    listed = client.ssh_keys.list()
    assert listed.count == 1 and listed.results == [key]
    with pytest.raises(Conflict) as caught:
        client.ssh_keys.create(name="again", public_key=public_key)
    assert caught.value.status == 409
    server = _create(client, ssh_key_id=key.id)
    assert server.status == "provisioning"
    client.ssh_keys.delete(key.id)
    with pytest.raises(NotFound):
        client.ssh_keys.get(key.id)
    assert client.ssh_keys.list(page=1, page_size=10).count == 0


def test_account_ledger_and_audit_log(client: Client) -> None:
    before = client.account.get()
    assert before.balance == Decimal("100.00")
    server = _create(client)
    after = client.account.get()
    assert after.balance == Decimal("76.00")
    ledger = client.account.transactions(page_size=10)
    assert ledger.count >= 2
    charge = ledger.results[0]
    assert charge.kind == "charge"
    assert charge.amount == Decimal("-24.00")
    assert charge.balance_after == Decimal("76.00")
    assert charge.server_id == server.id
    audit = client.account.audit_log(page=1, page_size=5)
    assert audit.count >= 1
    entry = audit.results[0]
    assert entry.method == "POST"
    assert entry.result == "succeeded"
    assert entry.target.type == "server" and entry.target.id == server.id


def test_account_events_stream_a_servers_lifecycle(client: Client) -> None:
    server = _create(client)
    statuses: list[str] = []
    action_updates = 0
    for event in client.events(last_event_id=0):
        if event.server_id != server.id:
            continue
        if event.type == "action.status":
            assert event.action is not None and event.action.server_id == server.id
            action_updates += 1
        if event.type == "server.status":
            assert event.status is not None and event.id is not None
            statuses.append(event.status)
            if event.status in STABLE_STATUSES:
                break
    assert statuses[-1] == "active"
    assert action_updates >= 1


def test_server_events_end_after_deletion(client: Client) -> None:
    server = _create(client).wait_until("active", timeout=30)
    stream = client.servers.events(server.id)
    client.servers.delete(server.id)
    statuses = [event.status for event in stream if event.type == "server.status"]
    assert statuses[-1] == "deleted"
