"""Benchmark: the real `vps serve` on a fresh database, driven by `wrk` from this machine.

Makes a fresh data directory (and a fresh PostgreSQL database beside --postgres, dropped
afterwards), applies the migrations, seeds accounts and tokens with the `vps` command and
servers through the HTTP API, starts `vps serve --workers 2` as users do (zero-delay
simulator, embedded worker), then runs each scenario with `wrk` after a short warm-up and
prints one table: requests/s, p50/p99 latency, errors, and the CPU time the server processes
spent per request (from /proc: these machines are shared and noisy, so CPU per request is
the figure that compares). The same figures, with the RSS of each API process idle and at
the end, are written as JSON to bench/results/.

    python bench/run.py --quick                                # SQLite, under 2 minutes
    python bench/run.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

Not measured yet: the scale scenario (1,000,000 servers) and lifecycle throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url
from support import admin_sql, free_port

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "lua"
RESULTS = BENCH / "results"
# Scenario name -> Lua script in bench/lua/.
SCENARIOS = {
    "get": "get",
    "list": "list",
    "list status+location": "list_filtered",
    "create": "create",
    "patch": "patch",
    "reboot": "reboot",
    "mixed (80% reads)": "mixed",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TRANSITIONAL = ("provisioning", "rebooting", "starting", "stopping")  # deleting: 404


def vps_command() -> list[str]:
    """The `vps` script of this environment, as users run it; `python -m vps` otherwise."""
    script = Path(sys.executable).parent / "vps"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vps"]


# --- /proc accounting -------------------------------------------------------------------


def _children(pid: int) -> list[int]:
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
        queue += _children(current)
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


def _cmdline(pid: int) -> bytes:
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


# --- the service ------------------------------------------------------------------------


@dataclass
class Service:
    env: dict[str, str]
    workdir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def vps(self, *args: str) -> str:
        done = subprocess.run(
            [*vps_command(), *args], env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"vps {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def start(self, api_processes: int) -> None:
        log = (self.workdir / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [*vps_command(), "serve", "--workers", str(api_processes), "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=log,
        )

    def wait_until_up(self, api_processes: int, deadline: float) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"vps serve exited; see {self.workdir / 'serve.log'}")
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.base}/api/v1/openapi.json", timeout=1)
                if answer.status_code == 200 and len(self.api_pids()) >= api_processes:
                    return
            time.sleep(0.1)
        raise SystemExit("the API did not come up")

    def pids(self) -> list[int]:
        """The uvicorn parent and every process under it."""
        return process_tree(self.process.pid) if self.process else []

    def api_pids(self) -> list[int]:
        """The processes that serve requests: the parent's children spawned by uvicorn
        (not multiprocessing's resource tracker); the parent itself with one process."""
        if not self.process:
            return []
        spawned = [
            pid
            for pid in _children(self.process.pid)
            if b"spawn_main" in _cmdline(pid) and b"resource_tracker" not in _cmdline(pid)
        ]
        return sorted(spawned) or [self.process.pid]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- seeding ----------------------------------------------------------------------------


async def seed_servers(base: str, token: str, count: int) -> list[int]:
    """Create `count` plan-3 servers through the API, half in each location; their ids."""
    semaphore = asyncio.Semaphore(16)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:

        async def create(index: int) -> int:
            body = {
                "name": f"seed-{index}",
                "plan_id": 3,
                "os_id": 5,
                "location": "us-west" if index % 2 == 0 else "us-east",
            }
            for _attempt in range(10):
                async with semaphore:
                    answer = await http.post("/api/v1/servers/", json=body)
                if answer.status_code != 503:  # database busy: retry, as the API asks
                    break
                await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
            if answer.status_code != 201:
                raise SystemExit(f"seeding failed: {answer.status_code} {answer.text}")
            server_id: int = answer.json()["id"]
            return server_id

        return list(await asyncio.gather(*(create(i) for i in range(count))))


def settle(base: str, tokens: list[str], deadline: float) -> float:
    """Wait until no server of these accounts is in a transitional status; seconds taken."""
    start = time.monotonic()
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.monotonic() - start < deadline:
            busy = 0
            for token in tokens:
                for status in TRANSITIONAL:
                    answer = http.get(
                        "/api/v1/servers/",
                        params={"status": status, "page_size": 1},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    answer.raise_for_status()
                    busy += answer.json()["count"]
            if not busy:
                return time.monotonic() - start
            time.sleep(0.2)
    raise SystemExit(f"servers still in a transitional status after {deadline:.0f} s")


# --- wrk --------------------------------------------------------------------------------


def run_wrk(service: Service, script: str, seconds: int, env: dict[str, str]) -> dict[str, Any]:
    command = [
        "wrk",
        "-t2",
        "-c64",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA / f"{script}.lua"),
        service.base,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return figures
    raise SystemExit(f"wrk gave no figures ({done.returncode}):\n{done.stdout}{done.stderr}")


def scenario(
    service: Service, name: str, script: str, args: argparse.Namespace, env: dict[str, str]
) -> dict[str, Any]:
    run_wrk(service, script, args.warmup, env)
    settle(service.base, args.tokens, 120)
    pids = service.pids()
    cpu_before = cpu_seconds(pids)
    figures = run_wrk(service, script, args.duration, env)
    cpu_after = cpu_seconds(pids)
    # The work a write left to the embedded worker (builds, reboots) is part of its cost.
    settle_seconds = settle(service.base, args.tokens, 120)
    cpu_settled = cpu_seconds(pids)
    requests = max(figures["requests"], 1)
    socket_errors = sum(figures["socket_errors"].values())
    errors = socket_errors + figures["non_2xx_3xx"] - figures["invalid_state_400"]
    return {
        "scenario": name,
        "requests": figures["requests"],
        "requests_per_second": round(figures["requests"] / (figures["duration_us"] / 1e6), 1),
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "max_ms": round(figures["max_us"] / 1000, 2),
        "errors": errors,
        "invalid_state_400": figures["invalid_state_400"],
        "non_2xx_3xx": figures["non_2xx_3xx"],
        "last_unexpected_status": figures["last_other_status"] or None,
        "socket_errors": figures["socket_errors"],
        "cpu_us_per_request": round((cpu_after - cpu_before) * 1e6 / requests),
        "cpu_us_per_request_with_settle": round((cpu_settled - cpu_before) * 1e6 / requests),
        "settle_seconds": round(settle_seconds, 2),
    }


# --- the run ----------------------------------------------------------------------------


async def prepare_database(args: argparse.Namespace, workdir: Path) -> tuple[str, str | None]:
    """The database URL to use, and the SQL that drops it afterwards (PostgreSQL)."""
    if not args.postgres:
        return f"sqlite:///{workdir / 'vps.db'}", None
    name = f"vps_bench_{uuid.uuid4().hex[:10]}"
    await admin_sql(args.postgres, f'CREATE DATABASE "{name}"')
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    return url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="vps-bench-"))
    url, drop_database = asyncio.run(prepare_database(args, workdir))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VPS_")},
        "VPS_DATABASE_URL": url,
        "VPS_DATA_DIR": str(workdir),
        "VPS_DEMO": "false",
        "VPS_LOG_LEVEL": "warning",
        "VPS_SIM_PROVISION_SECONDS": "0",
        "VPS_SIM_ACTION_SECONDS": "0",
        "VPS_SIM_DELETE_SECONDS": "0",
    }
    service = Service(env, workdir, free_port())
    results: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    try:
        service.vps("db", "upgrade")
        tokens = {}
        for account in ("bench", "bench-create"):
            service.vps("accounts", "create", account, "--credits", "1000000000")
            tokens[account] = service.vps("tokens", "create", account).strip().splitlines()[-1]
        args.tokens = list(tokens.values())
        service.start(args.api_processes)
        service.wait_until_up(args.api_processes, 60)
        ids = asyncio.run(seed_servers(service.base, tokens["bench"], args.servers))
        settle(service.base, args.tokens, 120)
        api_pids = service.api_pids()
        rss_idle = {str(pid): rss_mb(pid) for pid in api_pids}
        wrk_env = {
            **os.environ,
            "VPS_BENCH_LUA": str(LUA),
            "VPS_BENCH_TOKEN": tokens["bench"],
            "VPS_BENCH_CREATE_TOKEN": tokens["bench-create"],
            "VPS_BENCH_IDS": ",".join(map(str, ids)),
        }
        for name, script in SCENARIOS.items():
            if args.only and script not in args.only:
                continue
            results.append(scenario(service, name, script, args, wrk_env))
            print(f"  {name}: done", file=sys.stderr)
        rss_end = {str(pid): rss_mb(pid) for pid in api_pids}
        report = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "database": "postgresql" if args.postgres else "sqlite",
            "mode": "quick" if args.quick else "full",
            "api_processes": args.api_processes,
            "seeded_servers": args.servers,
            "wrk": {"threads": 2, "connections": 64, "seconds": args.duration},
            "cpus": os.cpu_count(),
            "rss_mb_idle": rss_idle,
            "rss_mb_end": rss_end,
            "scenarios": results,
        }
    finally:
        service.stop()
        if drop_database and args.postgres:
            asyncio.run(admin_sql(args.postgres, drop_database))
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def table(report: dict[str, Any]) -> str:
    header = ("scenario", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "400 state")
    rows = [
        (
            r["scenario"],
            f"{r['requests_per_second']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(r["errors"]),
            str(r["cpu_us_per_request"]),
            str(r["invalid_state_400"]),
        )
        for r in report["scenarios"]
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    idle = ", ".join(f"{v} MB" for v in report["rss_mb_idle"].values())
    end = ", ".join(f"{v} MB" for v in report["rss_mb_end"].values())
    lines.append(f"RSS per API process: idle {idle}; end {end}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per scenario (under 2 min)")
    parser.add_argument("--postgres", help="a PostgreSQL URL; a fresh database is made beside it")
    parser.add_argument("--servers", type=int, help="servers seeded (default 100 quick, 1000)")
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS.values()))
    parser.add_argument("--json", type=Path, help="write the JSON here instead")
    args = parser.parse_args()
    args.duration = 3 if args.quick else 10
    args.warmup = 1 if args.quick else 2
    args.servers = args.servers or (100 if args.quick else 1000)
    started = time.monotonic()
    report = run(args)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    print(table(report))
    RESULTS.mkdir(exist_ok=True)
    out = args.json or RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
