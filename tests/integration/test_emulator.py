"""The emulator for client developers: `vps.testing`'s fixtures and the `/_emulator/`
controls they drive (timings, injected failures, funded accounts, balances)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from vps.client import Client, LocationFull
from vps.testing import Emulator, EmulatorAccount, EmulatorError

BODY = {"name": "emulated", "plan_id": 1, "os_id": 5, "location": "us-west"}


def _client(account: EmulatorAccount) -> httpx.Client:
    return httpx.Client(
        base_url=account.url, headers={"Authorization": f"Bearer {account.token}"}, timeout=30
    )


def _wait_settled(http: httpx.Client, server_id: int) -> dict[str, Any]:
    response = http.get(f"/api/v1/servers/{server_id}/", params={"wait_for": "active", "wait": 20})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_account_is_funded_and_isolated(vps_account: EmulatorAccount) -> None:
    with _client(vps_account) as http:
        account = http.get("/api/v1/account/").json()
        assert account["name"] == vps_account.name
        assert account["balance"] == "100.00"
        created = http.post("/api/v1/servers/", json=BODY)
        assert created.status_code == 201
        assert _wait_settled(http, created.json()["id"])["status"] == "active"


def test_the_next_create_fails_and_is_refunded(
    vps_emulator: Emulator, vps_account: EmulatorAccount
) -> None:
    vps_emulator.fail_next("create", message="no capacity today")
    with _client(vps_account) as http:
        created = http.post("/api/v1/servers/", json=BODY).json()
        server = _wait_settled(http, created["id"])
        assert server["status"] == "error"
        assert server["error"]["message"] == "no capacity today"
        action = http.get(f"/api/v1/actions/{created['action']['id']}/").json()
        assert action["status"] == "failed"
        assert http.get("/api/v1/account/").json()["balance"] == "100.00"
        # Only the next one: the following create succeeds.
        again = http.post("/api/v1/servers/", json=BODY).json()
        assert _wait_settled(http, again["id"])["status"] == "active"


def test_a_retriable_fault_is_retried(vps_emulator: Emulator, vps_account: EmulatorAccount) -> None:
    vps_emulator.fail_next("create", retriable=True)
    with _client(vps_account) as http:
        created = http.post("/api/v1/servers/", json=BODY).json()
        assert _wait_settled(http, created["id"])["status"] == "active"


def test_power_actions_can_fail_too(vps_emulator: Emulator, vps_account: EmulatorAccount) -> None:
    with _client(vps_account) as http:
        created = http.post("/api/v1/servers/", json=BODY).json()
        _wait_settled(http, created["id"])
        vps_emulator.fail_next("stop")
        stopped = http.post(f"/api/v1/servers/{created['id']}/stop/").json()
        action = http.get(f"/api/v1/actions/{stopped['action']['id']}/", params={"wait": 20}).json()
        assert action["status"] == "failed"
        assert http.get(f"/api/v1/servers/{created['id']}/").json()["status"] == "active"


def test_timings_are_set_and_reset(vps_emulator: Emulator, vps_account: EmulatorAccount) -> None:
    vps_emulator.set_timings(provision_seconds=30)
    with _client(vps_account) as http:
        created = http.post("/api/v1/servers/", json=BODY).json()
        waited = http.get(
            f"/api/v1/servers/{created['id']}/", params={"wait_for": "active", "wait": 0.5}
        )
        assert waited.json()["status"] == "provisioning"
        timings = httpx.get(f"{vps_emulator.url}/_emulator/timings/").json()
        assert timings["provision_seconds"] == 30
    vps_emulator.reset()
    timings = httpx.get(f"{vps_emulator.url}/_emulator/timings/").json()
    assert timings["provision_seconds"] == vps_emulator.settings.sim_provision_seconds


def test_an_account_without_credits_gets_402(
    vps_emulator: Emulator, vps_account: EmulatorAccount
) -> None:
    vps_emulator.set_credits(vps_account, "0.00")
    with _client(vps_account) as http:
        refused = http.post("/api/v1/servers/", json=BODY)
        assert refused.status_code == 402
        assert refused.json()["error"]["available"] == "0.00"
        vps_emulator.set_credits(vps_account.name, "30.00")
        assert http.get("/api/v1/account/").json()["balance"] == "30.00"
        assert http.post("/api/v1/servers/", json=BODY).status_code == 201
        # The balance moved through the ledger: it still adds up.
        ledger = http.get("/api/v1/account/transactions/", params={"page_size": 100}).json()
        total = sum(float(entry["amount"]) for entry in ledger["results"])
        assert round(total, 2) == float(http.get("/api/v1/account/").json()["balance"])


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/faults/", {"operation": "explode"}, "operation"),
        ("POST", "/faults/", {"operation": "create", "count": 0}, "count"),
        ("PATCH", "/timings/", {"provision_seconds": -1}, "provision_seconds"),
        ("PATCH", "/timings/", {"warp": 1}, "warp"),
        ("POST", "/accounts/", {"credits": "lots"}, "credits"),
        ("POST", "/accounts/", {"name": "Bad Name!"}, "name"),
        ("PUT", "/accounts/nobody-at-all/balance/", {"balance": "-5"}, "balance"),
        ("PUT", "/locations/us-west/full/", {"full": "yes"}, "full"),
    ],
)
def test_control_input_is_checked(
    vps_emulator: Emulator, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = httpx.request(method, f"{vps_emulator.url}/_emulator{path}", json=body)
    assert response.status_code == 400, response.text
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]


def test_a_full_location_refuses_creates_uncharged_until_reset(
    vps_emulator: Emulator, vps_account: EmulatorAccount
) -> None:
    vps_emulator.set_location_full("us-west")
    with _client(vps_account) as http:
        refused = http.post("/api/v1/servers/", json=BODY)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "location_full"
        assert http.get("/api/v1/account/").json()["balance"] == "100.00"
        elsewhere = http.post("/api/v1/servers/", json={**BODY, "location": "us-east"})
        assert elsewhere.status_code == 201
        with Client(vps_account.url, token=vps_account.token) as sdk, pytest.raises(LocationFull):
            sdk.servers.create(name="sdk-full", plan_id=1, os_id=5, location="us-west")
        vps_emulator.set_location_full("us-west", full=False)
        assert http.post("/api/v1/servers/", json=BODY).status_code == 201
        vps_emulator.set_location_full("us-west")
        vps_emulator.reset()
        assert http.post("/api/v1/servers/", json=BODY).status_code == 201


def test_unknown_account_balance_is_404(vps_emulator: Emulator) -> None:
    response = httpx.put(
        f"{vps_emulator.url}/_emulator/accounts/nobody-at-all/balance/", json={"balance": "1"}
    )
    assert response.status_code == 404
    with pytest.raises(EmulatorError):
        vps_emulator.set_credits("nobody-at-all", "1.00")
    with pytest.raises(EmulatorError, match="No location"):
        vps_emulator.set_location_full("nowhere-at-all")


async def test_the_controls_are_off_unless_asked_for(client: httpx.AsyncClient) -> None:
    for path in ("/_emulator/timings/", "/_emulator/faults/"):
        assert (await client.get(path)).status_code == 404
    assert (await client.post("/_emulator/accounts/", json={})).status_code == 404
    document = (await client.get("/api/v1/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/_emulator")]


def test_two_emulators_run_side_by_side() -> None:
    with Emulator() as first, Emulator() as second:
        assert first.url != second.url
        one = first.create_account(credits="5.00")
        two = second.create_account(credits="7.00")
        with _client(one) as http:
            assert http.get("/api/v1/account/").json()["balance"] == "5.00"
        with _client(two) as http:
            assert http.get("/api/v1/account/").json()["balance"] == "7.00"
    with pytest.raises(EmulatorError):
        first.create_account()
