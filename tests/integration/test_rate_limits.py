"""Rate limits through the public API: the IETF RateLimit fields, 429 with Retry-After,
per-token buckets, junk tokens counted by address, and counters shared through Redis.

Each test builds its own app with small limits (the session's app runs without any); the
Redis tests need VPS_TEST_REDIS_URL (`redis://127.0.0.1:6379/15`) and use a key prefix of
their own. Windows are aligned to the clock, so the tests count in windows of a day: a
window that ended between two requests of a test would give it a fresh quota.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.e2e.processes import free_port
from tests.factories import CREATE_BODY, Factory, Tenant
from vps.api import ratelimit
from vps.api.app import create_app
from vps.config import Settings, parse_rate_limits
from vps.db.engine import Database
from vps.worker.engine import Worker

REDIS_URL = os.environ.get("VPS_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL,
    reason="set VPS_TEST_REDIS_URL=redis://127.0.0.1:6379/15 to test the shared (Redis) mode",
)

# An item of RateLimit-Policy or RateLimit as the draft writes it: "name";key=value;...
_ITEM = re.compile(r'"(?P<name>[a-z0-9-]+)"(?P<params>(?:;[a-z]+=\d+)+)')

Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def parse_items(field: str) -> dict[str, dict[str, int]]:
    """`"day";q=5;w=86400, "hour";q=9;w=3600` -> {"day": {"q": 5, "w": 86400}, ...}."""
    items: dict[str, dict[str, int]] = {}
    for member in field.split(","):
        match = _ITEM.fullmatch(member.strip())
        assert match, f"not a RateLimit item: {member!r} in {field!r}"
        params = (part.split("=") for part in match["params"].strip(";").split(";"))
        items[match["name"]] = {key: int(value) for key, value in params}
    return items


@pytest.fixture
def limited(settings: Settings, database: Database, worker: Worker) -> Client:
    """Clients of a new app of their own with the given settings (fresh in-memory counters
    per app, unless they share Redis)."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings.model_copy(update=overrides), database, wake_worker=worker.wake)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return make


def as_tenant(tenant: Tenant, http: httpx.AsyncClient) -> Tenant:
    return Tenant(tenant.name, tenant.token, http)


async def test_every_response_carries_the_policy_and_the_current_limit(
    factory: Factory, limited: Client
) -> None:
    tenant = await factory.tenant()
    async with limited(rate_limits="5/day;100/7 days") as http:
        me = as_tenant(tenant, http)
        ok = await me.get("/api/v1/servers/")
        missing = await me.get("/api/v1/servers/999999999/")
        invalid = await me.post("/api/v1/servers/", json={"name": "x"})
        unauthenticated = await http.get("/api/v1/servers/")
    assert (ok.status_code, missing.status_code, invalid.status_code) == (200, 404, 400)
    assert unauthenticated.status_code == 401
    for response in (ok, missing, invalid, unauthenticated):
        policies = parse_items(response.headers["RateLimit-Policy"])
        assert policies == {"day": {"q": 5, "w": 86_400}, "7-days": {"q": 100, "w": 604_800}}
    # The token's day is the policy closest to exhaustion: 5, then 4, 3, 2 left after.
    for response, left in ((ok, 4), (missing, 3), (invalid, 2)):
        current = parse_items(response.headers["RateLimit"])
        assert list(current) == ["day"], response.headers["RateLimit"]
        assert current["day"]["r"] == left
        assert 0 < current["day"]["t"] <= 86_400


async def test_the_default_policies_as_the_draft_writes_them(
    factory: Factory, limited: Client
) -> None:
    tenant = await factory.tenant()
    async with limited(rate_limits=Settings.model_fields["rate_limits"].default) as http:
        response = await as_tenant(tenant, http).get("/api/v1/servers/")
    assert response.headers["RateLimit-Policy"] == '"minute";q=250;w=60, "hour";q=5000;w=3600'
    assert re.fullmatch(r'"minute";r=249;t=\d+', response.headers["RateLimit"])


