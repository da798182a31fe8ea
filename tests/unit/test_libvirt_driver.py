"""The libvirt driver against libvirt's in-process `test:///default` (no daemon).

Each test holds its own connection for its whole length: the test driver keeps its state
while any connection is open and starts from its default state once all are closed.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

libvirt = pytest.importorskip("libvirt")
pycdlib = pytest.importorskip("pycdlib")

from vps.drivers import cloudinit  # noqa: E402
from vps.drivers import libvirt_xml as lxml  # noqa: E402
from vps.drivers.base import (  # noqa: E402
    MachineSpec,
    PermanentDriverError,
    RetriableDriverError,
)
from vps.drivers.libvirt import (  # noqa: E402
    LibvirtConfig,
    LibvirtDriver,
    memory_used_mb,
)
from vps.drivers.libvirt_errors import ERRORS, classify  # noqa: E402

URI = "test:///default"
POOL = "default-pool"
BASE = "ubuntu-22.04.qcow2"
SPEC = MachineSpec(
    server_id=42,
    name="web-01",
    hostname="web01.example.com",
    vcpus=2,
    memory_mb=4096,
    disk_gb=80,
    bandwidth_gb=2048,
    image="ubuntu-22.04",
    ipv4_address="203.0.113.10",
    ipv6_address="2001:db8:1::10",
    ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7 alice@example.com",
)
CONFIG = LibvirtConfig(
    uri=URI,
    domain_type="kvm",
    storage_pool=POOL,
    images={"ubuntu-22.04": BASE, "debian-12": "debian-12.qcow2"},
    bridge="br-vps",
)


def libvirt_error(code: int, message: str = "synthetic failure") -> Any:
    error = libvirt.libvirtError(message)
    error.err = (code, 0, message, 2, None, None, None, 0, 0)
    return error


class RecordingDriver(LibvirtDriver):
    """Keeps what the driver uploads, which the test driver cannot store."""

    def __init__(self, config: LibvirtConfig) -> None:
        super().__init__(config)
        self.uploads: dict[str, bytes] = {}

    def _write_volume(self, volume: Any, data: bytes) -> None:
        self.uploads[str(volume.name())] = data
        super()._write_volume(volume, data)


@dataclass
class Host:
    conn: Any
    made: list[RecordingDriver] = field(default_factory=list)

    @property
    def pool(self) -> Any:
        return self.conn.storagePoolLookupByName(POOL)

    def driver(self, **changes: Any) -> RecordingDriver:
        made = RecordingDriver(replace(CONFIG, **changes))
        self.made.append(made)
        return made

    def domain(self, server_id: int = SPEC.server_id) -> Any:
        return self.conn.lookupByName(f"vps-{server_id}")

    def domain_xml(self, server_id: int = SPEC.server_id) -> ET.Element:
        return ET.fromstring(self.domain(server_id).XMLDesc(0))  # noqa: S314

    def vps_domains(self) -> list[str]:
        return sorted(d.name() for d in self.conn.listAllDomains(0) if d.name() != "test")

    def volumes(self) -> list[str]:
        return sorted(self.pool.listVolumes())

    def volume_xml(self, name: str) -> ET.Element:
        return ET.fromstring(self.pool.storageVolLookupByName(name).XMLDesc(0))  # noqa: S314


def el(root: ET.Element, path: str) -> ET.Element:
    found = root.find(path)
    assert found is not None, path
    return found


def fresh_test_hypervisor() -> Any:
    """A connection to `test:///default` in its default state. Objects of an earlier test's
    connection may still sit in reference cycles (an exception's traceback) and keep its
    state alive: collecting them lets the test driver start over."""
    conn = libvirt.open(URI)
    if conn.storagePoolLookupByName(POOL).listVolumes():
        conn.close()
        gc.collect()
        conn = libvirt.open(URI)
    assert conn.storagePoolLookupByName(POOL).listVolumes() == [], "state left by a test"
    return conn


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    conn = fresh_test_hypervisor()
    try:
        pool = conn.storagePoolLookupByName(POOL)
        pool.createXML(
            f"<volume><name>{BASE}</name><capacity unit='GiB'>2</capacity>"
            "<target><format type='qcow2'/></target></volume>",
            0,
        )
        made = Host(conn)
        yield made
        for driver in made.made:
            await driver.close()
    finally:
        conn.close()


MACHINE_VOLUMES = ["vps-42-disk.qcow2", "vps-42-seed.iso"]


# Pure parts: names, MAC addresses, XML, the seed.


def test_names_and_ids() -> None:
    assert lxml.domain_name("vps-", 42) == "vps-42"
    assert lxml.server_id_from_name("vps-", "vps-42") == 42
    for other in ("test", "vps-", "vps-abc", "vps-007", "vps--1", "vps-4 2", "x-42", "vps-٤٢"):
        assert lxml.server_id_from_name("vps-", other) is None, other


def test_mac_addresses_are_locally_administered_and_one_per_server() -> None:
    assert lxml.mac_address(42) == "02:00:00:00:00:2a"
    assert lxml.mac_address(2**40 - 1) == "02:ff:ff:ff:ff:ff"
    macs = {lxml.mac_address(server_id) for server_id in range(1, 5000)}
    assert len(macs) == 4999
    for mac in macs:
        first = int(mac[:2], 16)
        assert first & 0b10 and not first & 0b1  # locally administered, unicast


def test_domain_xml_for_kvm_without_a_bridge_has_no_nic() -> None:
    document = lxml.domain_xml(
        domain_type="kvm",
        name="vps-1",
        title="a <b> & c",
        vcpus=1,
        memory_mb=512,
        devices=lxml.DomainDevices("pool", "d.qcow2", "s.iso", "02:00:00:00:00:01", None),
    )
    root = ET.fromstring(document)  # noqa: S314
    assert root.get("type") == "kvm"
    assert root.findtext("title") == "a <b> & c"
    assert el(root, "cpu").get("mode") == "host-passthrough"
    assert root.find("devices/interface") is None


def test_config_images_cannot_change_and_test_uris_run_test_domains() -> None:
    images = {"ubuntu-22.04": BASE}
    config = replace(CONFIG, images=images)
    images["rocky-9"] = "rocky.qcow2"
    assert "rocky-9" not in config.images
    with pytest.raises(TypeError):
        config.images["rocky-9"] = "rocky.qcow2"  # type: ignore[index]
    assert config.effective_domain_type == "test"
    assert replace(CONFIG, uri="qemu:///system").effective_domain_type == "kvm"


def test_memory_used_prefers_the_guest_view() -> None:
    gib = 1024 * 1024
    assert memory_used_mb({"available": 4 * gib, "usable": 3 * gib, "rss": gib}, 4096) == 1024
    assert memory_used_mb({"actual": 4 * gib, "unused": 1 * gib}, 4096) == 3072
    assert memory_used_mb({"actual": 4 * gib, "rss": 2 * gib}, 4096) == 2048
    assert memory_used_mb({}, 4096) == 4096


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (libvirt.VIR_ERR_RPC, "", RetriableDriverError),
        (libvirt.VIR_ERR_NO_CONNECT, "", RetriableDriverError),
        (libvirt.VIR_ERR_SYSTEM_ERROR, "Failed to connect socket", RetriableDriverError),
        (libvirt.VIR_ERR_OPERATION_TIMEOUT, "", RetriableDriverError),
        (libvirt.VIR_ERR_OPERATION_INVALID, "domain is not running", RetriableDriverError),
        (libvirt.VIR_ERR_INTERNAL_ERROR, "", RetriableDriverError),
        (libvirt.VIR_ERR_RESOURCE_BUSY, "", RetriableDriverError),
        (9999, "a code from a newer libvirt", RetriableDriverError),
        (libvirt.VIR_ERR_XML_ERROR, "", PermanentDriverError),
        (libvirt.VIR_ERR_XML_DETAIL, "", PermanentDriverError),
        (libvirt.VIR_ERR_CONFIG_UNSUPPORTED, "", PermanentDriverError),
        (libvirt.VIR_ERR_NO_STORAGE_POOL, "", PermanentDriverError),
        (libvirt.VIR_ERR_NO_STORAGE_VOL, "", PermanentDriverError),
        (libvirt.VIR_ERR_NO_DOMAIN, "", PermanentDriverError),
        (libvirt.VIR_ERR_AUTH_FAILED, "", PermanentDriverError),
        (libvirt.VIR_ERR_ACCESS_DENIED, "", PermanentDriverError),
        (
            libvirt.VIR_ERR_SYSTEM_ERROR,
            "write failed: No space left on device",
            PermanentDriverError,
        ),
        (libvirt.VIR_ERR_INTERNAL_ERROR, "Not enough free space in pool", PermanentDriverError),
    ],
)
def test_error_mapping(code: int, message: str, kind: type[Exception]) -> None:
    mapped, reason = classify(code, message)
    assert mapped is kind
    assert reason
    if message:
        assert message not in reason


def test_every_mapped_code_exists_in_libvirt() -> None:
    codes = {getattr(libvirt, name) for name in dir(libvirt) if name.startswith("VIR_ERR_")}
    assert set(ERRORS) <= codes


def test_the_seed_image_holds_the_three_files_under_their_names() -> None:
    files = cloudinit.seed_files(SPEC, lxml.mac_address(42), cloudinit.GuestNetwork())
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(cloudinit.seed_iso(files)))
    try:
        assert iso.pvd.volume_identifier.decode().rstrip() == "cidata"
        for name, content in files.items():
            for path in ({"rr_path": "/" + name}, {"joliet_path": "/" + name}):
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, **path)
                assert out.getvalue() == content
    finally:
        iso.close()


def test_network_config_without_addresses_or_with_nameservers() -> None:
    bare = replace(SPEC, ipv4_address=None, ipv6_address=None)
    config = cloudinit.network_config(bare, "02:00:00:00:00:2a", cloudinit.GuestNetwork())
    assert config["ethernets"]["eth0"]["addresses"] == []
    assert "routes" not in config["ethernets"]["eth0"]
    network = cloudinit.GuestNetwork(ipv4_prefix_length=28, nameservers=("192.0.2.53",))
    config = cloudinit.network_config(SPEC, "02:00:00:00:00:2a", network)
    eth0 = config["ethernets"]["eth0"]
    assert eth0["addresses"][0] == "203.0.113.10/28"
    assert eth0["routes"][0] == {"to": "0.0.0.0/0", "via": "203.0.113.1"}
    assert eth0["nameservers"] == {"addresses": ["192.0.2.53"]}


def test_network_config_takes_the_prefix_and_gateway_of_the_pool() -> None:
    spec = replace(SPEC, ipv4_network="203.0.113.0/25", ipv6_network="2001:db8:1::/56")
    # The configured default (/24, /64) only serves a spec without its pools' networks.
    config = cloudinit.network_config(spec, "02:00:00:00:00:2a", cloudinit.GuestNetwork())
    eth0 = config["ethernets"]["eth0"]
    assert eth0["addresses"] == ["203.0.113.10/25", "2001:db8:1::10/56"]
    assert eth0["routes"] == [
        {"to": "0.0.0.0/0", "via": "203.0.113.1"},
        {"to": "::/0", "via": "2001:db8:1::1"},
    ]


def test_the_pure_modules_import_without_libvirt() -> None:
    code = (
        "import sys; sys.modules['libvirt'] = None\n"
        "import vps.drivers.libvirt_xml, vps.drivers.cloudinit, vps.drivers.registry\n"
        "try:\n    import vps.drivers.libvirt\nexcept ImportError:\n    print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "ok"


# The driver on the test hypervisor.


async def test_the_domain_is_built_from_the_spec(host: Host) -> None:
    await host.driver().create(SPEC)
    root = host.domain_xml()
    assert root.get("type") == "test"
    assert root.findtext("title") == SPEC.name
    assert root.findtext("vcpu") == "2"
    assert el(root, "memory").get("unit") == "KiB"
    assert root.findtext("memory") == str(4096 * 1024)
    disk, seed = root.findall("devices/disk")
    assert disk.get("device") == "disk" and el(disk, "driver").get("type") == "qcow2"
    assert el(disk, "source").attrib == {"pool": POOL, "volume": "vps-42-disk.qcow2"}
    assert el(disk, "target").attrib == {"dev": "vda", "bus": "virtio"}
    assert seed.get("device") == "cdrom" and seed.find("readonly") is not None
    assert el(seed, "source").attrib == {"pool": POOL, "volume": "vps-42-seed.iso"}
    (nic,) = root.findall("devices/interface")
    assert nic.get("type") == "bridge"
    assert el(nic, "source").get("bridge") == "br-vps"
    assert el(nic, "mac").get("address") == "02:00:00:00:00:2a"
    assert root.find("devices/memballoon/stats") is not None
    assert host.domain().isActive()


async def test_without_a_bridge_the_machine_has_no_nic(host: Host) -> None:
    driver = host.driver(bridge=None)
    await driver.create(SPEC)
    assert host.domain_xml().find("devices/interface") is None
    assert (await driver.usage(SPEC, running=True)).bandwidth_used_gb == 0


async def test_the_disk_is_an_overlay_of_the_base_image(host: Host) -> None:
    await host.driver().create(SPEC)
    volume = host.volume_xml("vps-42-disk.qcow2")
    assert el(volume, "capacity").text == str(80 * 1024**3)
    assert el(volume, "target/format").get("type") == "qcow2"
    assert volume.findtext("backingStore/path") == f"/{POOL}/{BASE}"
    assert el(volume, "backingStore/format").get("type") == "qcow2"


async def test_the_seed_volume_holds_the_cloud_init_files(host: Host) -> None:
    driver = host.driver()
    await driver.create(SPEC)
    image = driver.uploads["vps-42-seed.iso"]
    assert el(host.volume_xml("vps-42-seed.iso"), "capacity").text == str(len(image))
    label, files = cloudinit.read_seed_iso(image)
    assert label == "cidata"
    assert json.loads(files["meta-data"]) == {"instance-id": "42", "local-hostname": "web01"}
    header, _, body = files["user-data"].decode().partition("\n")
    assert header == "#cloud-config"
    user = json.loads(body)
    assert user["hostname"] == "web01" and user["fqdn"] == "web01.example.com"
    assert user["ssh_authorized_keys"] == [SPEC.ssh_public_key]
    network = json.loads(files["network-config"])
    eth0 = network["ethernets"]["eth0"]
    assert network["version"] == 2
    assert eth0["match"] == {"macaddress": "02:00:00:00:00:2a"}
    assert eth0["addresses"] == ["203.0.113.10/24", "2001:db8:1::10/64"]
    assert {route["via"] for route in eth0["routes"]} == {"203.0.113.1", "2001:db8:1::1"}


async def test_create_is_idempotent(host: Host) -> None:
    driver = host.driver()
    await asyncio.gather(*(driver.create(SPEC) for _ in range(5)))
    await host.driver().create(SPEC)  # another driver, as another process
    assert host.vps_domains() == ["vps-42"]
    assert host.volumes() == sorted([BASE, *MACHINE_VOLUMES])
    assert list(driver.uploads) == ["vps-42-seed.iso"]


async def test_create_starts_a_stopped_or_paused_machine(host: Host) -> None:
    driver = host.driver()
    await driver.create(SPEC)
    await driver.stop(SPEC.server_id)
    await driver.create(SPEC)
    assert host.domain().state()[0] == libvirt.VIR_DOMAIN_RUNNING
    host.domain().suspend()
    await driver.start(SPEC.server_id)
    assert host.domain().state()[0] == libvirt.VIR_DOMAIN_RUNNING


async def test_create_replaces_volumes_left_by_a_build_that_died(host: Host) -> None:
    host.pool.createXML(lxml.raw_volume_xml(name="vps-42-disk.qcow2", size_bytes=1), 0)
    await host.driver().create(SPEC)
    volume = host.volume_xml("vps-42-disk.qcow2")
    assert volume.findtext("backingStore/path") == f"/{POOL}/{BASE}"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (replace(SPEC, image="plan9"), "no base image is configured for 'plan9'"),
        (replace(SPEC, image="debian-12"), "the base image of 'debian-12' is missing"),
        (replace(SPEC, disk_gb=1), "larger than the disk"),
    ],
)
async def test_a_create_that_cannot_succeed_leaves_nothing(
    host: Host, spec: MachineSpec, reason: str
) -> None:
    with pytest.raises(PermanentDriverError, match=reason):
        await host.driver().create(spec)
    assert host.vps_domains() == []
    assert host.volumes() == [BASE]


@pytest.mark.parametrize(
    ("cls", "method", "code", "kind"),
    [
        ("virConnect", "defineXML", "XML_DETAIL", PermanentDriverError),
        ("virDomain", "create", "CONFIG_UNSUPPORTED", PermanentDriverError),
        ("virDomain", "create", "OPERATION_TIMEOUT", RetriableDriverError),
    ],
)
async def test_a_create_that_fails_midway_removes_what_it_made(
    host: Host,
    monkeypatch: pytest.MonkeyPatch,
    cls: str,
    method: str,
    code: str,
    kind: type[Exception],
) -> None:
    def refuse(*_args: Any) -> Any:
        raise libvirt_error(getattr(libvirt, f"VIR_ERR_{code}"))

    monkeypatch.setattr(getattr(libvirt, cls), method, refuse)
    with pytest.raises(kind, match="create of server 42 failed"):
        await host.driver().create(SPEC)
    assert host.vps_domains() == []
    assert host.volumes() == [BASE]


async def test_a_create_that_loses_the_race_to_define_uses_the_winners_machine(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    define = libvirt.virConnect.defineXML

    def define_twice(conn: Any, document: str) -> Any:
        define(conn, document)  # the other process
        raise libvirt_error(libvirt.VIR_ERR_OPERATION_FAILED, "already defined")

    monkeypatch.setattr(libvirt.virConnect, "defineXML", define_twice)
    await host.driver().create(SPEC)
    assert host.vps_domains() == ["vps-42"] and host.domain().isActive()
    assert host.volumes() == sorted([BASE, *MACHINE_VOLUMES])


async def test_a_base_image_copied_into_the_pool_is_found(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    refreshed: list[int] = []

    def refresh(_pool: Any, flags: int = 0) -> int:
        # What a refresh of a directory pool does with a file copied into it.
        host.pool.createXML(
            "<volume><name>debian-12.qcow2</name><capacity unit='GiB'>2</capacity></volume>", 0
        )
        refreshed.append(flags)
        return 0

    monkeypatch.setattr(libvirt.virStoragePool, "refresh", refresh)
    driver = host.driver()
    await driver.create(replace(SPEC, image="debian-12"))
    assert refreshed == [0]
    assert host.volume_xml("vps-42-disk.qcow2").findtext("backingStore/path") == (
        f"/{POOL}/debian-12.qcow2"
    )
    await driver.close()
    await driver.close()


async def test_invalid_addresses_are_permanent(host: Host) -> None:
    with pytest.raises(PermanentDriverError, match="addresses are invalid"):
        await host.driver().create(replace(SPEC, ipv4_address="203.0.113.300"))
    assert host.vps_domains() == [] and host.volumes() == [BASE]


async def test_a_hypervisor_that_cannot_be_reached_is_retriable(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(_uri: str) -> Any:
        raise libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR, "Failed to connect socket")

    monkeypatch.setattr(libvirt, "open", unreachable)
    with pytest.raises(RetriableDriverError, match="cannot connect to the hypervisor"):
        await host.driver().list_machines()


async def test_a_missing_storage_pool_is_permanent(host: Host) -> None:
    with pytest.raises(PermanentDriverError, match="storage pool"):
        await host.driver(storage_pool="nowhere").create(SPEC)
    assert host.vps_domains() == []


async def test_delete_removes_the_domain_and_its_volumes(host: Host) -> None:
    driver = host.driver()
    await driver.create(SPEC)
    await driver.delete(SPEC.server_id)
    assert host.vps_domains() == []
    assert host.volumes() == [BASE]
    await driver.delete(SPEC.server_id)
    await driver.create(SPEC)
    await driver.stop(SPEC.server_id)
    await driver.delete(SPEC.server_id)
    assert host.vps_domains() == [] and host.volumes() == [BASE]


async def test_delete_removes_volumes_left_without_a_domain(host: Host) -> None:
    for name in MACHINE_VOLUMES:
        host.pool.createXML(lxml.raw_volume_xml(name=name, size_bytes=1), 0)
    await host.driver().delete(SPEC.server_id)
    assert host.volumes() == [BASE]


async def test_undefine_drops_flags_the_hypervisor_does_not_know(host: Host) -> None:
    # The test driver refuses the NVRAM and checkpoint flags; the domain still goes.
    driver = host.driver()
    await driver.create(SPEC)
    await driver.delete(SPEC.server_id)
    with pytest.raises(libvirt.libvirtError):
        host.domain()


async def test_list_machines_ignores_domains_it_did_not_name(host: Host) -> None:
    for name in ("vps-abc", "vps-007", "other-5"):
        host.conn.defineXML(
            f"<domain type='test'><name>{name}</name><memory>1024</memory>"
            "<os><type>hvm</type></os></domain>"
        )
    driver = host.driver()
    await driver.create(SPEC)
    assert await driver.list_machines() == [SPEC.server_id]
    assert await host.driver(name_prefix="other-").list_machines() == [5]


async def test_stop_forces_the_machine_off_after_the_deadline(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = host.driver(shutdown_timeout_seconds=0.3)
    await driver.create(SPEC)
    calls: list[str] = []
    destroy = libvirt.virDomain.destroy

    def ignore_acpi(_domain: Any, *_args: Any) -> int:
        calls.append("shutdown")
        return 0

    def record_destroy(domain: Any) -> int:
        calls.append("destroy")
        return int(destroy(domain))

    monkeypatch.setattr(libvirt.virDomain, "shutdown", ignore_acpi)
    monkeypatch.setattr(libvirt.virDomain, "destroy", record_destroy)
    started = time.monotonic()
    await driver.stop(SPEC.server_id)
    assert 0.3 <= time.monotonic() - started < 2
    assert calls == ["shutdown", "destroy"]
    assert not host.domain().isActive()
    await driver.stop(SPEC.server_id)
    assert calls == ["shutdown", "destroy"]


async def test_stop_with_a_zero_deadline_and_a_paused_machine(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = host.driver(shutdown_timeout_seconds=0)
    await driver.create(SPEC)
    host.domain().suspend()
    await driver.stop(SPEC.server_id)  # a paused guest cannot answer ACPI
    assert not host.domain().isActive()
    await driver.start(SPEC.server_id)
    monkeypatch.setattr(libvirt.virDomain, "shutdown", lambda _domain, *_args: 0)
    await driver.stop(SPEC.server_id)
    assert not host.domain().isActive()


async def test_stop_waits_for_a_guest_on_its_way_down(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = host.driver(shutdown_timeout_seconds=0.3)
    await driver.create(SPEC)
    calls: list[str] = []
    destroy = libvirt.virDomain.destroy

    def record_destroy(domain: Any) -> int:
        calls.append("destroy")
        return int(destroy(domain))

    # Shutting down already (libvirt's "shutdown" state, still active): no second ACPI
    # request, and not done until the machine is off.
    monkeypatch.setattr(
        libvirt.virDomain, "state", lambda _d, *_a: [libvirt.VIR_DOMAIN_SHUTDOWN, 1]
    )
    monkeypatch.setattr(libvirt.virDomain, "shutdown", lambda _d, *_a: calls.append("shutdown"))
    monkeypatch.setattr(libvirt.virDomain, "destroy", record_destroy)
    await driver.stop(SPEC.server_id)
    assert calls == ["destroy"]
    assert not host.domain().isActive()


def record_power_calls(monkeypatch: pytest.MonkeyPatch, *, acpi: bool) -> list[str]:
    """Record the driver's shutdown, destroy and create calls; with `acpi` False the guest
    ignores the shutdown request, as a hung or ACPI-less guest does."""
    calls: list[str] = []
    shutdown, destroy, create = (
        libvirt.virDomain.shutdown,
        libvirt.virDomain.destroy,
        libvirt.virDomain.create,
    )

    def record(name: str, call: Callable[..., int], run: bool = True) -> Callable[..., int]:
        def recorded(domain: Any, *args: Any) -> int:
            calls.append(name)
            return int(call(domain, *args)) if run else 0

        return recorded

    monkeypatch.setattr(libvirt.virDomain, "shutdown", record("shutdown", shutdown, acpi))
    monkeypatch.setattr(libvirt.virDomain, "destroy", record("destroy", destroy))
    monkeypatch.setattr(libvirt.virDomain, "create", record("create", create))
    return calls


async def test_reboot_shuts_the_guest_down_and_boots_it_again(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = host.driver()
    await driver.create(SPEC)
    before = host.domain().ID()
    calls = record_power_calls(monkeypatch, acpi=True)
    await driver.reboot(SPEC.server_id)
    assert calls == ["shutdown", "create"]
    assert host.domain().state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert host.domain().ID() != before  # a new boot, not the old one still running


async def test_reboot_forces_off_a_guest_that_ignores_the_request(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: a reboot used to be libvirt's fire-and-forget request, awaited by polling
    # for `running`, which the domain was all along: a guest that ignored it was reported
    # rebooted and never reset.
    driver = host.driver(reboot_timeout_seconds=0.3)
    await driver.create(SPEC)
    before = host.domain().ID()
    calls = record_power_calls(monkeypatch, acpi=False)
    started = time.monotonic()
    await driver.reboot(SPEC.server_id)
    assert 0.3 <= time.monotonic() - started < 2
    assert calls == ["shutdown", "destroy", "create"]
    assert host.domain().state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert host.domain().ID() != before


async def test_reboot_of_a_paused_machine_boots_it_again(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = host.driver()
    await driver.create(SPEC)
    host.domain().suspend()
    calls = record_power_calls(monkeypatch, acpi=True)
    await driver.reboot(SPEC.server_id)  # a paused guest cannot answer ACPI
    assert calls == ["destroy", "create"]
    assert host.domain().state()[0] == libvirt.VIR_DOMAIN_RUNNING


async def test_power_calls_on_a_missing_machine_are_permanent(host: Host) -> None:
    driver = host.driver()
    for call in (driver.start, driver.stop, driver.reboot):
        with pytest.raises(PermanentDriverError, match="no machine for server 5"):
            await call(5)
    with pytest.raises(PermanentDriverError):
        await driver.usage(replace(SPEC, server_id=5), running=True)


async def test_usage_stays_within_the_spec(host: Host) -> None:
    # The test driver's statistics are synthetic and huge: the driver clamps them.
    driver = host.driver()
    await driver.create(SPEC)
    first = await driver.usage(SPEC, running=True)
    second = await driver.usage(SPEC, running=True)
    for usage in (first, second):
        assert 0 < usage.cpu_percent <= 100
        assert 0 < usage.memory_used_mb <= SPEC.memory_mb
        assert 0 < usage.disk_used_gb <= SPEC.disk_gb
        assert 0 <= usage.bandwidth_used_gb <= SPEC.bandwidth_gb
    await driver.stop(SPEC.server_id)
    stopped = await driver.usage(SPEC, running=False)
    assert stopped.cpu_percent == 0 and stopped.memory_used_mb == 0
    assert stopped.bandwidth_used_gb == second.bandwidth_used_gb
    await driver.start(SPEC.server_id)
    # Told it is stopped, the driver reports no CPU even if the machine runs.
    assert (await driver.usage(SPEC, running=False)).cpu_percent == 0


async def test_usage_measures_cpu_over_the_time_between_calls(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = host.driver()
    await driver.create(SPEC)
    clock = iter(range(0, 10**12, 10**9))  # one second of wall time per call
    cpu_time = iter([0, 500_000_000, 1_500_000_000, 9_000_000_000])
    info = libvirt.virDomain.info

    def fake_info(domain: Any) -> list[int]:
        return [*info(domain)[:4], next(cpu_time)]

    monkeypatch.setattr(libvirt.virDomain, "info", fake_info)
    monkeypatch.setattr(time, "monotonic_ns", lambda: next(clock))
    monkeypatch.setattr("vps.drivers.libvirt.CPU_SAMPLE_SECONDS", 0)
    assert (await driver.usage(SPEC, running=True)).cpu_percent == 25.0  # 0.5 s of 2 vCPU-s
    assert (await driver.usage(SPEC, running=True)).cpu_percent == 50.0
    assert (await driver.usage(SPEC, running=True)).cpu_percent == 100.0  # clamped


async def test_a_lost_connection_is_retriable_and_reopened(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = host.driver()
    await driver.create(SPEC)
    first = driver._conn
    with monkeypatch.context() as patch:

        def lose(*_args: Any) -> Any:
            raise libvirt_error(libvirt.VIR_ERR_RPC, "End of file while reading data")

        patch.setattr(libvirt.virConnect, "listAllDomains", lose)
        with pytest.raises(RetriableDriverError, match="connection to the hypervisor was lost"):
            await driver.list_machines()
    assert driver._conn is None
    assert await driver.list_machines() == [SPEC.server_id]
    assert driver._conn is not None and driver._conn is not first


async def test_a_connection_closed_behind_the_driver_is_reopened(host: Host) -> None:
    driver = host.driver()
    await driver.create(SPEC)
    assert driver._conn is not None
    driver._conn.close()
    assert await driver.list_machines() == [SPEC.server_id]


async def test_libvirt_messages_stay_inside_the_driver(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    native = "domain 'vps-42' uuid 6695eb01-f6a4-8304-79aa-97f2502e193f at /var/lib/x"

    def fail(*_args: Any) -> Any:
        raise libvirt_error(libvirt.VIR_ERR_OPERATION_TIMEOUT, native)

    driver = host.driver()
    await driver.create(SPEC)
    monkeypatch.setattr(libvirt.virDomain, "shutdown", fail)
    with pytest.raises(RetriableDriverError) as raised:
        await driver.stop(SPEC.server_id)
    assert str(raised.value) == "stop of server 42 failed: the hypervisor timed out"
    assert "6695eb01" not in str(raised.value)


async def test_the_seed_is_uploaded_through_a_stream() -> None:
    @dataclass
    class Stream:
        sent: list[bytes] = field(default_factory=list)
        events: list[str] = field(default_factory=list)
        fail_after: int | None = None

        def send(self, data: bytes) -> int:
            if self.fail_after is not None and len(self.sent) == self.fail_after:
                raise libvirt_error(libvirt.VIR_ERR_RPC)
            self.sent.append(data)
            return len(data)

        def finish(self) -> None:
            self.events.append("finish")

        def abort(self) -> None:
            self.events.append("abort")

    @dataclass
    class Volume:
        uploads: list[tuple[int, int]] = field(default_factory=list)

        def upload(self, _stream: Stream, offset: int, length: int, _flags: int) -> None:
            self.uploads.append((offset, length))

    class Conn:
        def __init__(self, stream: Stream) -> None:
            self.stream = stream

        def isAlive(self) -> int:  # noqa: N802
            return 1

        def newStream(self, _flags: int) -> Stream:  # noqa: N802
            return self.stream

    data = bytes(range(256)) * 2048  # two chunks and a bit
    driver = LibvirtDriver(replace(CONFIG, uri="qemu:///system"))
    try:
        stream, volume = Stream(), Volume()
        driver._conn = Conn(stream)
        driver._write_volume(volume, data)
        assert volume.uploads == [(0, len(data))]
        assert b"".join(stream.sent) == data and len(stream.sent) == 2
        assert stream.events == ["finish"]
        failing = Stream(fail_after=1)
        driver._conn = Conn(failing)
        with pytest.raises(libvirt.libvirtError):
            driver._write_volume(Volume(), data)
        assert failing.events == ["abort"]
    finally:
        driver._conn = None
        await driver.close()


async def test_calls_run_off_the_event_loop(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = host.driver()
    threads: list[str] = []
    lookup: Callable[..., Any] = libvirt.virConnect.lookupByName

    def record(conn: Any, name: str) -> Any:
        threads.append(threading.current_thread().name)
        return lookup(conn, name)

    monkeypatch.setattr(libvirt.virConnect, "lookupByName", record)
    await driver.create(SPEC)
    assert threads and all(name.startswith("vps-libvirt") for name in threads)
