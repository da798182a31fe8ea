"""Names, MAC addresses and the domain and storage volume XML of the libvirt driver.

Pure functions with no libvirt import, so they can be read and tested on their own. XML is
built with ElementTree, so every value from a spec or the configuration is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

DomainType = Literal["kvm", "qemu", "test"]

GIB = 1024**3
# Machines are disks: `vda` (the overlay) and a cdrom (the cloud-init seed) on SATA, which
# works on both the `pc` and `q35` machine types.
DISK_TARGET = "vda"
SEED_TARGET = "sda"


def domain_name(prefix: str, server_id: int) -> str:
    return f"{prefix}{server_id}"


def disk_volume_name(prefix: str, server_id: int) -> str:
    return f"{prefix}{server_id}-disk.qcow2"


def seed_volume_name(prefix: str, server_id: int) -> str:
    return f"{prefix}{server_id}-seed.iso"


def server_id_from_name(prefix: str, name: str) -> int | None:
    """The server id of a domain we named, or None for any other domain on the host."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    if not rest.isascii() or not rest.isdigit() or str(int(rest)) != rest:
        return None
    return int(rest)


def mac_address(server_id: int) -> str:
    """A MAC address that only this server id has: `02` (locally administered, unicast)
    followed by the id's low 40 bits. Unique for every id below 2**40, and outside libvirt's
    own random `52:54:00` range, so it never meets a MAC that libvirt made up."""
    value = (0x02 << 40) | (server_id & (2**40 - 1))
    return ":".join(f"{byte:02x}" for byte in value.to_bytes(6, "big"))


@dataclass(frozen=True)
class DomainDevices:
    """Where a domain's devices come from: pool volumes and, optionally, a bridge."""

    pool: str
    disk_volume: str
    seed_volume: str
    mac: str
    bridge: str | None


def domain_xml(
    *,
    domain_type: DomainType,
    name: str,
    title: str,
    vcpus: int,
    memory_mb: int,
    devices: DomainDevices,
) -> str:
    domain = ET.Element("domain", type=domain_type)
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "title").text = title
    ET.SubElement(domain, "memory", unit="MiB").text = str(memory_mb)
    ET.SubElement(domain, "currentMemory", unit="MiB").text = str(memory_mb)
    ET.SubElement(domain, "vcpu", placement="static").text = str(vcpus)
    os_element = ET.SubElement(domain, "os")
    ET.SubElement(os_element, "type", arch="x86_64").text = "hvm"
    ET.SubElement(os_element, "boot", dev="hd")
    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    if domain_type == "kvm":
        ET.SubElement(domain, "cpu", mode="host-passthrough")
    ET.SubElement(domain, "clock", offset="utc")
    # An ACPI reboot restarts the guest in place; a power-off inside the guest ends it.
    ET.SubElement(domain, "on_poweroff").text = "destroy"
    ET.SubElement(domain, "on_reboot").text = "restart"
    ET.SubElement(domain, "on_crash").text = "destroy"
    _devices(ET.SubElement(domain, "devices"), devices)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode")


def _devices(parent: ET.Element, devices: DomainDevices) -> None:
    disk = ET.SubElement(parent, "disk", type="volume", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2", discard="unmap")
    ET.SubElement(disk, "source", pool=devices.pool, volume=devices.disk_volume)
    ET.SubElement(disk, "target", dev=DISK_TARGET, bus="virtio")
    seed = ET.SubElement(parent, "disk", type="volume", device="cdrom")
    ET.SubElement(seed, "driver", name="qemu", type="raw")
    ET.SubElement(seed, "source", pool=devices.pool, volume=devices.seed_volume)
    ET.SubElement(seed, "target", dev=SEED_TARGET, bus="sata")
    ET.SubElement(seed, "readonly")
    if devices.bridge is not None:
        interface = ET.SubElement(parent, "interface", type="bridge")
        ET.SubElement(interface, "source", bridge=devices.bridge)
        ET.SubElement(interface, "mac", address=devices.mac)
        ET.SubElement(interface, "model", type="virtio")
    serial = ET.SubElement(parent, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(parent, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    rng = ET.SubElement(parent, "rng", model="virtio")
    ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    # Guest-side memory statistics (`memoryStats`) need the balloon and a stats period.
    balloon = ET.SubElement(parent, "memballoon", model="virtio")
    ET.SubElement(balloon, "stats", period="10")


def overlay_volume_xml(
    *, name: str, capacity_gb: int, backing_path: str, backing_format: str
) -> str:
    """A qcow2 volume whose reads fall through to the base image until they are written."""
    volume = ET.Element("volume", type="file")
    ET.SubElement(volume, "name").text = name
    ET.SubElement(volume, "capacity", unit="GiB").text = str(capacity_gb)
    ET.SubElement(volume, "allocation", unit="bytes").text = "0"
    target = ET.SubElement(volume, "target")
    ET.SubElement(target, "format", type="qcow2")
    backing = ET.SubElement(volume, "backingStore")
    ET.SubElement(backing, "path").text = backing_path
    ET.SubElement(backing, "format", type=backing_format)
    ET.indent(volume)
    return ET.tostring(volume, encoding="unicode")


def raw_volume_xml(*, name: str, size_bytes: int) -> str:
    volume = ET.Element("volume", type="file")
    ET.SubElement(volume, "name").text = name
    ET.SubElement(volume, "capacity", unit="bytes").text = str(size_bytes)
    ET.SubElement(volume, "allocation", unit="bytes").text = str(size_bytes)
    target = ET.SubElement(volume, "target")
    ET.SubElement(target, "format", type="raw")
    ET.indent(volume)
    return ET.tostring(volume, encoding="unicode")


def volume_format(volume_xml: str) -> str:
    """The format of a volume as libvirt describes it (`raw` when it names none)."""
    # The document comes from libvirt itself, not from a user.
    root = ET.fromstring(volume_xml)  # noqa: S314
    element = root.find("./target/format")
    return element.get("type", "raw") if element is not None else "raw"