async def test_past_the_limit_a_429_with_retry_after_in_the_error_shape(
    factory: Factory, limited: Client
) -> None:
    tenant = await factory.tenant()
    async with limited(rate_limits="3/day") as http:
        me = as_tenant(tenant, http)
        statuses = [(await me.get("/api/v1/servers/")).status_code for _ in range(3)]
        refused = await me.get("/api/v1/servers/", headers={"X-Request-ID": "burst-4"})
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 86_400
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["request_id"] == "burst-4" == refused.headers["X-Request-ID"]
    assert "3 requests per day" in error["message"]
    current = parse_items(refused.headers["RateLimit"])
    assert current["day"]["r"] == 0
    assert current["day"]["t"] == retry_after
    assert parse_items(refused.headers["RateLimit-Policy"]) == {"day": {"q": 3, "w": 86_400}}


async def test_retry_after_names_the_longest_wait_among_used_up_limits(
    factory: Factory, limited: Client
) -> None:
    tenant = await factory.tenant()
    async with limited(rate_limits="2/second;2/day") as http:
        me = as_tenant(tenant, http)
        assert (await me.get("/api/v1/plans/")).status_code == 200
        assert (await me.get("/api/v1/plans/")).status_code == 200
        refused = await me.get("/api/v1/plans/")
    assert refused.status_code == 429
    # Waiting out the second is not enough: the day is used up too.
    current = parse_items(refused.headers["RateLimit"])
    assert list(current) == ["day"]
    assert current["day"]["r"] == 0
    assert int(refused.headers["Retry-After"]) == current["day"]["t"]


async def test_tokens_have_buckets_of_their_own(factory: Factory, limited: Client) -> None:
    first, second = await factory.tenant(), await factory.tenant()
    async with limited(rate_limits="2/day") as http:
        one, other = as_tenant(first, http), as_tenant(second, http)
        for _ in range(2):
            assert (await one.get("/api/v1/servers/")).status_code == 200
        assert (await one.get("/api/v1/servers/")).status_code == 429
        unaffected = await other.get("/api/v1/servers/")
        # Another token of the same account is its own bucket too: limits follow tokens.
        same_account = as_tenant(await factory.token_for(first), http)
        sibling = await same_account.get("/api/v1/servers/")
    assert unaffected.status_code == 200
    assert parse_items(unaffected.headers["RateLimit"])["day"]["r"] == 1
    assert sibling.status_code == 200


async def test_junk_tokens_share_their_client_address_bucket(
    factory: Factory, limited: Client
) -> None:
    tenant = await factory.tenant()
    mistyped = tenant.token[:-1] + ("x" if tenant.token[-1] != "x" else "y")
    junk = ["nonsense", "vps_" + "A" * 38, "Bearer", mistyped]
    async with limited(rate_limits="3/day") as http:
        statuses = []
        for value in junk:
            response = await http.get(
                "/api/v1/servers/", headers={"Authorization": f"Bearer {value}"}
            )
            statuses.append(response.status_code)
        # No token at all counts against the address too.
        anonymous = await http.get("/api/v1/servers/")
        # A well-formed token is not held back by its address's junk.
        mine = await as_tenant(tenant, http).get("/api/v1/servers/")
    assert statuses == [401, 401, 401, 429]
    assert anonymous.status_code == 429
    assert mine.status_code == 200


async def test_a_refused_request_changes_nothing(factory: Factory, limited: Client) -> None:
    tenant = await factory.tenant()
    async with limited(rate_limits="1/day") as http:
        me = as_tenant(tenant, http)
        assert (await me.get("/api/v1/account/")).status_code == 200
        refused = await me.post("/api/v1/servers/", json=CREATE_BODY)
    assert refused.status_code == 429
    # The session's (unthrottled) client sees the account as it was: no server, no charge.
    account = await tenant.get("/api/v1/account/")
    assert account.json()["balance"] == "1000.00"
    servers = await tenant.get("/api/v1/servers/")
    assert servers.json()["count"] == 0


async def test_paths_outside_the_api_are_not_counted(factory: Factory, limited: Client) -> None:
    async with limited(rate_limits="1/day") as http:
        for _ in range(3):
            response = await http.get("/not-the-api")
            assert response.status_code == 404
            assert "RateLimit" not in response.headers


async def test_off_means_no_fields_and_no_limit(factory: Factory, limited: Client) -> None:
    tenant = await factory.tenant()
    async with limited(rate_limits="off") as http:
        me = as_tenant(tenant, http)
        for _ in range(5):
            response = await me.get("/api/v1/plans/")
            assert response.status_code == 200
            assert "RateLimit-Policy" not in response.headers


