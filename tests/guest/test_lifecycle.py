"""One real guest's whole life through the API: create, reach it, stop, start, reboot, read
its usage, delete, with nothing left behind. The tests run in order on one server per
domain type; each waits for its condition with a deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.processes import wait_until
from tests.guest.conftest import LAPS, LOCATION, Api
from tests.guest.host import LibvirtHost, netns_get
from vps.drivers.libvirt_xml import mac_address

pytestmark = pytest.mark.slow

STARTER_PLAN = 3  # 1 vCPU, 1024 MB, 25 GB in the default catalog
DEBIAN_12 = 3
HOSTNAME = "guest-one.example.test"
SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ci@guest"
)
BOOT_SECONDS = 120  # TCG on a loaded 2-core machine boots in 10-20 s
ACTION_SECONDS = 90

VIR_DOMAIN_RUNNING = 1
VIR_DOMAIN_SHUTOFF = 5


class Guest:
    """The server under test, as the API and the guest itself show it."""

    def __init__(self, api: Api, host: LibvirtHost) -> None:
        self.api, self.host = api, host
        self.http = api.client()
        self.id: int | None = None
        self.ipv4: str | None = None
        self.boot_id: str | None = None

    @property
    def domain(self) -> str:
        return f"vps-{self.server_id}"

    @property
    def server_id(self) -> int:
        if self.id is None:
            pytest.fail("there is no server: creating it failed")
        return self.id

    def get(self) -> dict[str, Any]:
        response = self.http.get(f"/servers/{self.server_id}/")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_status(self, status: str, seconds: float = ACTION_SECONDS) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            body = self.get()
            assert body["status"] != "error", body
            return body if body["status"] == status else None

        body: dict[str, Any] = wait_until(reached, seconds, f"status {status}")
        return body

    def fetch(self, path: str) -> str | None:
        assert self.ipv4 is not None
        return netns_get(self.ipv4, path)

    def wait_reachable(self, seconds: float = BOOT_SECONDS) -> str:
        hostname: str = wait_until(lambda: self.fetch("hostname"), seconds, "the guest's httpd")
        return hostname

    def power(self, action: str) -> None:
        response = self.http.post(f"/servers/{self.server_id}/{action}/")
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def guest(api: Api, libvirt_host: LibvirtHost) -> Iterator[Guest]:
    guest = Guest(api, libvirt_host)
    with guest.http:
        yield guest


def lap(guest: Guest, what: str, started: float) -> None:
    LAPS.append((f"[{guest.api.domain_type}] {what}", time.monotonic() - started))


def test_create_reaches_active_and_the_guest_answers_with_its_seed(guest: Guest) -> None:
    key = guest.http.post("/ssh-keys/", json={"name": "ci", "public_key": SSH_KEY})
    assert key.status_code == 201, key.text
    started = time.monotonic()
    created = guest.http.post(
        "/servers/",
        json={
            "name": "guest-one",
            "plan_id": STARTER_PLAN,
            "os_id": DEBIAN_12,
            "location": LOCATION,
            "hostname": HOSTNAME,
            "ssh_key_id": key.json()["id"],
        },
    )
    assert created.status_code == 201, created.text
    guest.id = int(created.json()["id"])
    body = guest.wait_status("active")
    lap(guest, "create -> active", started)
    guest.ipv4 = body["ip_address"]
    assert guest.ipv4 is not None and guest.ipv4.startswith("10.213.77."), body
    assert guest.host.domain_state(guest.domain) == VIR_DOMAIN_RUNNING
    # Placed on the location's registered host, which now holds the plan's resources.
    assert guest.api.host_used() == {"vcpus": 1, "memory_mb": 1024, "disk_gb": 25}

    # The guest configured itself from the seed: hostname, key, and the address and gateway
    # our IPAM chose (the namespace only reaches it if both are right).
    assert guest.wait_reachable() == "guest-one"
    lap(guest, "create -> guest answers", started)
    assert guest.fetch("ssh-key") == SSH_KEY
    guest.boot_id = guest.fetch("boot_id")
    assert guest.boot_id
    uptime = guest.fetch("cgi-bin/uptime")
    assert uptime is not None and float(uptime) > 0


def test_usage_is_read_from_the_running_guest(guest: Guest) -> None:
    plan = guest.get()["plan"]

    def plausible() -> dict[str, Any] | None:
        usage: dict[str, Any] | None = guest.get().get("resource_usage")
        if not usage or usage["cpu_percent"] <= 0 or usage["memory_used"] <= 0:
            return None
        return usage if usage["disk_used"] >= 1 else None

    started = time.monotonic()
    # The balloon driver in the guest reports its own view of memory to the host.
    wait_until(
        lambda: {"available", "usable"} <= guest.host.memory_stats(guest.domain).keys(),
        30,
        "guest-side memory statistics",
    )
    usage: dict[str, Any] = wait_until(plausible, 60, "non-zero resource usage")
    lap(guest, "usage becomes non-zero", started)
    assert 0 < usage["cpu_percent"] <= 100
    # The guest's own view through the balloon: a busybox guest uses a fraction of its RAM.
    assert 0 < usage["memory_used"] < plan["memory"]
    assert 1 <= usage["disk_used"] <= plan["storage"]
    # Whole GB of traffic this month: a few kilobytes so far, counted on the guest's NIC.
    assert usage["bandwidth_used"] == 0
    assert guest.host.interface_bytes(guest.domain, mac_address(guest.server_id)) > 0


def test_stop_shuts_the_guest_off(guest: Guest) -> None:
    started = time.monotonic()
    guest.power("stop")
    guest.wait_status("stopped")
    lap(guest, "stop -> stopped", started)
    assert guest.host.domain_state(guest.domain) == VIR_DOMAIN_SHUTOFF
    assert guest.fetch("hostname") is None


def test_start_brings_the_guest_back(guest: Guest) -> None:
    started = time.monotonic()
    guest.power("start")
    guest.wait_status("active")
    lap(guest, "start -> active", started)
    assert guest.wait_reachable() == "guest-one"
    lap(guest, "start -> guest answers", started)
    boot_id = guest.fetch("boot_id")
    assert boot_id and boot_id != guest.boot_id
    guest.boot_id = boot_id


def test_reboot_boots_the_guest_again(guest: Guest) -> None:
    started = time.monotonic()
    guest.power("reboot")
    guest.wait_status("active")
    lap(guest, "reboot -> active", started)
    wait_until(
        lambda: guest.fetch("boot_id") not in (None, guest.boot_id),
        BOOT_SECONDS,
        "the guest to answer from a new boot",
    )
    lap(guest, "reboot -> guest answers from a new boot", started)
    assert guest.fetch("hostname") == "guest-one"


def test_delete_leaves_nothing_behind(guest: Guest) -> None:
    started = time.monotonic()
    deleted = guest.http.delete(f"/servers/{guest.server_id}/")
    assert deleted.status_code == 204, deleted.text
    wait_until(
        lambda: guest.http.get(f"/servers/{guest.server_id}/").status_code == 404,
        ACTION_SECONDS,
        "the server to be gone",
    )

    def machine_gone() -> bool:
        volumes = [v for v in guest.host.volumes() if v.startswith(f"{guest.domain}-")]
        return guest.domain not in guest.host.domains() and not volumes

    wait_until(machine_gone, ACTION_SECONDS, "the domain and its volumes to be removed")
    lap(guest, "delete -> 404, no domain, no volumes", started)
    assert guest.fetch("hostname") is None
    assert guest.api.host_used() == {"vcpus": 0, "memory_mb": 0, "disk_gb": 0}
