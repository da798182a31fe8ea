"""The API as Schemathesis sees it: the application `vps serve` runs (embedded worker, fast
simulator) on the session's test database, its OpenAPI document, and an account to act as.

Schemathesis calls the application in-process on an event loop of its own (a thread it
starts), so the application gets its own database handle and worker there; the pytest
session's handle only prepares the account before the first request and checks, after the
last, that its servers were destroyed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.python import asgi
from sqlalchemy import func, select

from tests.conftest import FAST
from tests.factories import SEEDED_LOCATIONS, eventually
from tests.fuzz.client import AnyCase, FuzzAccount
from vps.config import Settings
from vps.db.engine import Database
from vps.db.models import Server
from vps.db.types import utcnow
from vps.domain.money import parse_amount
from vps.runtime import build_app
from vps.services import accounts, catalog

OPENAPI_PATH = "/api/v1/openapi.json"
# Enough that no create in a run is refused for want of credits (each one charges a month).
FUZZ_CREDITS = "10000000.00"

# Besides Schemathesis's defaults (2xx, 3xx, 401, 403, 404, 409, 429), a valid request may
# get a refusal that depends on the state of the resource, which no schema can express; it
# is allowed only on the operations that document it. The spec answers a power action on a
# server in the wrong state with `400` ("the server is already running"), and a power
# action's only input is the server id.
_POWER_ACTION = re.compile(r"^POST /api/v1/servers/\{server_id\}/(start|stop|reboot)/$")
POSITIVE_DEFAULTS: list[str | int] = ["2xx", "3xx", 401, 403, 404, 409, 429]


def event_streams(document: dict[str, Any]) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "text/event-stream" in operation["responses"].get("200", {}).get("content", {})
    }


def fuzz_config(document: dict[str, Any]) -> schemathesis.Config:
    """How Schemathesis tests the API. Every check is on (its default); what is set here is
    what to generate, and which state-dependent refusals a valid request may get."""
    allowed: dict[str, set[int]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            if _POWER_ACTION.match(label) and "400" in operation["responses"]:
                allowed.setdefault(label, set()).add(400)
            headers = {
                p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
            }
            # A generated entity tag is almost never the current one: `412`, as documented.
            if "if-match" in headers and "412" in operation["responses"]:
                allowed.setdefault(label, set()).add(412)
    return schemathesis.Config.from_dict(
        {
            "generation": {
                # Valid and invalid data: invalid data must be refused with a 4xx.
                "mode": "all",
                # Failures are reported with the request that reproduces them; a database
                # in the working tree would only make CI runs differ from local ones.
                "database": "none",
                # Repeatable where Hypothesis's profile is (its `ci` profile, loaded when it
                # detects CI): a pull request fails for what it changed, not for what a new
                # random draw found. Elsewhere each run explores new inputs.
                "deterministic": hypothesis.settings().derandomize,
            },
            "phases": {
                "stateful": {
                    # Only the links the document declares (`vps.api.openapi`), which a
                    # client can follow too: inferred ones also join fields that may be
                    # null, such as a ledger entry's `server_id` (`/servers/None/`).
                    "inference": {"algorithms": []},
                },
            },
            "operations": [
                # An event stream never ends: it cannot be called and validated as a whole
                # (tests/integration/test_events.py reads them over real connections).
                *(
                    {"include-name": label, "enabled": False}
                    for label in sorted(event_streams(document))
                ),
                *(
                    {
                        "include-name": label,
                        "checks": {
                            "positive_data_acceptance": {
                                "expected-statuses": [*POSITIVE_DEFAULTS, *sorted(statuses)]
                            }
                        },
                    }
                    for label, statuses in sorted(allowed.items())
                ),
            ],
        }
    )


@pytest.fixture(scope="module")
def fuzz_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session's database, a fast simulator and a worker that polls often. The
    simulator keeps its machines in a file, so that each test's application (see
    `fuzz_app`) knows the machines the one before built."""
    return settings.model_copy(
        update={
            "embedded_worker": True,
            "sim_provision_seconds": FAST.provision_seconds,
            "sim_action_seconds": FAST.action_seconds,
            "sim_delete_seconds": FAST.delete_seconds,
            "sim_state_file": tmp_path_factory.mktemp("fuzz") / "machines.json",
            "worker_poll_seconds": 0.05,
            "usage_sample_seconds": 0.5,
        }
    )


