"""A libvirt host on this machine for the real-guest tests: the daemons started by hand, the
guests' private network, a storage pool holding the test guest's base image, and the
functional KVM probe. Everything here is undone by `LibvirtHost.close`, which then checks
that nothing is left."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.processes import wait_until

HERE = Path(__file__).resolve().parent
URI = "qemu:///system"
BRIDGE = "vpsbr0"
NETNS = "vpsnet"
# The test location's pools: the gateway (first host) lives in the namespace.
IPV4_POOL = "10.213.77.0/24"
IPV4_GATEWAY = "10.213.77.1/24"
IPV6_POOL = "fd00:213:77::/64"
POOL = "vps-guest-tests"
BASE_VOLUME = "guest-base.qcow2"
DAEMONS = {"virtlogd": Path("/run/virtlogd.pid"), "libvirtd": Path("/run/libvirtd.pid")}
SOCKET = Path("/run/libvirt/libvirt-sock")
KVM = Path("/dev/kvm")
MARKER_BOOTED = "GUEST-MARKER booted"


class Unavailable(Exception):
    """The machine cannot run real guests; the message says why."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def qemu_processes() -> list[int]:
    """QEMU processes running one of our machines (`-name guest=vps-…`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and argv[0].endswith(b"qemu-system-x86_64")
            and any(arg.startswith(b"guest=vps-") for arg in argv)
        ):
            found.append(int(entry.name))
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


# Debian 12's static busybox crashes in `wget`, so the client is this Python, run inside
# the namespace.
_GET = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as response:
    sys.stdout.write(response.read().decode())
"""


def netns_get(address: str, path: str, timeout_seconds: float = 2) -> str | None:
    """GET http://address/path from inside the guests' network namespace, or None."""
    url = f"http://{address}/{path}"
    result = run(
        "ip", "netns", "exec", NETNS, sys.executable, "-I", "-c", _GET, url, str(timeout_seconds)
    )
    return result.stdout.strip() if result.returncode == 0 else None


