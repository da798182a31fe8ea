"""Operator commands for hypervisor hosts: `vps hosts add|list|update|drain|activate|remove`.

Like the other operator commands they work on the database directly, and import the
database layer only when they run.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from vps.cli.common import fail, run_in_transaction, settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from vps.domain.hosts import Capacity, HostStatus
    from vps.services.hosts import HostSummary

hosts_app = typer.Typer(
    help="Hypervisor hosts that servers are placed on, per location. A location without "
    "hosts runs its servers on the default driver (VPS_DRIVER).",
    no_args_is_help=True,
)

# Nova's initial allocation ratios: CPU time is shared well, memory and disk are not.
DEFAULT_CPU_OVERCOMMIT = 4.0
DEFAULT_MEMORY_OVERCOMMIT = 1.0
DEFAULT_DISK_OVERCOMMIT = 1.0

Vcpus = Annotated[int, typer.Option(help="Physical CPU threads offered to guests")]
MemoryMb = Annotated[int, typer.Option(help="Memory offered to guests, in MB")]
DiskGb = Annotated[int, typer.Option(help="Disk offered to guests' overlays, in GB")]
CpuRatio = Annotated[float, typer.Option(help="vCPUs sold per CPU thread")]
MemoryRatio = Annotated[float, typer.Option(help="Memory sold per MB (keep 1.0 unless sure)")]
DiskRatio = Annotated[float, typer.Option(help="Disk sold per GB (overlays grow as written)")]


def _capacity(
    vcpus: int, memory_mb: int, disk_gb: int, cpu: float, memory: float, disk: float
) -> Capacity:
    from vps.domain.hosts import Capacity

    return Capacity(vcpus, memory_mb, disk_gb, cpu, memory, disk)


@hosts_app.command("add")
def hosts_add(
    name: Annotated[str, typer.Argument(help="A short name, e.g. hv1")],
    location: Annotated[str, typer.Option(help="Location code (see `vps catalog list`)")],
    vcpus: Annotated[int | None, typer.Option(help="CPU threads offered to guests")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="Memory offered to guests, in MB")] = None,
    disk_gb: Annotated[int | None, typer.Option(help="Disk for guests' overlays, in GB")] = None,
    driver: Annotated[str, typer.Option(help="libvirt, or simulator")] = "libvirt",
    uri: Annotated[
        str | None,
        typer.Option(
            help="libvirt connection URI, e.g. qemu:///system or qemu+ssh://root@hv1/system"
        ),
    ] = None,
    detect: Annotated[
        bool,
        typer.Option(
            "--detect",
            help="libvirt: read the capacity not given from the host (its CPU threads, its "
            "memory less 10% for itself, the size of VPS_LIBVIRT_STORAGE_POOL)",
        ),
    ] = False,
    cpu_overcommit: CpuRatio = DEFAULT_CPU_OVERCOMMIT,
    memory_overcommit: MemoryRatio = DEFAULT_MEMORY_OVERCOMMIT,
    disk_overcommit: DiskRatio = DEFAULT_DISK_OVERCOMMIT,
) -> None:
    """Register a host; new servers of its location are placed on it from now on."""
    from vps.db.types import utcnow
    from vps.services import hosts

    if detect:
        vcpus, memory_mb, disk_gb = _detected(driver, uri, vcpus, memory_mb, disk_gb)
    if vcpus is None or memory_mb is None or disk_gb is None:
        raise fail("give --vcpus, --memory-mb and --disk-gb (or --detect for a libvirt host)")
    capacity = _capacity(
        vcpus, memory_mb, disk_gb, cpu_overcommit, memory_overcommit, disk_overcommit
    )

    async def action(session: AsyncSession) -> None:
        await hosts.add_host(
            session,
            name=name,
            location=location,
            driver=driver,
            uri=uri,
            capacity=capacity,
            now=utcnow(),
        )

    run_in_transaction(action)
    typer.echo(
        f"added host {name} in {location}: {capacity.vcpu_limit} vCPUs, "
        f"{capacity.memory_limit_mb} MB, {capacity.disk_limit_gb} GB to place"
    )


# What a hypervisor keeps for itself when the capacity is read from it.
HOST_MEMORY_RESERVE = 0.10


def _detected(
    driver: str, uri: str | None, vcpus: int | None, memory_mb: int | None, disk_gb: int | None
) -> tuple[int | None, int | None, int | None]:
    from vps.drivers.base import DriverError
    from vps.drivers.registry import DriverUnavailable, probe_libvirt_host

    if driver != "libvirt" or not uri:
        raise fail("--detect reads a libvirt host: give --driver libvirt and its --uri")
    try:
        cpus, memory, pool_gb = probe_libvirt_host(uri, settings().libvirt_storage_pool)
    except (DriverUnavailable, DriverError) as error:
        raise fail(str(error)) from None
    if pool_gb is None and disk_gb is None:
        raise fail(
            f"the host has no storage pool {settings().libvirt_storage_pool!r} "
            "(VPS_LIBVIRT_STORAGE_POOL): give --disk-gb, or create the pool"
        )
    found = (cpus, int(memory * (1 - HOST_MEMORY_RESERVE)), pool_gb)
    typer.echo(f"detected: {cpus} CPU threads, {memory} MB of memory, storage pool {pool_gb} GB")
    return (
        vcpus if vcpus is not None else found[0],
        memory_mb if memory_mb is not None else found[1],
        disk_gb if disk_gb is not None else found[2],
    )


@hosts_app.command("list")
def hosts_list(
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Show every host: status, what is placed on it and its limits."""
    from vps.services import hosts

    if output not in {"table", "json"}:
        raise typer.BadParameter("must be table or json", param_hint="--output")

    async def action(session: AsyncSession) -> list[HostSummary]:
        return await hosts.list_hosts(session)

    summaries = run_in_transaction(action)
    if output == "json":
        typer.echo(json.dumps([_as_json(summary) for summary in summaries], indent=2))
        return
    if not summaries:
        typer.echo("no hosts: every location uses the default driver (VPS_DRIVER)")
        return
    typer.echo(
        f"{'name':<16} {'location':<10} {'driver':<9} {'status':<9} {'servers':>7}  "
        f"{'vCPUs':>11}  {'memory MB':>17}  {'disk GB':>13}  uri"
    )
    for summary in summaries:
        host = summary.host
        typer.echo(
            f"{host.name:<16} {summary.location_code:<10} {host.driver:<9} {host.status:<9} "
            f"{summary.servers:>7}  {host.used_vcpus:>5}/{host.vcpu_limit:<5}  "
            f"{host.used_memory_mb:>8}/{host.memory_limit_mb:<8}  "
            f"{host.used_disk_gb:>6}/{host.disk_limit_gb:<6}  {host.uri or '-'}"
        )