@pytest.fixture(scope="module")
async def fuzz_account(database: Database, fuzz_settings: Settings) -> AsyncIterator[FuzzAccount]:
    """A read-write token of a fresh account with plenty of credits, and the catalog (the
    `database` fixture has migrated the database and seeded it).

    Afterwards its servers are deleted and destroyed: they hold addresses from the same few
    pools the next tests' servers are built from."""
    name = f"fuzz-{uuid.uuid4().hex[:12]}"
    async with database.write() as session:
        account = await accounts.create_account(session, name, parse_amount(FUZZ_CREDITS), utcnow())
        token, _ = await accounts.create_token(
            session, name, utcnow(), read_only=False, expires_in=None
        )
    async with database.read() as session:
        plans = await catalog.plans(session)
        systems = await catalog.operating_systems(session)
        locations = await catalog.locations(session)
    yield FuzzAccount(
        account_id=account.id,
        token=token,
        plan_ids=tuple(p.id for p in plans),
        os_ids=tuple(o.id for o in systems),
        locations=tuple(loc.code for loc in locations if loc.code in SEEDED_LOCATIONS),
    )

    async def all_destroyed() -> bool:
        async with database.read() as session:
            left = await session.scalar(
                select(func.count())
                .select_from(Server)
                .where(Server.account_id == account.id, Server.status != "deleted")
            )
        return left == 0

    app = build_app(fuzz_settings)
    try:
        delete_servers(app, token)
        await eventually(all_destroyed, "the fuzzed servers to be destroyed", deadline_seconds=60)
    finally:
        asgi.shutdown_lifespans()


def delete_servers(app: FastAPI, token: str) -> None:
    """Delete every server of the account through the API (the application's worker then
    destroys their machines and releases their addresses). Blocks: the application runs on
    Schemathesis's thread, not on the caller's event loop."""
    headers = {"Authorization": f"Bearer {token}"}
    with asgi.get_client(app) as http:  # type: ignore[arg-type]
        for _ in range(100):
            page = http.get("/api/v1/servers/?page_size=100", headers=headers).json()
            if not page["results"]:
                return
            for server in page["results"]:
                http.delete(f"/api/v1/servers/{server['id']}/", headers=headers)
    raise AssertionError("servers are left after 100 rounds of deletes")


@pytest.fixture
def fuzz_app(fuzz_settings: Settings) -> FastAPI:
    """`vps serve`'s application with its worker, so that servers really get built, started
    and deleted while the tests drive them. One per test: Schemathesis ends an application's
    lifespan (and so its worker) with the test that started it, and a worker that was
    stopped does not start again."""
    return build_app(fuzz_settings)


@pytest.fixture
def api_schema(fuzz_app: FastAPI, fuzz_account: FuzzAccount) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_asgi(
        OPENAPI_PATH, fuzz_app, config=fuzz_config(fuzz_app.openapi())
    )

    @schema.auth.auth(refresh_interval=None)
    class BearerToken:
        """Every generated request carries the account's token (the `ignored_auth` check
        then removes or spoils it and expects a 401)."""

        def get(self, case: AnyCase, ctx: schemathesis.AuthContext) -> str:
            return fuzz_account.token

        def set(self, case: AnyCase, data: str, ctx: schemathesis.AuthContext) -> None:
            case.headers["Authorization"] = f"Bearer {data}"

    return schema


@pytest.fixture(autouse=True)
def _node_id_for_lazy_schema(request: pytest.FixtureRequest) -> None:
    """Schemathesis's `from_fixture` tests read and rewrite `node._nodeid` (to name each
    operation in the report), an attribute pytest 9 no longer has: give it one."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
