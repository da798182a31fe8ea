"""The service under test, run as users run it: `vps serve` (and `vps worker`) processes on
a fresh database, and the /proc accounting of their CPU time and memory.

These machines are shared and noisy, so the CPU time the service's own processes spent is
the figure that compares between runs; it is read from /proc, which counts each process's
threads but not its reaped children, hence the walk over the live process tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from support import admin_sql, backend_pids, free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Where the benchmark's servers go: the default catalog's pools hold 245 IPv4 addresses per
# location, and a build with none left fails (`no_addresses`), which would measure the
# failure path instead of builds. Code -> (IPv4 pool, IPv6 pool), outside the ranges that
# bench/bulk.py gives seeded servers.
LOCATIONS = {
    "bench-west": ("172.16.0.0/16", "fd01:1::/64"),
    "bench-east": ("172.17.0.0/16", "fd01:2::/64"),
}


def vps_command() -> list[str]:
    """The `vps` script of this environment, as users run it; `python -m vps` otherwise."""
    script = Path(sys.executable).parent / "vps"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vps"]


# --- /proc accounting -------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants still alive."""
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue += children(current)
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (their own threads; not reaped children)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / CLOCK_TICKS


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings; a process new since `before` counts whole
    (one gone since is lost: the database's connection pools keep theirs)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
        if match:
            return round(int(match.group(1)) / 1024, 1)
    return None


# --- databases --------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(postgres: str | None, directory: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in `directory` (made if need be, for
    the logs too), or a new database on the PostgreSQL server `postgres` names; dropped on
    exit either way (so runs never share state)."""
    directory.mkdir(parents=True, exist_ok=True)
    if not postgres:
        try:
            yield f"sqlite:///{directory / 'vps.db'}"
        finally:
            # Large (a million servers is 300 MB), and of no use once the run is over.
            for path in directory.glob("vps.db*"):
                path.unlink()
        return
    name = f"vps_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(admin_sql(postgres, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin_sql(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def service_env(url: str, workdir: Path, **settings: str) -> dict[str, str]:
    """The environment of every `vps` process of a run: this one's, without any VPS_
    setting of the developer's, on `url`, with a zero-delay simulator (so what is measured
    is the service, not simulated build times), plus `settings` (VPS_<NAME>=value)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("VPS_")},
        "VPS_DATABASE_URL": url,
        "VPS_DATA_DIR": str(workdir),
        "VPS_DEMO": "false",
        "VPS_LOG_LEVEL": "warning",
        "VPS_SIM_PROVISION_SECONDS": "0",
        "VPS_SIM_ACTION_SECONDS": "0",
        "VPS_SIM_DELETE_SECONDS": "0",
        # The benchmark measures the service, not the throttle in front of it.
        "VPS_RATE_LIMITS": "off",
        **{f"VPS_{name.upper()}": value for name, value in settings.items()},
    }


# --- the processes ----------------------------------------------------------------------


