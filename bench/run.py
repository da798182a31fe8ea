"""Benchmark: the real `vps serve` (and `vps worker`) on fresh databases, driven from here.

Three parts, each on databases of its own (fresh SQLite files, or fresh PostgreSQL
databases beside --postgres, dropped afterwards):

- the wrk table: `vps serve --workers 2` as users run it (zero-delay simulator, embedded
  worker), accounts and tokens made with the `vps` command and servers through the API;
  each scenario (GET one server, list pages with and without filters, create, PATCH,
  reboot, a mixed workload) runs with `wrk` after a short warm-up: requests/s, p50/p99
  latency, errors, and the CPU time the server processes spent per request (from /proc:
  these machines are shared and noisy, so CPU per request is the figure that compares);
- scale (bench/scale.py): GET and list with 1,000 and with 1,000,000 servers (100,000 in
  quick mode) over 10,000 accounts, seeded with bulk SQL; the ratio of CPU per request;
- lifecycle (bench/lifecycle.py): N servers created at once, built by standalone workers,
  until all are active: 1 worker on SQLite, and 1, 2 and 4 on PostgreSQL with --postgres;
- events (bench/events.py): with S event streams open over the API processes, how soon
  each create's events reach every stream, and how many are delivered per second.

Everything, with the RSS of each API process idle and at the end, is also written as JSON
to bench/results/.

    python bench/run.py --quick                                # SQLite, about 2 minutes
    python bench/run.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python bench/run.py --quick --only get list --skip-lifecycle
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import events
import lifecycle
import scale
from client import create_servers, settle
from service import LOCATIONS, Service, fresh_database, running, service_env
from wrk import CONNECTIONS, THREADS, format_table, measure, with_database_cpu, wrk_env

RESULTS = Path(__file__).resolve().parent / "results"
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
# How long the worker may take to finish what a scenario's writes left it.
SETTLE_DEADLINE = 300.0


def run_table(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The wrk scenarios on one service with its embedded worker."""
    directory = workdir / "table"
    results: list[dict[str, Any]] = []
    with fresh_database(args.postgres, directory) as url:
        service = Service(service_env(url, directory), directory)
        prepared = service.prepare(["bench", "bench-create"], locations=True)
        token, create_token = (prepared[name][1] for name in ("bench", "bench-create"))
        tokens = [token, create_token]
        locations = list(LOCATIONS)

        def settled() -> float:
            return settle(service.base, tokens, SETTLE_DEADLINE)

        with running(service, args.api_processes):
            print(f"  table: creating {args.servers} servers", file=sys.stderr)
            created = asyncio.run(
                create_servers(service.base, token, args.servers, locations=locations)
            )
            if created.refused:
                raise SystemExit(f"creating the servers failed: {created.example}")
            ids = created.ids
            settled()
            rss_idle = service.rss()
            env = wrk_env(token, ids, create_token, locations)
            for name, script in SCENARIOS.items():
                if args.only and script not in args.only:
                    continue
                results.append(
                    measure(
                        service,
                        name,
                        script,
                        warmup=args.warmup,
                        duration=args.duration,
                        env=env,
                        settle=settled,
                    )
                )
                print(f"    {name}: done", file=sys.stderr)
            rss_end = service.rss()
    return {"rss_mb_idle": rss_idle, "rss_mb_end": rss_end, "scenarios": results}


