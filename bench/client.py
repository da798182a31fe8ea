"""What the benchmark asks of the API itself: creating servers, and counting them by status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

SERVERS = "/api/v1/servers/"
# A power action or a create leaves the server in one of these until a worker is done
# (`deleting` is not listed: a deleted server is a 404 at once).
TRANSITIONAL = ("provisioning", "rebooting", "starting", "stopping")


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Created:
    """The servers a batch of creates made, and the creates that made none: by HTTP status
    other than 201, or by the transport error (the connection dropped: a process died?)."""

    ids: list[int] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    example: str | None = None

    def refuse(self, key: str, example: str) -> None:
        self.refused[key] = self.refused.get(key, 0) + 1
        self.example = self.example or example


async def create_servers(
    base: str,
    token: str,
    count: int,
    *,
    concurrency: int = 16,
    locations: Sequence[str],
    prefix: str = "seed",
    on_created: Callable[[int], None] | None = None,
) -> Created:
    """Create `count` plan-3 servers through the API, `concurrency` at a time, spread evenly
    over `locations`. `on_created` is told how many were created so far."""
    semaphore = asyncio.Semaphore(concurrency)
    created = Created()
    # Idle connections are dropped before uvicorn's keep-alive timeout (5 s) closes them:
    # a create sent on a connection the server is closing fails with no answer.
    limits = httpx.Limits(max_connections=concurrency, keepalive_expiry=2.0)
    async with httpx.AsyncClient(
        base_url=base, headers=_headers(token), timeout=60, limits=limits
    ) as http:

        async def create(index: int) -> None:
            body = {
                "name": f"{prefix}-{index}",
                "plan_id": 3,
                "os_id": 5,
                "location": locations[index % len(locations)],
            }
            for _attempt in range(20):
                try:
                    async with semaphore:
                        answer = await http.post(SERVERS, json=body)
                except httpx.TransportError as error:
                    created.refuse(error.__class__.__name__, repr(error))
                    return
                if answer.status_code != 503:  # database busy: retry, as the API asks
                    break
                await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
            if answer.status_code != 201:
                created.refuse(f"HTTP {answer.status_code}", f"{answer.status_code} {answer.text}")
                return
            created.ids.append(answer.json()["id"])
            if on_created:
                on_created(len(created.ids))

        await asyncio.gather(*(create(i) for i in range(count)))
    created.ids.sort()
    return created


def count(http: httpx.Client, token: str, status: str | None = None) -> int:
    """How many visible servers the token's account has (in `status`)."""
    params: dict[str, str | int] = {"page_size": 1}
    if status:
        params["status"] = status
    answer = http.get(SERVERS, params=params, headers=_headers(token))
    answer.raise_for_status()
    total: int = answer.json()["count"]
    return total


def settle(base: str, tokens: list[str], deadline: float) -> float:
    """Wait until no server of these accounts is in a transitional status; seconds taken."""
    start = time.monotonic()
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.monotonic() - start < deadline:
            if not sum(count(http, t, s) for t in tokens for s in TRANSITIONAL):
                return time.monotonic() - start
            time.sleep(0.2)
    raise SystemExit(f"servers still in a transitional status after {deadline:.0f} s")


def page_ids(base: str, token: str, limit: int = 100) -> list[int]:
    """The ids of the first `limit` (at most a page of 100) servers of the token's account."""
    answer = httpx.get(
        f"{base}{SERVERS}", params={"page_size": limit}, headers=_headers(token), timeout=30
    )
    answer.raise_for_status()
    return [server["id"] for server in answer.json()["results"]]