@dataclass
class Service:
    """`vps serve` and any standalone `vps worker` processes, all on one environment."""

    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "serve.log"

    def vps(self, *args: str) -> str:
        return self.vps_all([args])[0]

    def vps_all(self, commands: Sequence[Sequence[str]]) -> list[str]:
        """Run these `vps` commands, their outputs in order. On PostgreSQL at once: each is
        a second or two of Python start-up, most of the set-up time of a run. On SQLite one
        after the other: they would contend for its one write lock, and a set-up step that
        fails on a lock is not what this benchmark is about."""
        if make_url(self.env["VPS_DATABASE_URL"]).get_backend_name() == "sqlite":
            return [out for args in commands for out in self._vps_all([args])]
        return self._vps_all(commands)

    def _vps_all(self, commands: Sequence[Sequence[str]]) -> list[str]:
        started = [
            (
                args,
                subprocess.Popen(
                    [*vps_command(), *args],
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
            for args in commands
        ]
        outputs = []
        for args, process in started:
            out, err = process.communicate()
            if process.returncode != 0:
                raise SystemExit(f"vps {' '.join(args)} failed:\n{out}{err}")
            outputs.append(out)
        return outputs

    def prepare(
        self, accounts: Sequence[str], *, locations: bool = False
    ) -> dict[str, tuple[int, str]]:
        """`vps db upgrade`, then these accounts (with plenty of credits) and, if asked, the
        benchmark's LOCATIONS, then a read-write token per account: {name: (id, token)}."""
        self.vps("db", "upgrade")
        commands: list[tuple[str, ...]] = [
            ("accounts", "create", name, "--credits", "1000000000") for name in accounts
        ]
        if locations:
            for code, (ipv4, ipv6) in LOCATIONS.items():
                name = code.replace("-", " ").title()
                options = (f"--name={name}", f"--ipv4={ipv4}", f"--ipv6={ipv6}")
                commands.append(("catalog", "add-location", code, *options))
        created = self.vps_all(commands)[: len(accounts)]
        tokens = self.vps_all([("tokens", "create", name) for name in accounts])
        prepared = {}
        for name, output, token in zip(accounts, created, tokens, strict=True):
            match = re.search(r"\(id (\d+)\)", output)
            if not match:
                raise SystemExit(f"vps accounts create printed no id: {output!r}")
            prepared[name] = (int(match.group(1)), token.strip().splitlines()[-1])
        return prepared

    def start(self, api_processes: int) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *vps_command(),
                    "serve",
                    "--workers",
                    str(api_processes),
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                stdout=log,
                stderr=log,
            )

    def start_workers(self, count: int) -> None:
        for index in range(count):
            with (self.workdir / f"worker-{index}.log").open("ab") as log:
                self.workers.append(
                    subprocess.Popen(
                        [*vps_command(), "worker"], env=self.env, stdout=log, stderr=log
                    )
                )

    def wait_until_up(self, api_processes: int, deadline: float = 60) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"vps serve exited; see {self.log}")
            self.check_workers()
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.base}/api/v1/openapi.json", timeout=1)
                if answer.status_code == 200 and len(self.api_pids()) >= api_processes:
                    return
            time.sleep(0.1)
        raise SystemExit(f"the API did not come up; see {self.log}")

    def check_workers(self) -> None:
        for index, worker in enumerate(self.workers):
            if worker.poll() is not None:
                log = self.workdir / f"worker-{index}.log"
                raise SystemExit(f"vps worker exited ({worker.returncode}):\n{log.read_text()}")

    def pids(self) -> list[int]:
        """The uvicorn parent and every process under it."""
        return process_tree(self.process.pid) if self.process else []

    def worker_pids(self) -> list[int]:
        return [pid for worker in self.workers for pid in process_tree(worker.pid)]

    def api_pids(self) -> list[int]:
        """The processes that serve requests: the parent's children spawned by uvicorn
        (not multiprocessing's resource tracker); the parent itself with one process."""
        if not self.process:
            return []
        spawned = [
            pid
            for pid in children(self.process.pid)
            if b"spawn_main" in cmdline(pid) and b"resource_tracker" not in cmdline(pid)
        ]
        return sorted(spawned) or [self.process.pid]

    def database_pids(self) -> list[int]:
        """The PostgreSQL backends connected to this run's database when the server runs on
        this machine: on PostgreSQL the queries' CPU is spent there, not in the service's
        processes. Empty on SQLite (its work is done in the service's processes) or when the
        server is elsewhere."""
        url = self.env["VPS_DATABASE_URL"]
        if make_url(url).get_backend_name() != "postgresql":
            return []
        pids = asyncio.run(backend_pids(url))
        return [pid for pid in pids if cmdline(pid).startswith(b"postgres")]

    def rss(self) -> dict[str, float | None]:
        return {str(pid): rss_mb(pid) for pid in self.api_pids()}

    def stop(self) -> None:
        for process in [*self.workers, self.process]:
            if process and process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.process]:
            if process:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.workers.clear()
        self.process = None


@contextlib.contextmanager
def running(service: Service, api_processes: int, workers: int = 0) -> Iterator[Service]:
    """The service started and up (with `workers` standalone workers); stopped on exit."""
    try:
        service.start(api_processes)
        service.start_workers(workers)
        service.wait_until_up(api_processes)
        yield service
    finally:
        service.stop()