def table(report: dict[str, Any]) -> str:
    header = ["scenario", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "400 state"]
    rows = [
        [
            r["scenario"],
            f"{r['requests_per_second']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(r["errors"]),
            str(r["cpu_us_per_request"]),
            str(r["invalid_state_400"]),
        ]
        for r in report["scenarios"]
    ]
    with_database_cpu(header, rows, report["scenarios"])
    lines = [
        f"Scenarios ({report['database']}, {report['api_processes']} API processes with the "
        f"embedded worker, {report['seeded_servers']} servers; wrk {THREADS} threads, "
        f"{CONNECTIONS} connections, {report['wrk']['seconds']} s each)",
        *format_table(header, rows),
    ]
    lines += [
        f"{r['scenario']}: {r['api_processes_died']} API process(es) died during the run"
        for r in report["scenarios"]
        if r["api_processes_died"]
    ]
    idle = ", ".join(f"{v} MB" for v in report["rss_mb_idle"].values())
    end = ", ".join(f"{v} MB" for v in report["rss_mb_end"].values())
    lines.append(f"RSS per API process: idle {idle}; end {end}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "database": "postgresql" if args.postgres else "sqlite",
        "mode": "quick" if args.quick else "full",
        "api_processes": args.api_processes,
        "seeded_servers": args.servers,
        "wrk": {"threads": THREADS, "connections": CONNECTIONS, "seconds": args.duration},
        "cpus": os.cpu_count(),
        "rss_mb_idle": {},
        "rss_mb_end": {},
        "scenarios": [],
        "part_seconds": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="vps-bench-"))

    def part(name: str, measure: Callable[[], dict[str, Any]]) -> None:
        """Run one part, keep its result under `name` and how long it took."""
        started = time.monotonic()
        result = measure()
        if name == "table":  # its figures are the report's top level
            report.update(result)
        else:
            report[name] = result
        report["part_seconds"][name] = round(time.monotonic() - started, 1)

    try:
        if not args.skip_table:
            part("table", lambda: run_table(args, workdir))
        scale_scripts = [s for s in scale.SCENARIOS.values() if not args.only or s in args.only]
        if not args.skip_scale and scale_scripts:
            part(
                "scale",
                lambda: scale.run_scale(
                    postgres=args.postgres,
                    large=args.scale_size,
                    scripts=scale_scripts,
                    api_processes=args.api_processes,
                    warmup=args.warmup,
                    duration=args.duration,
                    workdir=workdir,
                ),
            )
        if not args.skip_lifecycle:
            part(
                "lifecycle",
                lambda: lifecycle.run_lifecycles(
                    postgres=args.postgres,
                    postgres_workers=args.lifecycle_workers,
                    servers=args.lifecycle_servers,
                    api_processes=args.api_processes,
                    deadline=args.lifecycle_deadline,
                    workdir=workdir,
                    hosts=args.lifecycle_hosts,
                ),
            )
        if not args.skip_events:
            part(
                "events",
                lambda: events.run_events(
                    postgres=args.postgres,
                    api_processes=args.api_processes,
                    streams=args.event_streams,
                    servers=args.event_servers,
                    workdir=workdir,
                ),
            )
    except BaseException:
        # The logs of the service and the workers are what tells why.
        print(f"the run failed; its logs are kept in {workdir}", file=sys.stderr)
        raise
    refused = any(r["refused"] for r in report.get("lifecycle", {}).get("runs", []))
    if args.keep or refused:
        print(f"the logs of the service and the workers are kept in {workdir}", file=sys.stderr)
        report["logs"] = str(workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def text(report: dict[str, Any], quick: bool) -> str:
    parts = []
    if report["scenarios"]:
        parts.append(table(report))
    if "scale" in report:
        parts.append(scale.scale_table(report["scale"], report["database"], quick))
    if "lifecycle" in report:
        parts.append(lifecycle.lifecycle_table(report["lifecycle"]))
    if "events" in report:
        parts.append(events.events_table(report["events"]))
    times = ", ".join(f"{part} {seconds:.0f} s" for part, seconds in report["part_seconds"].items())
    parts.append(f"Wall time: {report['wall_seconds']:.0f} s ({times})")
    return "\n\n".join(parts)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 s per scenario, 100,000 servers at scale, 500 lifecycle servers",
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL; fresh databases are made beside it")
    parser.add_argument("--servers", type=int, help="servers for the table (100 quick, 1000)")
    parser.add_argument(
        "--api-processes", type=int, default=2, help="processes of `vps serve` (default 2)"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        choices=sorted(SCENARIOS.values()),
        help="run only these wrk scenarios (of the table, and get/list of the scale part)",
    )
    parser.add_argument("--skip-table", action="store_true", help="skip the wrk scenarios table")
    parser.add_argument("--skip-scale", action="store_true", help="skip the scale scenario")
    parser.add_argument("--skip-lifecycle", action="store_true", help="skip lifecycle throughput")
    parser.add_argument(
        "--scale-size",
        type=int,
        help=f"the large size (default {scale.LARGE:,}; {scale.QUICK_LARGE:,} quick)",
    )
    parser.add_argument(
        "--lifecycle-servers", type=int, help="servers created at once (default 2000; 500 quick)"
    )
    parser.add_argument(
        "--lifecycle-workers",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="worker counts on PostgreSQL (default 1 2 4; SQLite runs 1)",
    )
    parser.add_argument(
        "--lifecycle-hosts",
        type=int,
        default=0,
        help="simulated hypervisor hosts per location, so each create is placed (default 0: "
        "the default driver, no placement)",
    )
    parser.add_argument("--skip-events", action="store_true", help="skip event delivery")
    parser.add_argument(
        "--event-streams", type=int, help="streams open at once (default 100; 20 quick)"
    )
    parser.add_argument(
        "--event-servers", type=int, help="servers created while they listen (200; 50 quick)"
    )
    parser.add_argument("--json", type=Path, help="write the JSON here instead")
    parser.add_argument(
        "--keep", action="store_true", help="keep the logs (kept anyway when a part fails)"
    )
    args = parser.parse_args()
    args.duration = 3 if args.quick else 10
    args.warmup = 1 if args.quick else 2
    args.servers = args.servers or (100 if args.quick else 1000)
    args.scale_size = args.scale_size or (scale.QUICK_LARGE if args.quick else scale.LARGE)
    args.lifecycle_servers = args.lifecycle_servers or (500 if args.quick else 2000)
    args.event_streams = args.event_streams or (20 if args.quick else 100)
    args.event_servers = args.event_servers or (50 if args.quick else 200)
    # Generous: the service may be slow today, and a run that times out measures nothing.
    args.lifecycle_deadline = 120 + args.lifecycle_servers * 0.5
    return args


def main() -> None:
    args = arguments()
    started = time.monotonic()
    report = run(args)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    print(text(report, args.quick))
    RESULTS.mkdir(exist_ok=True)
    out = args.json or RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
