"""Real guests (tiers 2 and 3, see README.md): the `vps serve` command driving libvirt on this
machine, checked from inside the guests' private network.

The environment is prepared by `make test-guest` (packages, guest image, then this suite),
which points VPS_GUEST_DIR at the built image. Without it, or without root, these tests are
skipped with the reason; with VPS_TEST_GUESTS=required (CI) a prepared run may not skip.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import VpsCommand, free_port, stop_gently, wait_for_http
from tests.guest.host import (
    BASE_VOLUME,
    BRIDGE,
    IPV4_POOL,
    IPV6_POOL,
    POOL,
    URI,
    LibvirtHost,
    ProbeResult,
    Unavailable,
    probe_kvm,
)

# An OS of the default catalog; the driver maps it to the test image's volume.
OS_SLUG = "debian-12"
LOCATION = "guest-lab"
HOST_NAME = "guest-host"
LAPS: list[tuple[str, float]] = []


def _unavailable(reason: str, *, prepared: bool) -> None:
    if prepared and os.environ.get("VPS_TEST_GUESTS") == "required":
        pytest.fail(f"real-guest tests are required but cannot run: {reason}")
    pytest.skip(f"real-guest tests: {reason}")


def _image() -> Path:
    directory = os.environ.get("VPS_GUEST_DIR")
    if not directory:
        _unavailable("not prepared; run them with `make test-guest`", prepared=False)
    image = Path(str(directory)) / "base.qcow2"
    if os.geteuid() != 0:
        _unavailable("they need root (libvirtd, a bridge, a network namespace)", prepared=True)
    for command in ("libvirtd", "virtlogd", "qemu-system-x86_64", "ip", "busybox"):
        if shutil.which(command) is None:
            _unavailable(f"{command} is not installed", prepared=True)
    if not image.exists():
        _unavailable(f"the guest image {image} has not been built", prepared=True)
    try:
        import libvirt  # type: ignore[import-untyped, unused-ignore]  # noqa: F401
    except ImportError:
        _unavailable("libvirt-python is not installed (the vps[libvirt] extra)", prepared=True)
    return image


@pytest.fixture(scope="session")
def libvirt_host() -> Iterator[LibvirtHost]:
    host = LibvirtHost(image=_image())
    try:
        started = time.monotonic()
        host.open()
        LAPS.append(("libvirtd, network and pool up", time.monotonic() - started))
    except Unavailable as error:
        problems = host.close()
        _unavailable(f"{error}; {'; '.join(problems)}" if problems else str(error), prepared=True)
    except BaseException:
        host.close()
        raise
    yield host
    problems = host.close()
    assert not problems, f"left behind: {'; '.join(problems)}"


@pytest.fixture(scope="session")
def kvm_probe(libvirt_host: LibvirtHost) -> ProbeResult:
    started = time.monotonic()
    result = probe_kvm(libvirt_host)
    LAPS.append((f"kvm probe ({'boots' if result.boots else 'no'})", time.monotonic() - started))
    return result


@dataclass(frozen=True)
class Api:
    """The service under test, as a user reaches it."""

    base_url: str
    token: str
    domain_type: str
    operator: VpsCommand

    def host_used(self) -> dict[str, int]:
        """What placement has promised on the libvirt host, as `vps hosts list` says."""
        listed = self.operator.run("hosts", "list", "-o", "json")
        assert listed.returncode == 0, listed.stderr
        used: dict[str, int] = next(
            host["used"] for host in json.loads(listed.stdout) if host["name"] == HOST_NAME
        )
        return used

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.base_url}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )


@pytest.fixture(scope="module", params=["qemu", "kvm"])
def domain_type(request: pytest.FixtureRequest, libvirt_host: LibvirtHost) -> str:
    """Tier 2 (`qemu`, TCG) always; tier 3 (`kvm`) only where a kvm guest really boots."""
    kind = str(request.param)
    if kind == "kvm":
        probe: ProbeResult = request.getfixturevalue("kvm_probe")
        if not probe.boots:
            pytest.skip(f"KVM guests do not boot on this machine: {probe.detail}")
    return kind


@pytest.fixture(scope="module")
def api(
    domain_type: str, libvirt_host: LibvirtHost, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """`vps serve` with the libvirt host registered for the test location (its pool, images,
    bridge and domain type come from `VPS_LIBVIRT_*`): the one place that says how."""
    directory = tmp_path_factory.mktemp(f"serve-{domain_type}")
    vps = VpsCommand(
        data_dir=directory / "data",
        env={
            "VPS_DATABASE_URL": f"sqlite:///{directory / 'vps.db'}",
            "VPS_LOG_LEVEL": "info",
            "VPS_WORKER_POLL_SECONDS": "0.2",
            "VPS_USAGE_SAMPLE_SECONDS": "1",
            "VPS_LIBVIRT_DOMAIN_TYPE": domain_type,
            "VPS_LIBVIRT_STORAGE_POOL": POOL,
            "VPS_LIBVIRT_IMAGES": f"{OS_SLUG}={BASE_VOLUME}",
            "VPS_LIBVIRT_BRIDGE": BRIDGE,
            "VPS_LIBVIRT_SHUTDOWN_TIMEOUT_SECONDS": "30",
            "VPS_LIBVIRT_REBOOT_TIMEOUT_SECONDS": "30",
        },
    )
    for command in (
        ("db", "upgrade"),
        ("catalog", "add-location", LOCATION, "--name", "Guest lab",
         "--ipv4", IPV4_POOL, "--ipv6", IPV6_POOL),
        # The location's one hypervisor host: every server of it is placed there. The
        # default driver stays the simulator, which the libvirt host must not depend on.
        ("hosts", "add", HOST_NAME, "--location", LOCATION, "--driver", "libvirt",
         "--uri", URI, "--vcpus", "2", "--memory-mb", "4096", "--disk-gb", "100"),
        ("accounts", "create", "guests", "--credits", "100"),
    ):  # fmt: skip
        done = vps.run(*command)
        assert done.returncode == 0, f"vps {' '.join(command)}: {done.stderr}"
    token = vps.run("tokens", "create", "guests")
    assert token.returncode == 0, token.stderr
    port = free_port()
    log = directory / "serve.log"
    serve = vps.start("serve", "--port", str(port), log=log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}")
        token_text = token.stdout.strip().splitlines()[-1]
        yield Api(f"http://127.0.0.1:{port}", token_text, domain_type, vps)
    finally:
        stop_gently(serve)
        print(f"\n--- vps serve ({domain_type}) log, last lines:")
        print("\n".join(log.read_text(errors="replace").splitlines()[-40:]))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LAPS:
        terminalreporter.section("real-guest timings")
        for what, seconds in LAPS:
            terminalreporter.write_line(f"{seconds:7.1f} s  {what}")