@pytest.mark.parametrize(
    "value", ["250", "lots/minute", "5/fortnight", "5/minute;6/minute", "0/minute"]
)
def test_a_bad_setting_is_refused_when_the_settings_load(value: str) -> None:
    with pytest.raises(ValueError, match="VPS_RATE_LIMITS"):
        Settings(rate_limits=value)


async def test_an_unreachable_redis_fails_open_with_one_warning(
    factory: Factory, limited: Client, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await factory.tenant()
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, logger="vps.api.ratelimit"):
        async with limited(rate_limits="1/day", redis_url=nobody) as http:
            me = as_tenant(tenant, http)
            responses = [await me.get("/api/v1/servers/") for _ in range(4)]
    assert [r.status_code for r in responses] == [200] * 4
    for response in responses:
        assert "RateLimit" not in response.headers
        assert parse_items(response.headers["RateLimit-Policy"]) == {"day": {"q": 1, "w": 86_400}}
    warnings = [r for r in caplog.records if r.name == "vps.api.ratelimit"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "suspended" in warnings[0].getMessage()


@needs_redis
async def test_two_processes_sharing_redis_share_the_counters(
    factory: Factory, limited: Client
) -> None:
    tenant, other = await factory.tenant(), await factory.tenant()
    shared = {
        "rate_limits": "5/day",
        "redis_url": REDIS_URL,
        "redis_key_prefix": f"vps-test-{uuid.uuid4().hex}",
    }
    async with limited(**shared) as first, limited(**shared) as second:
        on_first, on_second = as_tenant(tenant, first), as_tenant(tenant, second)
        remaining = []
        for i in range(5):
            response = await (on_first if i % 2 == 0 else on_second).get("/api/v1/servers/")
            assert response.status_code == 200, response.text
            remaining.append(parse_items(response.headers["RateLimit"])["day"]["r"])
        refused_first = await on_first.get("/api/v1/servers/")
        refused_second = await on_second.get("/api/v1/servers/")
        unaffected = await as_tenant(other, second).get("/api/v1/servers/")
    assert remaining == [4, 3, 2, 1, 0]
    assert (refused_first.status_code, refused_second.status_code) == (429, 429)
    assert int(refused_second.headers["Retry-After"]) >= 1
    assert unaffected.status_code == 200


@needs_redis
async def test_a_separate_key_prefix_keeps_counters_apart(
    factory: Factory, limited: Client
) -> None:
    tenant = await factory.tenant()
    base = {"rate_limits": "1/day", "redis_url": REDIS_URL}
    async with (
        limited(**base, redis_key_prefix=f"vps-test-{uuid.uuid4().hex}") as one,
        limited(**base, redis_key_prefix=f"vps-test-{uuid.uuid4().hex}") as two,
    ):
        assert (await as_tenant(tenant, one).get("/api/v1/plans/")).status_code == 200
        assert (await as_tenant(tenant, one).get("/api/v1/plans/")).status_code == 429
        assert (await as_tenant(tenant, two).get("/api/v1/plans/")).status_code == 200


class _Flaky:
    """Counters that fail while `down` is set, as Redis does when it cannot be reached."""

    def __init__(self) -> None:
        self.down = True
        self.counts: dict[str, int] = {}

    async def incr(self, key: str, expiry: int) -> int:
        if self.down:
            raise ConnectionError("unreachable")
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    async def get(self, key: str) -> int:
        return self.counts.get(key, 0)


async def test_the_limiter_probes_its_storage_again_and_says_when_it_is_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # No wait between probes, so that the test need not wait out the real 2 s.
    monkeypatch.setattr(ratelimit, "_REDIS_RETRY_SECONDS", 0.0)
    counters = _Flaky()
    limiter = ratelimit.RateLimiter(parse_rate_limits("2/day"), counters)
    with caplog.at_level(logging.WARNING, logger="vps.api.ratelimit"):
        assert await limiter.check("token:a") is None
        assert await limiter.check("token:a") is None
        counters.down = False
        back = await limiter.check("token:a")
    assert back is not None
    assert back.allowed
    messages = [r.getMessage() for r in caplog.records if r.name == "vps.api.ratelimit"]
    assert len(messages) == 2, messages
    assert "suspended" in messages[0]
    assert "restored" in messages[1]
