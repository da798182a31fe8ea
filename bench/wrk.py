"""Driving the service with `wrk` (scripts in bench/lua/), and the figures of one scenario."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from service import Service, cpu_by_pid, cpu_seconds, cpu_since

LUA = Path(__file__).resolve().parent / "lua"
THREADS, CONNECTIONS = 2, 64


def wrk_env(
    token: str,
    ids: Sequence[int],
    create_token: str | None = None,
    locations: Sequence[str] = (),
) -> dict[str, str]:
    """What the Lua scripts read: the token, the ids of its account's servers to hit (a
    foreign id is a 404, an error), the token of the account creates go to, and the two
    locations that creates alternate between (the first is the one filtered on)."""
    env = {
        **os.environ,
        "VPS_BENCH_LUA": str(LUA),
        "VPS_BENCH_TOKEN": token,
        "VPS_BENCH_CREATE_TOKEN": create_token or token,
        "VPS_BENCH_IDS": ",".join(map(str, ids)),
    }
    if locations:
        env["VPS_BENCH_LOCATIONS"] = ",".join(locations)
    return env


def run_wrk(base: str, script: str, seconds: int, env: dict[str, str]) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA / f"{script}.lua"),
        base,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return figures
    raise SystemExit(f"wrk gave no figures ({done.returncode}):\n{done.stdout}{done.stderr}")


def measure(
    service: Service,
    name: str,
    script: str,
    *,
    warmup: int,
    duration: int,
    env: dict[str, str],
    settle: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """One scenario: a warm-up, then `duration` seconds measured. With `settle` (which waits
    until the work the writes left to the worker is done), the CPU that work took is counted
    apart, as `cpu_us_per_request_with_settle`."""
    run_wrk(service.base, script, warmup, env)
    if settle:
        settle()
    pids = service.pids() + service.worker_pids()
    api_pids = service.api_pids()
    database_before = cpu_by_pid(service.database_pids())
    cpu_before = cpu_seconds(pids)
    figures = run_wrk(service.base, script, duration, env)
    cpu_after = cpu_seconds(pids)
    database_after = cpu_by_pid(service.database_pids())
    requests = max(figures["requests"], 1)
    socket_errors = sum(figures["socket_errors"].values())
    errors = socket_errors + figures["non_2xx_3xx"] - figures["invalid_state_400"]
    result = {
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
        # An API process that died (and that uvicorn replaced) took its CPU time with it.
        "api_processes_died": len(set(api_pids) - set(service.api_pids())),
        # PostgreSQL's own processes (null on SQLite, whose work is in the figure above).
        "db_cpu_us_per_request": round(cpu_since(database_before, database_after) * 1e6 / requests)
        if database_after
        else None,
    }
    if settle:
        settle_seconds = settle()
        cpu_settled = cpu_seconds(pids)
        result["cpu_us_per_request_with_settle"] = round(
            (cpu_settled - cpu_before) * 1e6 / requests
        )
        result["settle_seconds"] = round(settle_seconds, 2)
    return result


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a plain-text table: the first column left-aligned, the others right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def with_database_cpu(
    header: list[str], rows: list[list[str]], results: Sequence[dict[str, Any]]
) -> None:
    """Add the column of PostgreSQL's CPU per request, when it was measured."""
    if any(r.get("db_cpu_us_per_request") is not None for r in results):
        header.append("DB CPU µs/req")
        for row, result in zip(rows, results, strict=True):
            cpu = result.get("db_cpu_us_per_request")
            row.append("-" if cpu is None else str(cpu))
