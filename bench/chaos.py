"""Chaos run: real API processes and workers, killed at random, against one database.

Creates servers, then starts, stops, reboots, renames and deletes them through the HTTP API
while worker processes are killed with SIGKILL and restarted, and the simulated hypervisor
fails a share of its calls. Then it waits for the system to settle and checks the promises:

- no server stuck in a transitional status;
- no orphan machine (a machine whose server is gone) and no missing one (an active or
  stopped server without a machine), no machine built twice;
- no IP address held twice;
- every account's balance equal to the sum of its ledger, and never negative;
- every server whose build failed refunded exactly once;
- every event id given once, without a gap, and each server's last `server.status` event
  naming the status it is in (no change committed without its event, and none twice);
- no 5xx answer other than 503 while the database is busy.

It prints the figures as JSON (and writes them to bench/results/) and exits 1 when a
promise was broken.

    python bench/chaos.py                                  # SQLite, small
    python bench/chaos.py --postgres postgresql://postgres@127.0.0.1/postgres \\
        --servers 200 --kills 30 --api-processes 2 --workers 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from support import admin_sql, free_port

from vps.config import Settings
from vps.db.engine import Database
from vps.db.models import Account, CreditTransaction, IpAllocation, Server, ServerEvent
from vps.db.repositories import events as stored_events
from vps.domain.states import TRANSITIONAL_STATUSES
from vps.drivers.simulator import read_inventory

RESULTS = Path(__file__).parent / "results"
LIVE_MACHINE_STATUSES = {"active", "stopped", "suspended"}


@dataclass
class Cluster:
    env: dict[str, str]
    workdir: Path
    workers: int
    api_processes: int
    port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: int = 0

    def _start(self, name: str, *args: str) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "vps", *args], env=self.env, stdout=log, stderr=log
        )

    def vps(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "vps", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def start(self) -> None:
        self._start("api", "serve", "--port", str(self.port), "--workers", str(self.api_processes))
        for index in range(self.workers):
            self._start(f"worker-{index}", "worker")

    def kill_random_worker(self, rng: random.Random) -> None:
        name = f"worker-{rng.randrange(self.workers)}"
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()
        self.kills += 1
        self._start(name, "worker")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for_api(base: str, deadline: float) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/api/v1/openapi.json", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit("the API did not come up")


async def drive_load(
    base: str, tokens: list[str], servers: int, operations: int, rng: random.Random
) -> Counter[str]:
    """Create servers, then act on them at random; returns a count of answers by kind."""
    answers: Counter[str] = Counter()
    known: list[tuple[str, int]] = []
    semaphore = asyncio.Semaphore(16)

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def call(token: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
            async with semaphore:
                try:
                    response = await http.request(
                        method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
                    )
                except httpx.HTTPError:
                    answers["connection_error"] += 1
                    return None
            answers[f"{method} {response.status_code}"] += 1
            return response

        async def create(index: int) -> None:
            token = rng.choice(tokens)
            response = await call(
                token,
                "POST",
                "/api/v1/servers/",
                json={
                    "name": f"chaos-{index}",
                    "plan_id": 3,
                    "os_id": 5,
                    "location": rng.choice(["us-west", "us-east"]),
                },
            )
            if response is not None and response.status_code == 201:
                known.append((token, response.json()["id"]))

        await asyncio.gather(*(create(i) for i in range(servers)))

        async def act() -> None:
            if not known:
                return
            token, server_id = rng.choice(known)
            verb = rng.choices(
                ["start", "stop", "reboot", "delete", "rename"], weights=[3, 3, 3, 1, 1]
            )[0]
            if verb == "delete":
                await call(token, "DELETE", f"/api/v1/servers/{server_id}/")
            elif verb == "rename":
                await call(
                    token,
                    "PATCH",
                    f"/api/v1/servers/{server_id}/",
                    json={"name": f"renamed-{rng.randrange(10**6)}"},
                )
            else:
                await call(token, "POST", f"/api/v1/servers/{server_id}/{verb}/")

        for _ in range(operations // 16 + 1):
            await asyncio.gather(*(act() for _ in range(16)))
            await asyncio.sleep(rng.uniform(0.05, 0.3))
    return answers


async def settle(database: Database, deadline: float) -> float:
    """Wait until no server is in a transitional status; the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        async with database.read() as session:
            busy = await session.scalar(
                select(func.count())
                .select_from(Server)
                .where(Server.status.in_([s.value for s in TRANSITIONAL_STATUSES]))
            )
        if not busy:
            return time.monotonic() - start
        await asyncio.sleep(0.5)
    return -1.0


