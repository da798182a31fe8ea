"""Lifecycle throughput: N servers created at once through the API, built by standalone
`vps worker` processes with a zero-delay simulator; how long until all are `active`.

Each run gets a fresh database, an API without its embedded worker (so the number of
workers is exactly the number started) and a simulator state file shared by the workers,
as several workers share one hypervisor. Besides the end-to-end rate (servers / seconds
from the first create until the last server is active), it reports the create rate and the
backlog left when the last create was answered, and how fast the workers drained it: when
the creates are the slower part, the end-to-end rate is theirs, and the drain rate is the
one that tells the workers apart.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from client import SERVERS, Created, create_servers
from service import (
    LOCATIONS,
    Service,
    cpu_by_pid,
    cpu_seconds,
    cpu_since,
    fresh_database,
    running,
    service_env,
)
from sqlalchemy.engine import make_url
from support import peak_connections
from wrk import format_table

from vps.config import Settings

# As many creates in flight as wrk has connections in the other scenarios.
CREATE_CONCURRENCY = 64
_POLL_SECONDS = 0.25
_PROGRESS_SECONDS = 5.0


@dataclass
class _Progress:
    """What the creates and the poller share."""

    label: str
    servers: int
    started: float = field(default_factory=time.monotonic)
    created: int = 0
    provisioning: int | None = None
    last_told: float = 0.0

    def tell(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_told >= _PROGRESS_SECONDS:
            self.last_told = now
            building = "?" if self.provisioning is None else str(self.provisioning)
            print(
                f"    {self.label}: {self.created}/{self.servers} created, {building} "
                f"provisioning, {now - self.started:.0f} s",
                file=sys.stderr,
            )


async def _count(http: httpx.AsyncClient, status: str) -> int:
    answer = await http.get(SERVERS, params={"status": status, "page_size": 1})
    answer.raise_for_status()
    total: int = answer.json()["count"]
    return total


async def _failures(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """The servers that did not become active, by status: how many, their error codes (on
    the first page) and one message; a failed build is a finding to report, not noise to
    average away."""
    found: dict[str, dict[str, Any]] = {}
    for status in ("error", "stopped", "suspended"):
        answer = await http.get(SERVERS, params={"status": status, "page_size": 100})
        answer.raise_for_status()
        page = answer.json()
        if not page["count"]:
            continue
        codes: dict[str, int] = {}
        for server in page["results"]:
            code = (server.get("error") or {}).get("code", "-")
            codes[code] = codes.get(code, 0) + 1
        example = (page["results"][0].get("error") or {}).get("message")
        found[status] = {"count": page["count"], "codes_on_first_page": codes, "example": example}
    return found


async def _create_and_wait(
    service: Service,
    token: str,
    servers: int,
    locations: list[str],
    deadline: float,
    label: str,
) -> dict[str, Any]:
    progress = _Progress(label, servers)

    def on_created(count: int) -> None:
        progress.created = count

    async def create_all() -> tuple[Created, float]:
        created = await create_servers(
            service.base,
            token,
            servers,
            concurrency=CREATE_CONCURRENCY,
            locations=locations,
            prefix="life",
            on_created=on_created,
        )
        return created, time.monotonic() - progress.started

    creating = asyncio.create_task(create_all())
    url = service.env["VPS_DATABASE_URL"]
    stop_counting = asyncio.Event()
    counting = (
        asyncio.create_task(peak_connections(url, stop_counting))
        if make_url(url).get_backend_name() == "postgresql"
        else None
    )
    created = Created()
    created_seconds: float | None = None
    backlog: int | None = None
    timed_out = False
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=service.base, headers=headers, timeout=60) as http:
        while True:
            if creating.done() and created_seconds is None:
                created, created_seconds = creating.result()
            try:
                progress.provisioning = await _count(http, "provisioning")
            except httpx.TransportError as error:
                # An API process died (and is being replaced): the refused creates say so.
                print(f"    {label}: counting failed: {error!r}", file=sys.stderr)
                await asyncio.sleep(_POLL_SECONDS)
                continue
            if created_seconds is not None and backlog is None:
                backlog = progress.provisioning
            if created_seconds is not None and progress.provisioning == 0:
                break
            if time.monotonic() - progress.started > deadline:
                # A report with this run marked is worth more than no report at all.
                print(f"    {label}: deadline of {deadline:.0f} s passed", file=sys.stderr)
                timed_out = True
                creating.cancel()
                break
            service.check_workers()
            progress.tell()
            await asyncio.sleep(_POLL_SECONDS)
        total_seconds = time.monotonic() - progress.started
        active = await _count(http, "active")
        built = len(created.ids) if not timed_out else progress.created
        failures = await _failures(http) if active < built and not timed_out else {}
    stop_counting.set()
    peak, limit = await counting if counting else (None, None)
    progress.tell(force=True)
    created_seconds = created_seconds or total_seconds
    drain_seconds = total_seconds - created_seconds
    drained = round(backlog / drain_seconds, 1) if backlog and drain_seconds else None
    return {
        "servers": servers,
        "created": progress.created,
        # Creates the API refused, by HTTP status (a 500 is a bug to report).
        "refused": created.refused,
        "refused_example": created.example,
        "timed_out": timed_out,
        "active": active,
        "failed": built - active,
        "failures": failures,
        "seconds": round(total_seconds, 2),
        "servers_per_second": round(active / total_seconds, 1),
        "create_seconds": round(created_seconds, 2),
        "creates_per_second": round(servers / created_seconds, 1),
        "backlog_at_last_create": backlog,
        "drain_seconds": round(drain_seconds, 2),
        "drain_per_second": drained,
        # PostgreSQL: the most connections to the database at once, and the server's limit.
        "peak_connections": peak,
        "max_connections": limit,
    }


def run_lifecycle(
    *,
    postgres: str | None,
    workers: int,
    servers: int,
    api_processes: int,
    deadline: float,
    workdir: Path,
    hosts: int = 0,
) -> dict[str, Any]:
    """One run: `servers` servers, `workers` standalone workers, on a fresh database; with
    `hosts`, that many simulated hypervisor hosts per location, so every create is placed."""
    database = "postgresql" if postgres else "sqlite"
    label = f"lifecycle {database}, {workers} worker{'s' if workers > 1 else ''}"
    if hosts:
        label += f", {hosts} hosts per location"
    print(f"  {label}: {servers} servers", file=sys.stderr)
    directory = workdir / f"lifecycle-{database}-{workers}"
    with fresh_database(postgres, directory) as url:
        env = service_env(
            url,
            directory,
            embedded_worker="false",
            sim_state_file=str(directory / "simulator.db"),
        )
        service = Service(env, directory)
        _, token = service.prepare(["lifecycle"], locations=True)["lifecycle"]
        locations = list(LOCATIONS)
        service.vps_all([_add_host(code, number) for code in locations for number in range(hosts)])
        with running(service, api_processes, workers):
            api_cpu, worker_cpu = cpu_seconds(service.pids()), cpu_seconds(service.worker_pids())
            api_pids = service.api_pids()
            database_cpu = cpu_by_pid(service.database_pids())
            figures = asyncio.run(
                _create_and_wait(service, token, servers, locations, deadline, label)
            )
            api_cpu = cpu_seconds(service.pids()) - api_cpu
            worker_cpu = cpu_seconds(service.worker_pids()) - worker_cpu
            database_after = cpu_by_pid(service.database_pids())
            died = len(set(api_pids) - set(service.api_pids()))
    # Per server created: a failed build costs the worker too.
    created = max(figures["created"], 1)
    return {
        "database": database,
        "workers": workers,
        "hosts_per_location": hosts,
        **figures,
        # An API process that died (and that uvicorn replaced) took its CPU time with it.
        "api_processes_died": died,
        "api_cpu_ms_per_server": round(api_cpu * 1000 / created, 1),
        "worker_cpu_ms_per_server": round(worker_cpu * 1000 / created, 1),
        # PostgreSQL's own processes (null on SQLite, whose work is in the figures above).
        "db_cpu_ms_per_server": round(cpu_since(database_cpu, database_after) * 1000 / created, 1)
        if database_after
        else None,
    }


def _add_host(location: str, number: int) -> tuple[str, ...]:
    """A simulated host with room for every server of the run: placement is measured, not
    refusals."""
    return (
        "hosts",
        "add",
        f"sim-{location}-{number}",
        f"--location={location}",
        "--driver=simulator",
        "--vcpus=1000000",
        "--memory-mb=1000000000",
        "--disk-gb=1000000000",
    )


def scaling(runs: list[dict[str, Any]], database: str, workers: int) -> dict[str, float | None]:
    """servers/s and drain/s with `workers` workers over the same with one, on `database`."""
    by_workers = {r["workers"]: r for r in runs if r["database"] == database}
    ratios: dict[str, float | None] = {}
    for figure in ("servers_per_second", "drain_per_second"):
        one = by_workers.get(1, {}).get(figure)
        many = by_workers.get(workers, {}).get(figure)
        ratios[figure] = round(many / one, 2) if one and many is not None else None
    return ratios


def lifecycle_table(report: dict[str, Any]) -> str:
    header = (
        "database",
        "workers",
        "servers",
        "all active s",
        "servers/s",
        "creates/s",
        "backlog",
        "drain/s",
        "API CPU ms/srv",
        "worker CPU ms/srv",
        "DB CPU ms/srv",
        "failed",
        "refused",
    )
    rows = [
        (
            r["database"],
            str(r["workers"]),
            str(r["servers"]),
            f"{r['seconds']:.1f}",
            f"{r['servers_per_second']:.1f}",
            f"{r['creates_per_second']:.1f}",
            str(r["backlog_at_last_create"]),
            "-" if r["drain_per_second"] is None else f"{r['drain_per_second']:.1f}",
            f"{r['api_cpu_ms_per_server']:.1f}",
            f"{r['worker_cpu_ms_per_server']:.1f}",
            "-" if r["db_cpu_ms_per_server"] is None else f"{r['db_cpu_ms_per_server']:.1f}",
            str(r["failed"]),
            str(sum(r["refused"].values())),
        )
        for r in report["runs"]
    ]
    lines = [
        f"Lifecycle: servers created at once ({CREATE_CONCURRENCY} in flight) until all active; "
        f"{report['api_processes']} API processes without embedded worker, "
        f"worker concurrency {report['worker_concurrency']}, zero-delay simulator"
        + (
            f", {report['hosts_per_location']} simulated hosts per location (each create placed)"
            if report.get("hosts_per_location")
            else ""
        ),
        *format_table(header, rows),
        "backlog: servers still provisioning when the last create was answered; "
        "drain/s: backlog / seconds from then until all were active; "
        "failed: created but not active; refused: creates answered other than 201",
    ]
    for r in report["runs"]:
        if r["timed_out"]:
            lines.append(
                f"{r['database']}, {r['workers']} worker(s): TIMED OUT after {r['seconds']:.0f} s "
                f"with {r['active']} of {r['servers']} active (its figures are partial)"
            )
        if r["api_processes_died"]:
            lines.append(
                f"{r['database']}, {r['workers']} worker(s): {r['api_processes_died']} API "
                "process(es) died during the run"
            )
        if r["peak_connections"] is not None:
            lines.append(
                f"{r['database']}, {r['workers']} worker(s): at most {r['peak_connections']} "
                f"connections to the database (max_connections {r['max_connections']})"
            )
        if r["refused"]:
            lines.append(
                f"{r['database']}, {r['workers']} worker(s): the API refused creates "
                f"{r['refused']}, e.g. {r['refused_example']}"
            )
        for status, failure in r["failures"].items():
            codes = ", ".join(f"{c} {n}" for c, n in failure["codes_on_first_page"].items())
            lines.append(
                f"{r['database']}, {r['workers']} worker(s): {failure['count']} servers {status} "
                f"(first page: {codes}), e.g. {failure['example']!r}"
            )
    for workers, ratios in report["postgresql_scaling"].items():
        shown = ", ".join(
            f"{figure.replace('_per_second', '/s')} {'-' if ratio is None else f'{ratio:.2f}'}"
            for figure, ratio in ratios.items()
        )
        lines.append(f"PostgreSQL, {workers} workers / 1 worker: {shown}")
    return "\n".join(lines)


def run_lifecycles(
    *,
    postgres: str | None,
    postgres_workers: list[int],
    servers: int,
    api_processes: int,
    deadline: float,
    workdir: Path,
    hosts: int = 0,
) -> dict[str, Any]:
    """One worker on SQLite; with `postgres`, each of `postgres_workers` on PostgreSQL."""
    plan: list[tuple[str | None, int]] = [(None, 1)]
    if postgres:
        plan += [(postgres, workers) for workers in postgres_workers]
    runs = [
        run_lifecycle(
            postgres=url,
            workers=workers,
            servers=servers,
            api_processes=api_processes,
            deadline=deadline,
            workdir=workdir,
            hosts=hosts,
        )
        for url, workers in plan
    ]
    return {
        "servers": servers,
        "api_processes": api_processes,
        "create_concurrency": CREATE_CONCURRENCY,
        "worker_concurrency": Settings.model_fields["worker_concurrency"].default,
        "hosts_per_location": hosts,
        "runs": runs,
        "postgresql_scaling": {
            str(workers): scaling(runs, "postgresql", workers)
            for workers in postgres_workers
            if postgres and workers != 1
        },
    }