@dataclass
class LibvirtHost:
    """libvirtd, virtlogd, the guests' network and a storage pool, all started here."""

    image: Path
    pool_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vps-guests-")))
    pids: dict[str, int] = field(default_factory=dict)
    kvm_mode: tuple[int, int] | None = None
    network: bool = False
    connection: Any = None

    def open(self) -> None:
        import libvirt  # type: ignore[import-untyped, unused-ignore]

        for name, pidfile in DAEMONS.items():
            pid = _pid(pidfile)
            if pid is not None and _alive(pid):
                raise Unavailable(
                    f"{name} is already running (pid {pid}); these tests run their own"
                )
        if run("ip", "link", "show", BRIDGE).returncode == 0:
            raise Unavailable(f"the bridge {BRIDGE} exists already (left by an earlier run?)")
        if KVM.exists():
            # What udev would do: without it libvirt re-probes QEMU on every define (40 s).
            info = KVM.stat()
            self.kvm_mode = (stat.S_IMODE(info.st_mode), info.st_gid)
            shutil.chown(KVM, group="kvm")
            KVM.chmod(0o660)
        for name, pidfile in DAEMONS.items():
            pidfile.unlink(missing_ok=True)
            started = run(name, "-d")
            if started.returncode != 0:
                raise Unavailable(f"{name} did not start: {started.stderr.strip()}")
            self.pids[name] = wait_until(functools.partial(_pid, pidfile), 10, f"{name}'s pidfile")
        wait_until(SOCKET.exists, 10, "libvirtd's socket")
        libvirt.registerErrorHandler(lambda _ctx, _error: None, None)
        self.connection = libvirt.open(URI)
        self._network_up()
        self._pool_up()

    def _network_up(self) -> None:
        self.network = True
        result = run(str(HERE / "net.sh"), "up", IPV4_GATEWAY)
        if result.returncode != 0:
            raise Unavailable(f"the guests' network could not be set up: {result.stderr.strip()}")

    def _pool_up(self) -> None:
        # qemu runs as libvirt-qemu: it must traverse the pool's directory.
        self.pool_dir.chmod(0o755)
        shutil.copyfile(self.image, self.pool_dir / BASE_VOLUME)
        pool = ET.Element("pool", type="dir")
        ET.SubElement(pool, "name").text = POOL
        ET.SubElement(ET.SubElement(pool, "target"), "path").text = str(self.pool_dir)
        self.connection.storagePoolDefineXML(ET.tostring(pool, encoding="unicode"), 0).create(0)

    def volumes(self) -> list[str]:
        return sorted(str(n) for n in self.connection.storagePoolLookupByName(POOL).listVolumes())

    def domains(self) -> list[str]:
        return sorted(str(d.name()) for d in self.connection.listAllDomains(0))

    def domain_state(self, name: str) -> int | None:
        import libvirt

        try:
            return int(self.connection.lookupByName(name).state()[0])
        except libvirt.libvirtError:
            return None

    def memory_stats(self, name: str) -> dict[str, int]:
        stats = self.connection.lookupByName(name).memoryStats()
        return {str(key): int(value) for key, value in stats.items()}

    def interface_bytes(self, name: str, mac: str) -> int:
        """Bytes received plus sent by a domain's NIC, looked up by MAC as the driver does."""
        counters = self.connection.lookupByName(name).interfaceStats(mac)
        return int(counters[0]) + int(counters[4])

    def close(self) -> list[str]:
        """Undo everything, then say what was left behind (by the tests or by this)."""
        problems: list[str] = []
        if self.connection is not None:
            problems += self._remove_domains()
            with contextlib.suppress(Exception):
                pool = self.connection.storagePoolLookupByName(POOL)
                if pool.isActive():
                    pool.destroy()
                pool.undefine()
            if POOL in [str(p.name()) for p in self.connection.listAllStoragePools(0)]:
                problems.append(f"the storage pool {POOL} is still defined")
            # Guests reach nothing but the namespace: no libvirt network (NAT) may run.
            problems += [f"the libvirt network {n} was started" for n in self._networks()]
            with contextlib.suppress(Exception):
                self.connection.close()
        shutil.rmtree(self.pool_dir, ignore_errors=True)
        if self.network:
            run(str(HERE / "net.sh"), "down")
        for name in reversed(list(self.pids)):
            self._stop(name, self.pids[name])
        if self.kvm_mode is not None:
            KVM.chmod(self.kvm_mode[0])
            os.chown(KVM, -1, self.kvm_mode[1])
        problems += self._leftovers()
        return problems

    def _networks(self) -> list[str]:
        import libvirt

        try:
            return sorted(str(name) for name in self.connection.listNetworks())
        except libvirt.libvirtError:  # the daemon went away: no network runs
            return []

    def _remove_domains(self) -> list[str]:
        left = [d for d in self.connection.listAllDomains(0) if str(d.name()).startswith("vps-")]
        for domain in left:
            with contextlib.suppress(Exception):
                if domain.isActive():
                    domain.destroy()
                domain.undefine()
        return [f"the domain {d.name()} was left behind" for d in left]

    @staticmethod
    def _stop(name: str, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _leftovers(self) -> list[str]:
        problems = [
            f"{name} (pid {pid}) still runs" for name, pid in self.pids.items() if _alive(pid)
        ]
        problems += [f"a QEMU process of ours still runs (pid {pid})" for pid in qemu_processes()]
        if self.network and run("ip", "link", "show", BRIDGE).returncode == 0:
            problems.append(f"the bridge {BRIDGE} still exists")
        if self.network and NETNS in run("ip", "netns", "list").stdout.split():
            problems.append(f"the network namespace {NETNS} still exists")
        if self.pool_dir.exists():
            problems.append("the storage pool's directory still exists")
        return problems


@dataclass(frozen=True)
class ProbeResult:
    boots: bool
    detail: str


def probe_kvm(host: LibvirtHost, deadline_seconds: float = 25) -> ProbeResult:
    """Whether a guest boots under KVM here: a transient `kvm` domain booting the test
    image (read-only, no network) must print its first marker before the deadline.
    `/dev/kvm` existing proves nothing (a host may expose it and still fail every guest)."""
    import libvirt

    if not KVM.exists():
        return ProbeResult(False, "/dev/kvm does not exist")
    log = host.pool_dir / "kvm-probe.log"
    document = f"""
<domain type='kvm'>
  <name>kvm-probe</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <cpu mode='host-passthrough'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{host.pool_dir / BASE_VOLUME}'/>
      <target dev='vda' bus='virtio'/>
      <readonly/>
    </disk>
    <serial type='file'><source path='{log}'/><target port='0'/></serial>
  </devices>
</domain>"""
    started = time.monotonic()
    try:
        domain = host.connection.createXML(document, 0)
    except libvirt.libvirtError as error:
        return ProbeResult(False, f"the kvm domain did not start: {_last_line(str(error))}")
    try:
        while time.monotonic() - started < deadline_seconds:
            with contextlib.suppress(OSError):
                if MARKER_BOOTED in log.read_text(errors="replace"):
                    took = time.monotonic() - started
                    return ProbeResult(True, f"a kvm guest booted in {took:.1f} s")
            state, reason = domain.state()
            if state != libvirt.VIR_DOMAIN_RUNNING:
                return ProbeResult(
                    False, f"the kvm guest stopped running (state {state}, reason {reason})"
                )
            time.sleep(0.2)
        return ProbeResult(False, f"a kvm guest did not boot within {deadline_seconds:.0f} s")
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            domain.destroy()
        log.unlink(missing_ok=True)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
