"""A hypervisor driver on libvirt: KVM (or QEMU's TCG) through `qemu:///system`, and
libvirt's in-process `test:///default` for tests.

libvirt is blocking C, so every call runs on the driver's one worker thread, through one
connection opened on first use and opened again when it breaks. Calls are therefore
serialised per driver: two creates of one server cannot interleave, and a create that was
cancelled by its caller still finishes (or cleans up) before the next call starts. Waits
(a guest shutting down, a CPU sample) happen on the event loop between short calls, so a
slow guest does not hold the thread.

A machine is the domain `{name_prefix}{server_id}` with two volumes in the storage pool:
`…-disk.qcow2`, a copy-on-write overlay of the OS's base volume, and `…-seed.iso`, its
cloud-init NoCloud seed. libvirt's ids, states and messages stay inside this module; what
leaves is our server id and a `DriverError` whose message is ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, ParamSpec, TypeVar

import libvirt  # type: ignore[import-untyped, unused-ignore]

from vps.drivers import cloudinit
from vps.drivers import libvirt_xml as xml
from vps.drivers.base import (
    DriverError,
    MachineSpec,
    PermanentDriverError,
    ResourceUsage,
    RetriableDriverError,
)
from vps.drivers.libvirt_errors import CONNECTION_CODES, UNKNOWN_FLAGS, classify

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# libvirt objects have no type hints; these names say which one a value is.
Connection = Any
Domain = Any
Pool = Any
Volume = Any

POLL_SECONDS = 0.25
CPU_SAMPLE_SECONDS = 0.1
STREAM_CHUNK = 256 * 1024
_RUNNING_STATES = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED)
_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    | getattr(libvirt, "VIR_DOMAIN_UNDEFINE_TPM", 0),
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    0,
)


@dataclass(frozen=True)
class LibvirtConfig:
    uri: str
    domain_type: Literal["kvm", "qemu"]
    storage_pool: str
    # OS slug (`MachineSpec.image`) -> name of its base volume in `storage_pool`.
    images: Mapping[str, str]
    # The operator's bridge for the guest's one NIC; None builds machines without a NIC.
    bridge: str | None
    shutdown_timeout_seconds: float = 60
    reboot_timeout_seconds: float = 60
    name_prefix: str = "vps-"
    guest_network: cloudinit.GuestNetwork = field(default_factory=cloudinit.GuestNetwork)

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", MappingProxyType(dict(self.images)))

    @property
    def effective_domain_type(self) -> xml.DomainType:
        """`test:` URIs only run `test` domains."""
        return "test" if self.is_test else self.domain_type

    @property
    def is_test(self) -> bool:
        return self.uri.startswith("test:")


@dataclass
class _Sample:
    usage: ResourceUsage
    needs_cpu_baseline: bool = False


class LibvirtDriver:
    def __init__(self, config: LibvirtConfig) -> None:
        self.config = config
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vps-libvirt")
        self._closed = False
        # Touched only on the worker thread.
        self._conn: Connection | None = None
        self._cpu: dict[int, tuple[int, int]] = {}
        self._traffic: dict[int, int] = {}

    async def create(self, spec: MachineSpec) -> None:
        await self._run("create", spec.server_id, self._create, spec)

    async def start(self, server_id: int) -> None:
        await self._run("start", server_id, self._start, server_id)

    async def stop(self, server_id: int) -> None:
        if not await self._run("stop", server_id, self._request_shutdown, server_id):
            return
        if await self._wait_for(server_id, "off", self.config.shutdown_timeout_seconds):
            return
        await self._run("stop", server_id, self._force_off, server_id)

    async def reboot(self, server_id: int) -> None:
        # A shutdown through the guest (forced off after the deadline), then a fresh start.
        # libvirt's own reboot request cannot be awaited: the domain is `running` before,
        # during and after it whether or not the guest acted on it, so a guest that ignored
        # it would be reported rebooted and never reset.
        if await self._run("reboot", server_id, self._request_shutdown, server_id) and not (
            await self._wait_for(server_id, "off", self.config.reboot_timeout_seconds)
        ):
            await self._run("reboot", server_id, self._force_off, server_id)
        await self._run("reboot", server_id, self._start, server_id)

    async def delete(self, server_id: int) -> None:
        await self._run("delete", server_id, self._delete, server_id)

    async def list_machines(self) -> list[int]:
        return await self._run("list", None, self._list_machines)

    async def usage(self, spec: MachineSpec, *, running: bool) -> ResourceUsage:
        sample = await self._run("usage", spec.server_id, self._usage, spec, running)
        if sample.needs_cpu_baseline:
            # No earlier sample of this machine: measure over a short window instead.
            await asyncio.sleep(CPU_SAMPLE_SECONDS)
            sample = await self._run("usage", spec.server_id, self._usage, spec, running)
        return sample.usage

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(DriverError):
            await self._run("close", None, self._drop_connection)
        self._executor.shutdown(wait=True)

    async def _wait_for(
        self, server_id: int, state: Literal["running", "off"], seconds: float
    ) -> bool:
        """Whether the machine reached `state` within `seconds`: running (not paused or
        shutting down), or off (not merely on its way down)."""
        deadline = time.monotonic() + seconds
        while True:
            if await self._run("poll", server_id, self._power_state, server_id) == state:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(POLL_SECONDS, remaining))

    async def _run(
        self,
        operation: str,
        server_id: int | None,
        fn: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        def call() -> T:
            try:
                return fn(*args, **kwargs)
            except libvirt.libvirtError as error:
                raise self._translate(operation, server_id, error) from error

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _translate(
        self, operation: str, server_id: int | None, error: libvirt.libvirtError
    ) -> DriverError:
        code = int(error.get_error_code() or 0)
        detail = str(error.get_error_message() or error)
        kind, reason = classify(code, detail)
        if code in CONNECTION_CODES:
            self._drop_connection()
        subject = f"{operation} of server {server_id}" if server_id is not None else operation
        log.warning("libvirt %s failed: %s (code %s)", subject, detail, code)
        return kind(f"{subject} failed: {reason}")

    # Everything below runs on the worker thread.

    def _connection(self) -> Connection:
        if self._conn is not None:
            try:
                alive = self._conn.isAlive() == 1
            except libvirt.libvirtError:
                alive = False
            if alive:
                return self._conn
            self._drop_connection()
        _silence_libvirt_stderr()
        try:
            connection = libvirt.open(self.config.uri)
        except libvirt.libvirtError as error:
            code = int(error.get_error_code() or 0)
            kind, _reason = classify(code, "")
            log.warning("cannot connect to libvirt at %s: %s", self.config.uri, error)
            raise kind("cannot connect to the hypervisor") from error
        if connection is None:
            raise RetriableDriverError("cannot connect to the hypervisor")
        self._conn = connection
        return connection

    def _drop_connection(self) -> None:
        connection, self._conn = self._conn, None
        if connection is not None:
            with contextlib.suppress(libvirt.libvirtError):
                connection.close()

    def _domain(self, server_id: int) -> Domain | None:
        name = xml.domain_name(self.config.name_prefix, server_id)
        try:
            return self._connection().lookupByName(name)
        except libvirt.libvirtError as error:
            if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def _existing_domain(self, server_id: int) -> Domain:
        domain = self._domain(server_id)
        if domain is None:
            raise PermanentDriverError(f"there is no machine for server {server_id}")
        return domain

    def _pool(self) -> Pool:
        pool = self._connection().storagePoolLookupByName(self.config.storage_pool)
        if not pool.isActive():
            raise PermanentDriverError("the storage pool for machine disks is not active")
        return pool

    @staticmethod
    def _volume(pool: Pool, name: str) -> Volume | None:
        try:
            return pool.storageVolLookupByName(name)
        except libvirt.libvirtError as error:
            if error.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise

    @staticmethod
    def _delete_volume(pool: Pool, name: str) -> None:
        volume = LibvirtDriver._volume(pool, name)
        if volume is None:
            return
        try:
            volume.delete(0)
        except libvirt.libvirtError as error:
            if error.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise

    def _create(self, spec: MachineSpec) -> None:
        existing = self._domain(spec.server_id)
        if existing is not None:
            self._ensure_running(existing)
            return
        base_name = self.config.images.get(spec.image)
        if base_name is None:
            raise PermanentDriverError(f"no base image is configured for {spec.image!r}")
        pool = self._pool()
        base = self._volume(pool, base_name)
        if base is None:
            # An image copied into the pool's directory shows once the pool is refreshed.
            pool.refresh(0)
            base = self._volume(pool, base_name)
        if base is None:
            raise PermanentDriverError(f"the base image of {spec.image!r} is missing")
        if int(base.info()[1]) > spec.disk_gb * xml.GIB:
            raise PermanentDriverError(f"the image {spec.image!r} is larger than the disk")
        prefix, server_id = self.config.name_prefix, spec.server_id
        disk_name = xml.disk_volume_name(prefix, server_id)
        seed_name = xml.seed_volume_name(prefix, server_id)
        mac = xml.mac_address(server_id)
        try:
            files = cloudinit.seed_files(spec, mac, self.config.guest_network)
        except ValueError as error:
            raise PermanentDriverError(f"the machine's addresses are invalid: {error}") from None
        seed = cloudinit.seed_iso(files)
        made: list[Volume] = []
        domain: Domain | None = None
        try:
            # No domain uses volumes of these names: they are left from a build that died.
            self._delete_volume(pool, disk_name)
            self._delete_volume(pool, seed_name)
            made.append(
                pool.createXML(
                    xml.overlay_volume_xml(
                        name=disk_name,
                        capacity_gb=spec.disk_gb,
                        backing_path=str(base.path()),
                        backing_format=xml.volume_format(str(base.XMLDesc(0))),
                    ),
                    0,
                )
            )
            made.append(pool.createXML(xml.raw_volume_xml(name=seed_name, size_bytes=len(seed)), 0))
            self._write_volume(made[-1], seed)
            document = xml.domain_xml(
                domain_type=self.config.effective_domain_type,
                name=xml.domain_name(prefix, server_id),
                title=spec.name,
                vcpus=spec.vcpus,
                memory_mb=spec.memory_mb,
                devices=xml.DomainDevices(
                    self.config.storage_pool, disk_name, seed_name, mac, self.config.bridge
                ),
            )
            try:
                domain = self._connection().defineXML(document)
            except libvirt.libvirtError:
                if self._domain(server_id) is None:
                    raise
                # Another process defined it meanwhile, on volumes of the same names.
                made.clear()
                self._ensure_running(self._existing_domain(server_id))
                return
            domain.create()
        except BaseException:
            self._undo_create(domain, made)
            raise

    def _undo_create(self, domain: Domain | None, volumes: list[Volume]) -> None:
        """Remove what a failed create made; log what cannot be removed (the worker's
        delete and its orphan sweep get it later)."""
        steps: list[Callable[[], object]] = []
        if domain is not None:
            steps += [lambda: self._destroy(domain), lambda: self._undefine(domain)]
        steps += [functools.partial(volume.delete, 0) for volume in volumes]
        for step in steps:
            try:
                step()
            except libvirt.libvirtError as error:
                log.warning("could not clean up after a failed create: %s", error)

    def _write_volume(self, volume: Volume, data: bytes) -> None:
        """Upload `data` into `volume` through a libvirt stream."""
        stream = self._connection().newStream(0)
        try:
            volume.upload(stream, 0, len(data), 0)
        except libvirt.libvirtError as error:
            if self.config.is_test and error.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                return  # The test driver keeps no volume contents.
            raise
        try:
            view = memoryview(data)
            offset = 0
            while offset < len(data):
                sent = stream.send(bytes(view[offset : offset + STREAM_CHUNK]))
                if sent <= 0:
                    raise RetriableDriverError("the upload of the cloud-init seed stalled")
                offset += sent
            stream.finish()
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            raise

    def _ensure_running(self, domain: Domain) -> None:
        state = int(domain.state()[0])
        if state in _RUNNING_STATES:
            return
        if state == libvirt.VIR_DOMAIN_PAUSED:
            domain.resume()
            return
        if state == libvirt.VIR_DOMAIN_PMSUSPENDED:
            domain.pMWakeup(0)
            return
        if domain.isActive():
            # Shutting down or crashed: start it over.
            self._destroy(domain)
        try:
            domain.create()
        except libvirt.libvirtError:
            if not domain.isActive():
                raise

    @staticmethod
    def _destroy(domain: Domain) -> None:
        try:
            domain.destroy()
        except libvirt.libvirtError:
            if domain.isActive():
                raise

    @staticmethod
    def _undefine(domain: Domain) -> None:
        """Undefine with every flag that also removes the domain's saved state, dropping
        the flags a hypervisor does not know."""
        for flags in _UNDEFINE_FLAGS:
            try:
                if flags:
                    domain.undefineFlags(flags)
                else:
                    domain.undefine()
                return
            except libvirt.libvirtError as error:
                code = error.get_error_code()
                if code == libvirt.VIR_ERR_NO_DOMAIN:
                    return
                if code not in UNKNOWN_FLAGS or not flags:
                    raise

    def _start(self, server_id: int) -> None:
        self._ensure_running(self._existing_domain(server_id))

    def _power_state(self, server_id: int) -> str:
        domain = self._existing_domain(server_id)
        if not domain.isActive():
            return "off"
        return "running" if int(domain.state()[0]) in _RUNNING_STATES else "other"

    def _request_shutdown(self, server_id: int) -> bool:
        """Ask the guest to power off; False when it is off already."""
        domain = self._existing_domain(server_id)
        if not domain.isActive():
            return False
        state = int(domain.state()[0])
        if state == libvirt.VIR_DOMAIN_SHUTDOWN:
            return True  # On its way down already: wait for it.
        if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_CRASHED):
            # A guest that does not run cannot answer ACPI.
            self._destroy(domain)
            return False
        try:
            domain.shutdown()
        except libvirt.libvirtError:
            if domain.isActive():
                raise
            return False
        return True

    def _force_off(self, server_id: int) -> None:
        log.info("server %s did not shut down in time; forcing it off", server_id)
        self._destroy(self._existing_domain(server_id))

    def _delete(self, server_id: int) -> None:
        domain = self._domain(server_id)
        if domain is not None:
            if domain.isActive():
                self._destroy(domain)
            self._undefine(domain)
        pool = self._pool()
        self._delete_volume(pool, xml.disk_volume_name(self.config.name_prefix, server_id))
        self._delete_volume(pool, xml.seed_volume_name(self.config.name_prefix, server_id))
        self._cpu.pop(server_id, None)
        self._traffic.pop(server_id, None)

    def _list_machines(self) -> list[int]:
        ids = (
            xml.server_id_from_name(self.config.name_prefix, str(domain.name()))
            for domain in self._connection().listAllDomains(0)
        )
        return sorted(server_id for server_id in ids if server_id is not None)

    def _usage(self, spec: MachineSpec, running: bool) -> _Sample:
        server_id = spec.server_id
        domain = self._existing_domain(server_id)
        active = running and int(domain.state()[0]) in _RUNNING_STATES
        # Whole GB started: a disk holding anything uses at least one.
        allocated = math.ceil(self._disk_allocation(domain, server_id, active=active) / xml.GIB)
        disk = min(spec.disk_gb, max(0, allocated))
        if not active:
            self._cpu.pop(server_id, None)
            traffic = _whole_gb(self._traffic.get(server_id, 0), spec.bandwidth_gb)
            return _Sample(ResourceUsage(0.0, 0, disk, traffic))
        cpu_time = int(domain.info()[4])
        now = time.monotonic_ns()
        previous = self._cpu.get(server_id)
        self._cpu[server_id] = (cpu_time, now)
        cpu: float | None = None
        if previous is not None and now > previous[1] and cpu_time >= previous[0]:
            share = (cpu_time - previous[0]) / ((now - previous[1]) * max(1, spec.vcpus))
            cpu = round(min(100.0, max(0.0, share * 100)), 2)
        try:
            stats = {str(k): int(v) for k, v in domain.memoryStats().items()}
        except libvirt.libvirtError:
            stats = {}
        memory = min(spec.memory_mb, max(0, memory_used_mb(stats, spec.memory_mb)))
        if self.config.bridge is not None:
            with contextlib.suppress(libvirt.libvirtError):
                counters = domain.interfaceStats(xml.mac_address(server_id))
                self._traffic[server_id] = int(counters[0]) + int(counters[4])
        traffic = _whole_gb(self._traffic.get(server_id, 0), spec.bandwidth_gb)
        return _Sample(ResourceUsage(cpu or 0.0, memory, disk, traffic), cpu is None)

    def _disk_allocation(self, domain: Domain, server_id: int, *, active: bool) -> int:
        """Bytes the disk takes: as the running guest's block device reports it, else as
        the storage pool does."""
        if active:
            with contextlib.suppress(libvirt.libvirtError):
                return int(domain.blockInfo(xml.DISK_TARGET, 0)[1])
        name = xml.disk_volume_name(self.config.name_prefix, server_id)
        volume = self._volume(self._pool(), name)
        return int(volume.info()[2]) if volume is not None else 0


def memory_used_mb(stats: Mapping[str, int], configured_mb: int) -> int:
    """Memory in use from `memoryStats()` (KiB): the guest's own view through the balloon
    when it reports one (`available - usable`, else `actual - unused`), else the host's
    resident size of the guest, else the configured memory."""
    if "available" in stats and "usable" in stats:
        return (stats["available"] - stats["usable"]) // 1024
    if "actual" in stats and "unused" in stats:
        return (stats["actual"] - stats["unused"]) // 1024
    if "rss" in stats:
        return stats["rss"] // 1024
    return configured_mb


@dataclass(frozen=True)
class HostResources:
    """What a libvirt host has, as `vps hosts add --detect` reads it."""

    cpus: int
    memory_mb: int
    # The storage pool's capacity; None when the host has no such pool.
    disk_gb: int | None


def probe_host(uri: str, storage_pool: str) -> HostResources:
    """The CPU threads and memory of the host at `uri` and the size of its storage pool.
    RetriableDriverError (and friends) when it cannot be reached."""
    _silence_libvirt_stderr()
    try:
        connection = libvirt.open(uri)
    except libvirt.libvirtError as error:
        kind, _ = classify(error.get_error_code(), str(error))
        raise kind(f"cannot connect to {uri}: {error.get_error_message()}") from None
    try:
        # [model, memory MB, CPUs, MHz, NUMA nodes, sockets, cores, threads]
        info = connection.getInfo()
        try:
            pool = connection.storagePoolLookupByName(storage_pool)
            disk_gb: int | None = int(pool.info()[1]) // xml.GIB
        except libvirt.libvirtError:
            disk_gb = None
        return HostResources(cpus=int(info[2]), memory_mb=int(info[1]), disk_gb=disk_gb)
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            connection.close()


def _whole_gb(count: int, limit: int) -> int:
    return min(limit, max(0, count // xml.GIB))


_silenced = False


def _silence_libvirt_stderr() -> None:
    """libvirt prints every error to stderr unless a handler is set; ours are raised."""
    global _silenced
    if not _silenced:
        libvirt.registerErrorHandler(lambda _ctx, _error: None, None)
        _silenced = True