def _as_json(summary: HostSummary) -> dict[str, object]:
    host = summary.host
    return {
        "name": host.name,
        "location": summary.location_code,
        "driver": host.driver,
        "uri": host.uri,
        "status": host.status,
        "servers": summary.servers,
        "capacity": {
            "vcpus": host.vcpus,
            "memory_mb": host.memory_mb,
            "disk_gb": host.disk_gb,
            "cpu_overcommit": host.cpu_overcommit,
            "memory_overcommit": host.memory_overcommit,
            "disk_overcommit": host.disk_overcommit,
        },
        "limits": {
            "vcpus": host.vcpu_limit,
            "memory_mb": host.memory_limit_mb,
            "disk_gb": host.disk_limit_gb,
        },
        "used": {
            "vcpus": host.used_vcpus,
            "memory_mb": host.used_memory_mb,
            "disk_gb": host.used_disk_gb,
        },
    }


@hosts_app.command("update")
def hosts_update(
    name: str,
    vcpus: Annotated[int | None, typer.Option(help="Physical CPU threads")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="Memory, in MB")] = None,
    disk_gb: Annotated[int | None, typer.Option(help="Disk, in GB")] = None,
    cpu_overcommit: Annotated[float | None, typer.Option(help="vCPUs per thread")] = None,
    memory_overcommit: Annotated[float | None, typer.Option(help="Memory ratio")] = None,
    disk_overcommit: Annotated[float | None, typer.Option(help="Disk ratio")] = None,
) -> None:
    """Change a host's capacity or ratios (what is not given stays). Servers stay put."""
    from vps.services import hosts

    async def action(session: AsyncSession) -> None:
        await hosts.update_capacity(
            session,
            name,
            vcpus=vcpus,
            memory_mb=memory_mb,
            disk_gb=disk_gb,
            cpu_overcommit=cpu_overcommit,
            memory_overcommit=memory_overcommit,
            disk_overcommit=disk_overcommit,
        )

    run_in_transaction(action)
    typer.echo(f"updated host {name}")


def _set_status(name: str, status: HostStatus) -> None:
    from vps.services import hosts

    async def action(session: AsyncSession) -> None:
        await hosts.set_status(session, name, status)

    run_in_transaction(action)


@hosts_app.command("drain")
def hosts_drain(name: str) -> None:
    """Place nothing more on a host; its servers stay and keep running."""
    from vps.domain.hosts import HostStatus

    _set_status(name, HostStatus.DRAINING)
    typer.echo(f"host {name} is draining: no new server will be placed on it")


@hosts_app.command("activate")
def hosts_activate(name: str) -> None:
    """Place new servers on a drained host again."""
    from vps.domain.hosts import HostStatus

    _set_status(name, HostStatus.ACTIVE)
    typer.echo(f"host {name} is active")


@hosts_app.command("remove")
def hosts_remove(name: str) -> None:
    """Forget a drained host that has no server left."""
    from vps.services import hosts

    async def action(session: AsyncSession) -> None:
        await hosts.remove_host(session, name)

    run_in_transaction(action)
    typer.echo(f"removed host {name}")
