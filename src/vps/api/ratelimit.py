"""Per-token rate limits, told to clients with the IETF RateLimit fields.

The fields follow draft-ietf-httpapi-ratelimit-headers-10: `RateLimit-Policy` lists every
policy (`"minute";q=250;w=60, "hour";q=5000;w=3600`) and `RateLimit` gives the one closest
to exhaustion (`"minute";r=12;t=41`). Past a limit the answer is `429` with `Retry-After`,
and the request never reaches the application.

Counting is a fixed window per policy, kept in this process's memory or, shared by every
process, in Redis through the `limits` library's storage. Each identity's windows are
aligned to the clock with an offset of its own (a hash of the identity): where a window
stands, and so `t`, is arithmetic, so a request costs one increment per policy and nothing
else, where the `limits` strategies need three storage calls per policy to report `r` and
`t` (in Redis, three round trips); and clients' windows do not all reset at the same
instant. Each policy counts the requests it let through and the first one it refused; the
policies are tried shortest window first and the first refusal stops, so a client that
keeps knocking while refused for the minute does not also burn its hour.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import zlib
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vps.api.errors import error_response
from vps.api.session import SESSION_COOKIE
from vps.config import Settings
from vps.domain.tokens import is_well_formed

log = logging.getLogger("vps.api.ratelimit")

_REDIS_TIMEOUT_SECONDS = 0.5
_REDIS_RETRY_SECONDS = 2.0
_SWEEP_SECONDS = 10.0
_TOKEN_KEY_CONTEXT = b"vps rate limit\x00"


def policy_name(item: RateLimitItem) -> str:
    """`minute`, `hour`, or `5-minutes` for a window of several units."""
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples}-{unit}s"


@dataclass(frozen=True, slots=True)
class _Policy:
    quota: int
    window: int
    name: str


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    headers: list[tuple[bytes, bytes]]
    retry_after: int
    refused_by: _Policy | None


class RateLimiter:
    """Counts requests per identity in `storage`; fails open while the storage is down.

    When Redis cannot be reached, requests are let through without a `RateLimit` field (a
    counter nobody can read limits nothing, and refusing every request would turn a cache
    outage into an API outage). One warning is logged when it goes and one when it comes
    back; meanwhile a single request every couple of seconds tries it again, so an outage
    does not make every request wait for a connection timeout.
    """

    def __init__(self, items: list[RateLimitItem], storage: Counters) -> None:
        if not items:
            raise ValueError("a rate limiter needs at least one limit")
        self.storage = storage
        self.policies = [
            _Policy(item.amount, item.get_expiry(), policy_name(item)) for item in items
        ]
        self.policy_header = (
            b"ratelimit-policy",
            ", ".join(f'"{p.name}";q={p.quota};w={p.window}' for p in self.policies).encode(),
        )
        self._failing = False
        self._retry_at = 0.0

    async def check(self, identity: str) -> Verdict | None:
        """Count one request of `identity`; `None` when the counters cannot be reached."""
        now = time.time()
        if self._failing:
            if now < self._retry_at:
                return None
            # This request probes the storage; the others keep going through meanwhile.
            self._retry_at = now + _REDIS_RETRY_SECONDS
        try:
            verdict = await self._count(identity, now)
        except Exception as error:  # any storage failure: it must never become a 500
            if not self._failing:
                log.warning(
                    "rate limits suspended: their storage is unreachable (%s); "
                    "retrying every %.0f s",
                    type(error).__name__,
                    _REDIS_RETRY_SECONDS,
                )
            self._failing = True
            self._retry_at = time.time() + _REDIS_RETRY_SECONDS
            return None
        if self._failing:
            self._failing = False
            log.warning("rate limits restored: their storage answers again")
        return verdict

    async def _count(self, identity: str, now: float) -> Verdict:
        storage = self.storage
        offset = zlib.crc32(identity.encode())
        refused_by = None
        # (remaining, seconds to reset, policy), in the order of the policies
        states: list[tuple[int, int, _Policy]] = []
        for policy in self.policies:
            window = policy.window
            index, elapsed = divmod(now + offset % window, window)
            key = f"{policy.window}/{identity}/{int(index)}"
            if refused_by is None:
                used = await storage.incr(key, window)
                if used > policy.quota:
                    refused_by = policy
            else:
                used = await storage.get(key)
            states.append((max(0, policy.quota - used), math.ceil(window - elapsed), policy))
        # Closest to exhaustion: the fewest requests left, then the longest wait.
        remaining, reset, current = min(
            states, key=lambda state: (state[0], -state[1], -state[2].window)
        )
        retry_after = max((wait for left, wait, _ in states if left == 0), default=1)
        return Verdict(
            allowed=refused_by is None,
            headers=[
                self.policy_header,
                (b"ratelimit", f'"{current.name}";r={remaining};t={reset}'.encode()),
            ],
            retry_after=retry_after,
            refused_by=refused_by,
        )


class Counters(Protocol):
    """Window counters: what the limiter needs of a storage (`limits`' storages fit)."""

    async def incr(self, key: str, expiry: int) -> int:
        """Add one to `key` and return its count; a new key expires `expiry` s later."""
        ...

    async def get(self, key: str) -> int: ...


class MemoryCounters:
    """Counters in this process's memory, swept of past windows every few seconds.

    Not `limits`' MemoryStorage: it sweeps every key on every increment (measured: 1.7 ms a
    request with 10,000 live keys, where this costs the same at any size).
    """

    def __init__(self) -> None:
        self._counts: dict[str, list[float]] = {}  # key -> [count, expires at]
        self._next_sweep = 0.0

    async def incr(self, key: str, expiry: int) -> int:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._counts = {k: entry for k, entry in self._counts.items() if entry[1] > now}
            self._next_sweep = now + _SWEEP_SECONDS
        entry = self._counts.get(key)
        if entry is None or entry[1] <= now:
            self._counts[key] = [1, now + expiry]
            return 1
        entry[0] += 1
        return int(entry[0])

    async def get(self, key: str) -> int:
        entry = self._counts.get(key)
        return int(entry[0]) if entry is not None and entry[1] > time.monotonic() else 0


def build_rate_limiter(settings: Settings) -> RateLimiter | None:
    """The limiter the settings ask for, or `None` when rate limiting is off."""
    items = settings.rate_limit_items
    if not items:
        return None
    storage: Counters
    if settings.redis_url:
        # Imported only here: the Redis client weighs about 12 MB per API process, which
        # the default in-memory mode does without.
        from coredis.retry import NoRetryPolicy
        from limits.aio.storage import RedisStorage

        storage = RedisStorage(
            settings.redis_url,
            wrap_exceptions=True,
            key_prefix=settings.redis_key_prefix,
            connect_timeout=_REDIS_TIMEOUT_SECONDS,
            stream_timeout=_REDIS_TIMEOUT_SECONDS,
            # No retries inside a request: the limiter's own probe every 2 s is the retry,
            # and a request never waits for more than one timeout.
            retry_policy=NoRetryPolicy(),  # type: ignore[arg-type]
        )
    else:
        storage = MemoryCounters()
    return RateLimiter(items, storage)


def _token_identity(authorization: bytes) -> str | None:
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not is_well_formed(token):
        return None
    # Hashed with a context of its own: the key is not the hash the database stores.
    return "token:" + hashlib.sha256(_TOKEN_KEY_CONTEXT + token.encode("ascii")).hexdigest()


def _session_credentials(cookie_header: bytes) -> bytes | None:
    """`Bearer <token>` for the panel's session cookie in a Cookie header, if any, read by
    the parser that authentication reads it with (`Request.cookies`)."""
    token = cookie_parser(cookie_header.decode("latin-1")).get(SESSION_COOKIE)
    return None if token is None else b"Bearer " + token.encode("latin-1")


class Identities:
    """Whom a request counts against: its token when it is well formed, else its address.

    A token that fails the offline check gets no bucket of its own, or every made-up token
    would start with a full quota. Tokens are kept only hashed. The answer for each
    `Authorization` value is remembered (checking a token's checksum and hashing it cost
    more than counting), in a table emptied when it fills up.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._tokens: dict[bytes, str | None] = {}

    def of(self, scope: Scope) -> str:
        credentials = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                credentials = value
                break
            if name == b"cookie" and credentials is None:
                # The panel's session: the same token, so the same bucket.
                credentials = _session_credentials(value)
        if credentials is not None:
            if credentials in self._tokens:
                identity = self._tokens[credentials]
            else:
                if len(self._tokens) >= self._size:
                    self._tokens.clear()
                identity = self._tokens[credentials] = _token_identity(credentials)
            if identity is not None:
                return identity
        client = scope.get("client")
        return "address:" + (client[0] if client else "unknown")


class RateLimitMiddleware:
    """Counts every `/api/` request, answers `429` past a limit, and adds the RateLimit
    fields to every response it lets through."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter
        self.identities = Identities()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        verdict = await self.limiter.check(self.identities.of(scope))
        if verdict is None:
            headers = [self.limiter.policy_header]
        elif not verdict.allowed:
            await self._refuse(scope, receive, send, verdict)
            return
        else:
            headers = verdict.headers

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_fields)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, verdict: Verdict) -> None:
        policy = verdict.refused_by
        limit = f"{policy.quota} requests per {policy.name}" if policy else "the rate limit"
        response = error_response(
            Request(scope),
            "rate_limited",
            f"Too many requests: {limit} used up; retry in {verdict.retry_after} s.",
            headers={"Retry-After": str(verdict.retry_after)},
        )
        response.raw_headers.extend(verdict.headers)
        await response(scope, receive, send)
