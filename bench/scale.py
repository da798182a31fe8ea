"""Scale scenario: GET one server and list a page of 50 (no filter) with 1,000 servers in
the database, then with 1,000,000 (100,000 in quick mode), spread over 10,000 accounts.

Each size gets a fresh database, seeded with bulk SQL (bench/bulk.py: through the API a
million creates would take hours) after `vps db upgrade`; the queried account and its
token are made with the `vps` command. The account holds the same 100 servers at both
sizes, so the ratio of CPU per request (large / small) shows what the size of the tables
alone costs: near 1 when every read path is an index lookup.

The API runs without its embedded worker: these scenarios only read, and the worker's
sweeps over a million servers (usage samples, renewals) would be counted against them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import bulk
from service import Service, fresh_database, running, service_env
from wrk import format_table, measure, with_database_cpu, wrk_env

SMALL = 1_000
LARGE = 1_000_000
QUICK_LARGE = 100_000
ACCOUNTS = 10_000
# Scenario name -> Lua script in bench/lua/.
SCENARIOS = {"get": "get", "list": "list"}


def run_scale(
    *,
    postgres: str | None,
    large: int,
    scripts: list[str],
    api_processes: int,
    warmup: int,
    duration: int,
    workdir: Path,
) -> dict[str, Any]:
    """Both sizes, one after the other; the figures, ratios and seeding times."""
    results: list[dict[str, Any]] = []
    sizes: list[dict[str, Any]] = []
    for servers in (SMALL, large):
        print(f"  scale: {servers:,} servers", file=sys.stderr)
        directory = workdir / f"scale-{servers}"
        with fresh_database(postgres, directory) as url:
            service = Service(service_env(url, directory, embedded_worker="false"), directory)
            account_id, token = service.prepare(["bench"])["bench"]
            seeded = asyncio.run(bulk.seed(url, account_id, servers, ACCOUNTS))
            with running(service, api_processes):
                env = wrk_env(token, seeded.ids)
                for name, script in SCENARIOS.items():
                    if script not in scripts:
                        continue
                    figures = measure(
                        service, name, script, warmup=warmup, duration=duration, env=env
                    )
                    results.append({"servers": servers, **figures})
                    print(f"    {name}: done", file=sys.stderr)
                rss_end = service.rss()
        sizes.append(
            {
                "servers": servers,
                "accounts": seeded.accounts,
                "queried_account_servers": len(seeded.ids),
                "seed_seconds": seeded.seconds,
                "seed_steps": seeded.steps,
                "rss_mb_end": rss_end,
            }
        )
    return {
        "sizes": sizes,
        "scenarios": results,
        "cpu_ratio_large_over_small": _ratios(results, large, "cpu_us_per_request"),
        "db_cpu_ratio_large_over_small": _ratios(results, large, "db_cpu_us_per_request"),
        "embedded_worker": False,
    }


def _ratios(results: list[dict[str, Any]], large: int, figure: str) -> dict[str, float | None]:
    """`figure` at the large size over the same at the small one, per scenario."""
    cpu = {(r["scenario"], r["servers"]): r[figure] for r in results}
    ratios: dict[str, float | None] = {}
    for name in dict.fromkeys(r["scenario"] for r in results):
        small, big = cpu.get((name, SMALL)), cpu.get((name, large))
        ratios[name] = round(big / small, 2) if small and big is not None else None
    return ratios


def scale_table(report: dict[str, Any], database: str, quick: bool) -> str:
    large = report["sizes"][-1]["servers"]
    note = f" (quick mode; the full run uses {LARGE:,})" if quick and large != LARGE else ""
    header = ["scenario", "servers", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req"]
    results = sorted(report["scenarios"], key=lambda r: (r["scenario"], r["servers"]))
    rows = [
        [
            r["scenario"],
            f"{r['servers']:,}",
            f"{r['requests_per_second']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(r["errors"]),
            str(r["cpu_us_per_request"]),
        ]
        for r in results
    ]
    with_database_cpu(header, rows, results)
    lines = [
        f"Scale ({database}): {SMALL:,} and {large:,} servers{note} over {ACCOUNTS:,} accounts; "
        f"the queried account holds {report['sizes'][0]['queried_account_servers']}; "
        "no embedded worker",
        *format_table(header, rows),
    ]
    lines += [
        f"{r['scenario']} at {r['servers']:,}: {r['api_processes_died']} API process(es) died"
        for r in results
        if r["api_processes_died"]
    ]
    for key, what in (
        ("cpu_ratio_large_over_small", "CPU µs/req"),
        ("db_cpu_ratio_large_over_small", "DB CPU µs/req"),
    ):
        if any(ratio is not None for ratio in report[key].values()):
            ratios = ", ".join(
                f"{name} {'-' if ratio is None else f'{ratio:.2f}'}"
                for name, ratio in report[key].items()
            )
            lines.append(f"{what}, {large:,} / {SMALL:,}: {ratios}")
    for size in report["sizes"]:
        rss = ", ".join(f"{v} MB" for v in size["rss_mb_end"].values())
        lines.append(
            f"{size['servers']:,} servers: seeded in {size['seed_seconds']} s; "
            f"RSS per API process at the end {rss}"
        )
    return "\n".join(lines)