async def check(database: Database, sim_state: Path) -> dict[str, Any]:
    machines, builds = read_inventory(sim_state)
    async with database.read() as session:
        servers = (await session.execute(select(Server.id, Server.status))).all()
        status_of = dict(servers)
        stuck = [
            sid for sid, status in servers if status in {s.value for s in TRANSITIONAL_STATUSES}
        ]
        addresses = (
            await session.execute(
                select(IpAllocation.address, func.count())
                .group_by(IpAllocation.address)
                .having(func.count() > 1)
            )
        ).all()
        held_by_gone = await session.scalar(
            select(func.count())
            .select_from(IpAllocation)
            .join(Server, Server.id == IpAllocation.server_id)
            .where(Server.status.in_(["deleted", "error"]))
        )
        balances = dict((await session.execute(select(Account.id, Account.balance_cents))).all())
        ledger = dict(
            (
                await session.execute(
                    select(
                        CreditTransaction.account_id, func.sum(CreditTransaction.amount_cents)
                    ).group_by(CreditTransaction.account_id)
                )
            ).all()
        )
        refunds = Counter(
            sid
            for (sid,) in (
                await session.execute(
                    select(CreditTransaction.server_id).where(
                        CreditTransaction.kind == "refund",
                        CreditTransaction.reference.like("%:create-refund"),
                    )
                )
            ).all()
        )
        head = await stored_events.head(session)
        event_ids = list(
            (await session.scalars(select(ServerEvent.id).order_by(ServerEvent.id))).all()
        )
        last_status: dict[int, str] = {}
        for server_id, data in (
            await session.execute(
                select(ServerEvent.server_id, ServerEvent.data)
                .where(ServerEvent.type == "server.status")
                .order_by(ServerEvent.id)
            )
        ).all():
            last_status[server_id] = orjson.loads(data)["status"]
    errored = [sid for sid, status in servers if status == "error"]
    return {
        "servers_by_status": dict(Counter(status for _sid, status in servers)),
        "violations": {
            "stuck_in_transition": stuck,
            "orphan_machines": sorted(
                sid for sid in machines if status_of.get(sid) not in LIVE_MACHINE_STATUSES
            ),
            "missing_machines": sorted(
                sid
                for sid, status in servers
                if status in LIVE_MACHINE_STATUSES and sid not in machines
            ),
            "machines_built_twice": sorted(sid for sid, count in builds.items() if count > 1),
            "addresses_held_twice": [address for address, _count in addresses],
            "addresses_held_by_gone_servers": int(held_by_gone or 0),
            "balance_differs_from_ledger": sorted(
                aid for aid, balance in balances.items() if balance != int(ledger.get(aid) or 0)
            ),
            "negative_balances": sorted(aid for aid, balance in balances.items() if balance < 0),
            "failed_builds_not_refunded_once": sorted(
                sid for sid in errored if refunds.get(sid) != 1
            ),
            "refunded_more_than_once": sorted(sid for sid, n in refunds.items() if n > 1),
            "event_ids_not_contiguous": event_ids
            != list(range(head.pruned_through + 1, head.last_id + 1)),
            "last_event_differs_from_status": sorted(
                sid for sid, status in servers if last_status.get(sid) != status
            ),
        },
        "events": len(event_ids),
    }


