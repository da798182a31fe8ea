"""The cloud-init NoCloud seed of a machine: its files, and the ISO9660 image holding them.

cloud-init finds the seed on any filesystem labelled `cidata` and reads `meta-data`,
`user-data` and `network-config` from it. The files are written as JSON, which is also YAML,
so no value a user chose (a hostname, a key comment) can change their structure.
"""

from __future__ import annotations

import io
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

import pycdlib

from vps.drivers.base import MachineSpec

VOLUME_LABEL = "cidata"
# ISO9660 level-1 names beside the Rock Ridge and Joliet names cloud-init actually reads.
_ISO_NAMES = {
    "meta-data": "METADATA.;1",
    "user-data": "USERDATA.;1",
    "network-config": "NETWORK.;1",
}
INTERFACE = "eth0"


@dataclass(frozen=True)
class GuestNetwork:
    """How the guest's static addresses are configured. The control plane hands out hosts
    of a pool and keeps its first hosts for the gateway, so the gateway is the network's
    first host."""

    ipv4_prefix_length: int = 24
    ipv6_prefix_length: int = 64
    nameservers: tuple[str, ...] = ()


def local_hostname(spec: MachineSpec) -> str:
    """The machine's short hostname: the first label of its FQDN, or its name."""
    return (spec.hostname.split(".", 1)[0] if spec.hostname else spec.name).lower()


def meta_data(spec: MachineSpec) -> dict[str, Any]:
    return {"instance-id": str(spec.server_id), "local-hostname": local_hostname(spec)}


def user_data(spec: MachineSpec) -> dict[str, Any]:
    config: dict[str, Any] = {"hostname": local_hostname(spec), "preserve_hostname": False}
    if spec.hostname:
        config["fqdn"] = spec.hostname.lower()
        config["prefer_fqdn_over_hostname"] = False
    if spec.ssh_public_key:
        config["ssh_authorized_keys"] = [spec.ssh_public_key.strip()]
    return config


def network_config(spec: MachineSpec, mac: str, network: GuestNetwork) -> dict[str, Any]:
    """Netplan-style version 2: the NIC matched by its MAC, static addresses, default
    routes through each network's first host. The prefix is that of the pool the address
    came from (`spec.ipv4_network`), or the configured default when the spec has none."""
    addresses: list[str] = []
    routes: list[dict[str, str]] = []
    for address, pool, fallback, default in (
        (spec.ipv4_address, spec.ipv4_network, network.ipv4_prefix_length, "0.0.0.0/0"),
        (spec.ipv6_address, spec.ipv6_network, network.ipv6_prefix_length, "::/0"),
    ):
        if address is None:
            continue
        prefix = ipaddress.ip_network(pool).prefixlen if pool else fallback
        interface = ipaddress.ip_interface(f"{address}/{prefix}")
        addresses.append(str(interface))
        gateway = interface.network.network_address + 1
        if gateway != interface.ip:
            routes.append({"to": default, "via": str(gateway)})
    ethernet: dict[str, Any] = {
        "match": {"macaddress": mac},
        "set-name": INTERFACE,
        "dhcp4": False,
        "dhcp6": False,
        "accept-ra": False,
        "addresses": addresses,
    }
    if routes:
        ethernet["routes"] = routes
    if network.nameservers:
        ethernet["nameservers"] = {"addresses": list(network.nameservers)}
    return {"version": 2, "ethernets": {INTERFACE: ethernet}}


def seed_files(spec: MachineSpec, mac: str, network: GuestNetwork) -> dict[str, bytes]:
    """The seed's files by name, as cloud-init reads them."""

    def dump(data: dict[str, Any]) -> str:
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    return {
        "meta-data": dump(meta_data(spec)).encode(),
        "user-data": ("#cloud-config\n" + dump(user_data(spec))).encode(),
        "network-config": dump(network_config(spec, mac, network)).encode(),
    }


def seed_iso(files: dict[str, bytes]) -> bytes:
    """An ISO9660 image labelled `cidata` holding `files` at its root, with Rock Ridge and
    Joliet names so that the guest sees `user-data` rather than `USERDATA.;1`."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL)
    try:
        for name, content in files.items():
            iso.add_fp(
                io.BytesIO(content),
                len(content),
                "/" + _ISO_NAMES[name],
                rr_name=name,
                joliet_path="/" + name,
            )
        output = io.BytesIO()
        iso.write_fp(output)
    finally:
        iso.close()
    return output.getvalue()


def read_seed_iso(image: bytes) -> tuple[str, dict[str, bytes]]:
    """The volume label and files of a seed image, by their Rock Ridge names."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    try:
        label = iso.pvd.volume_identifier.decode().rstrip()
        files: dict[str, bytes] = {}
        for name, iso_name in _ISO_NAMES.items():
            content = io.BytesIO()
            try:
                iso.get_file_from_iso_fp(content, iso_path="/" + iso_name)
            except pycdlib.pycdlibexception.PyCdlibInvalidInput:
                continue
            files[name] = content.getvalue()
        return label, files
    finally:
        iso.close()
