"""Event delivery: how soon a change reaches every open event stream, across API processes.

`vps serve --workers N` (zero-delay simulator, embedded workers) with S streams open on one
account, spread over the API processes by the kernel; servers are created through the API,
a few at a time. For each create, each stream must deliver its `provisioning` and `active`
events: the figures are the create's own latency, the delay from the create's answer to
its `provisioning` event on a stream (p50/p99 over every stream and create; the event may
even arrive first), events delivered per second, events that never arrived (must be 0),
and the API processes' CPU per delivered event (the creates and builds included).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from service import LOCATIONS, Service, cpu_by_pid, cpu_since, fresh_database, running, service_env

SERVERS = "/api/v1/servers/"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _measure(base: str, token: str, streams: int, servers: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    # (stream, server id, status) -> when it arrived.
    arrivals: dict[tuple[int, int, str], float] = {}
    connected = 0
    all_connected = asyncio.Event()
    limits = httpx.Limits(max_connections=streams + 16)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=httpx.Timeout(120, connect=10), limits=limits
    ) as http:

        async def follow(index: int) -> None:
            nonlocal connected
            async with http.stream("GET", "/api/v1/events/") as response:
                response.raise_for_status()
                connected += 1
                if connected == streams:
                    all_connected.set()
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        event = orjson.loads(line[6:])
                        if event["type"] == "server.status":
                            key = (index, event["server_id"], event["status"])
                            arrivals[key] = time.monotonic()

        readers = [asyncio.create_task(follow(i)) for i in range(streams)]
        await asyncio.wait_for(all_connected.wait(), 60)
        sent: dict[int, float] = {}
        answered: dict[int, float] = {}
        codes = list(LOCATIONS)
        semaphore = asyncio.Semaphore(4)

        async def create(index: int) -> None:
            body = {
                "name": f"ev-{index}",
                "plan_id": 3,
                "os_id": 5,
                "location": codes[index % len(codes)],
            }
            async with semaphore:
                started = time.monotonic()
                answer = await http.post(SERVERS, json=body)
                answer.raise_for_status()
                sent[answer.json()["id"]] = started
                answered[answer.json()["id"]] = time.monotonic()

        started = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(servers)))
        expected = {
            (s, sid, status)
            for s in range(streams)
            for sid in sent
            for status in ("provisioning", "active")
        }
        deadline = time.monotonic() + 60
        while not expected <= arrivals.keys() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    delays = [
        (arrivals[(s, sid, "provisioning")] - answered[sid]) * 1000
        for s in range(streams)
        for sid in sent
        if (s, sid, "provisioning") in arrivals
    ]
    delivered = len(expected & arrivals.keys())
    create_ms = [(answered[sid] - sent[sid]) * 1000 for sid in sent]
    return {
        "streams": streams,
        "servers": servers,
        "delivered": delivered,
        "missing": len(expected - arrivals.keys()),
        "events_per_second": round(delivered / elapsed, 1),
        "p50_ms": round(_percentile(delays, 0.50), 1) if delays else None,
        "p99_ms": round(_percentile(delays, 0.99), 1) if delays else None,
        "create_p50_ms": round(_percentile(create_ms, 0.50), 1),
    }


def run_events(
    *,
    postgres: str | None,
    api_processes: int,
    streams: int,
    servers: int,
    workdir: Path,
    **settings: str,
) -> dict[str, Any]:
    directory = workdir / "events"
    with fresh_database(postgres, directory) as url:
        service = Service(service_env(url, directory, **settings), directory)
        token = service.prepare(["events"], locations=True)["events"][1]
        with running(service, api_processes):
            before = cpu_by_pid(service.api_pids())
            result = asyncio.run(_measure(service.base, token, streams, servers))
            cpu = cpu_since(before, cpu_by_pid(service.api_pids()))
    result["api_cpu_us_per_event"] = (
        round(cpu * 1e6 / result["delivered"]) if result["delivered"] else None
    )
    result["database"] = "postgresql" if postgres else "sqlite"
    result["api_processes"] = api_processes
    return result


def events_table(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Event delivery ({report['database']}, {report['api_processes']} API processes)",
            "| streams | creates | create p50 ms | events delivered | missing | events/s "
            "| answer→event p50 ms | p99 ms | API CPU µs/event |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {report['streams']} | {report['servers']} | {report['create_p50_ms']} "
            f"| {report['delivered']:,} | {report['missing']} | {report['events_per_second']:,} "
            f"| {report['p50_ms']} | {report['p99_ms']} | {report['api_cpu_us_per_event']} |",
        ]
    )