def killer(cluster: Cluster, stop: threading.Event, rng: random.Random) -> None:
    """SIGKILL a random worker every 0.3 to 1.5 s, and start it again, until told to stop."""
    while not stop.wait(rng.uniform(0.3, 1.5)):
        cluster.kill_random_worker(rng)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="vps-chaos-"))
    drop_database = None
    if args.postgres:
        name = f"vps_chaos_{uuid.uuid4().hex[:10]}"
        await admin_sql(args.postgres, f'CREATE DATABASE "{name}"')
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        drop_database = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        url = f"sqlite:///{workdir / 'vps.db'}"
    sim_state = workdir / "simulator.db"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VPS_")},
        "VPS_DATABASE_URL": url,
        "VPS_DATA_DIR": str(workdir),
        "VPS_DEMO": "false",
        "VPS_EMBEDDED_WORKER": "false",
        "VPS_SIM_STATE_FILE": str(sim_state),
        "VPS_SIM_FAILURE_RATE": str(args.failure_rate),
        "VPS_SIM_PROVISION_SECONDS": "0.3",
        "VPS_SIM_ACTION_SECONDS": "0.1",
        "VPS_SIM_DELETE_SECONDS": "0.05",
        # The chaos run hammers a few tokens far past any production rate limit.
        "VPS_RATE_LIMITS": "off",
        "VPS_WORKER_LEASE_SECONDS": "1",
        "VPS_WORKER_POLL_SECONDS": "0.1",
        "VPS_WORKER_MAX_ATTEMPTS": "4",
        "VPS_WORKER_ORPHAN_SWEEP_SECONDS": "1",
        "VPS_WORKER_RETRY_BASE_SECONDS": "0.05",
        "VPS_WORKER_RETRY_MAX_SECONDS": "0.5",
        "VPS_LOG_LEVEL": "warning",
    }
    port = free_port()
    cluster = Cluster(env, workdir, args.workers, args.api_processes, port)
    database = Database(Settings(database_url=url).resolved_database_url)
    try:
        cluster.vps("db", "upgrade")
        tokens = []
        # Enough credits for most servers, not all: some creates must meet a 402.
        per_account = (args.servers * 6 * 0.9) / args.accounts
        for index in range(args.accounts):
            account = f"chaos-{index}"
            cluster.vps("accounts", "create", account, "--credits", f"{per_account:.2f}")
            tokens.append(cluster.vps("tokens", "create", account).strip().splitlines()[-1])
        cluster.start()
        wait_for_api(f"http://127.0.0.1:{port}", 60)
        stop = threading.Event()
        thread = threading.Thread(target=killer, args=(cluster, stop, rng))
        thread.start()
        started = time.monotonic()
        answers = await drive_load(
            f"http://127.0.0.1:{port}", tokens, args.servers, args.operations, rng
        )
        while cluster.kills < args.kills and time.monotonic() - started < args.deadline:
            await asyncio.sleep(0.2)
        stop.set()
        thread.join()
        settle_seconds = await settle(database, args.deadline)
        report = await check(database, sim_state)
        # Machines a stale worker built late are destroyed by the workers' orphan sweep:
        # give it its chance (it runs every second here) before judging.
        end = time.monotonic() + args.deadline
        while report["violations"]["orphan_machines"] and time.monotonic() < end:
            await asyncio.sleep(0.5)
            report = await check(database, sim_state)
    finally:
        cluster.stop()
        await database.dispose()
        if drop_database and args.postgres:
            await admin_sql(args.postgres, drop_database)
    server_errors = {k: v for k, v in answers.items() if k.split()[-1].startswith("5")}
    report["violations"]["server_errors"] = {
        k: v for k, v in server_errors.items() if not k.endswith(" 503")
    }
    report.update(
        database="postgresql" if args.postgres else "sqlite",
        api_processes=args.api_processes,
        workers=args.workers,
        worker_kills=cluster.kills,
        failure_rate=args.failure_rate,
        answers=dict(sorted(answers.items())),
        settle_seconds=round(settle_seconds, 2),
        ok=settle_seconds >= 0 and not any(report["violations"].values()),
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL; a fresh database is made beside it")
    parser.add_argument("--servers", type=int, default=60)
    parser.add_argument("--operations", type=int, default=300)
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--failure-rate", type=float, default=0.1)
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = args.json or RESULTS / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(text)
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
