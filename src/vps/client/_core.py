"""What the sync and async clients share: settings, the retry policy, request and answer
helpers, and the decisions of `wait_until` (the flows that use them are in `_flows` and
`_resources`; the I/O itself is in `_sync` and `_async`)."""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Final, Generic, TypeVar

import httpx

from vps import __version__
from vps.client.errors import ConfigurationError, NotFound, WaitFailed, WaitTimeout
from vps.client.models import STABLE_STATUSES, Event, ServerBase

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
DEFAULT_USER_AGENT = f"vps-python/{__version__} httpx/{httpx.__version__}"

#: Statuses worth retrying: the limit was hit, or a proxy or the service is briefly down.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
#: Failures before the request reached the API, so a retry cannot do anything twice.
CONNECT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
#: A `Retry-After` longer than this is not slept through: `RateLimited` is raised at once,
#: with `.retry_after`, so a script does not hang silently for an hour.
RETRY_AFTER_LIMIT = 120.0

#: How long an event stream may stay silent (heartbeats come every 15 s) before it is
#: taken for dropped and reopened with `Last-Event-ID`.
STREAM_SILENCE_LIMIT = 45.0
#: The longest `wait` the long-poll endpoints accept.
LONG_POLL_MAX = 60
#: Polling (the last fallback) starts at this interval and doubles up to the cap.
POLL_FIRST_DELAY = 0.25
POLL_MAX_DELAY = 5.0
#: Reconnecting a stream that keeps dropping more than this many times in a row gives up
#: on streams for the rest of the wait.
STREAM_DROPS_LIMIT = 3

ServerT = TypeVar("ServerT", bound=ServerBase)


class Unset(Enum):
    """The type of `UNSET`: an argument not passed (None is a value: `hostname=None`)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


def patch_body(**fields: object) -> dict[str, object]:
    """A PATCH body with only the fields passed."""
    return {name: value for name, value in fields.items() if value is not UNSET}


@dataclass(frozen=True)
class ClientSettings:
    base_url: str
    token: str
    timeout: float
    user_agent: str


def resolve_settings(
    base_url: str | None, token: str | None, timeout: float, user_agent: str
) -> ClientSettings:
    base = base_url or os.environ.get("VPS_API_URL") or DEFAULT_BASE_URL
    base = base.rstrip("/").removesuffix(API_PREFIX)
    resolved_token = token or os.environ.get("VPS_TOKEN")
    if not resolved_token:
        raise ConfigurationError(
            "No API token: pass token=... or set the VPS_TOKEN environment variable "
            "(`vps tokens create ACCOUNT` makes one)."
        )
    return ClientSettings(base, resolved_token, timeout, user_agent)


def httpx_options(settings: ClientSettings) -> dict[str, Any]:
    """The options of the httpx client under a `Client` or an `AsyncClient`."""
    return {
        "base_url": settings.base_url,
        "headers": default_headers(settings),
        "timeout": settings.timeout,
    }


def default_headers(settings: ClientSettings) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {settings.token}",
        "Accept": "application/json",
        "User-Agent": settings.user_agent,
    }


def request_headers(
    method: str,
    *,
    idempotency_key: str | None = None,
    if_match: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Per-call headers. Every POST gets an idempotency key, made once per call, so each
    retry of the call carries the same one and the API does the work at most once."""
    headers = dict(extra or {})
    if method == "POST":
        headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
    if if_match is not None:
        headers["If-Match"] = if_match
    return headers


def query(**params: Any) -> dict[str, Any]:
    """Query parameters without the ones left unset."""
    return {name: value for name, value in params.items() if value is not None}


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0
    retry_after: float | None = None


@dataclass
class RetryPolicy:
    """Capped exponential backoff with full jitter: before retry number `n` (from 0) the
    client sleeps a uniformly random time in [0, min(backoff_max, backoff_base * 2**n)],
    unless the API said how long to wait (`Retry-After`, or `RateLimit`'s `t`)."""

    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    random: Callable[[], float] = random.random
    wall_clock: Callable[[], float] = field(default=time.time)

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * (2.0**attempt))
        return self.random() * ceiling

    def after_connect_error(self, attempt: int) -> RetryDecision:
        if attempt >= self.max_retries:
            return RetryDecision(retry=False)
        return RetryDecision(retry=True, delay=self.backoff(attempt))

    def after_response(self, response: httpx.Response, attempt: int) -> RetryDecision:
        status = response.status_code
        if status not in RETRYABLE_STATUSES or _error_code(response) in NEVER_RETRIED_CODES:
            return RetryDecision(retry=False)
        told = retry_after_seconds(response.headers, self.wall_clock())
        if told is None and status == 429:
            told = ratelimit_reset_seconds(response.headers)
        if attempt >= self.max_retries or (told is not None and told > RETRY_AFTER_LIMIT):
            return RetryDecision(retry=False, retry_after=told)
        delay = told if told is not None else self.backoff(attempt)
        return RetryDecision(retry=True, delay=delay, retry_after=told)


# Refusals that waiting a few seconds does not cure: too many event streams are open, and
# only closing one of the caller's own frees a place (`wait_until` then long-polls instead);
# a location is full until servers are deleted or the operator adds a host.
NEVER_RETRIED_CODES = frozenset({"too_many_streams", "location_full"})


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except (ValueError, httpx.ResponseNotRead):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def retry_after_seconds(headers: httpx.Headers, now: float) -> float | None:
    """`Retry-After` in seconds: a number of seconds or an HTTP date (RFC 9110)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, float(moment.timestamp()) - now)


_RATELIMIT_RESET = re.compile(r"(?:^|;)\s*t\s*=\s*(\d+)")
_RATELIMIT_REMAINING = re.compile(r"(?:^|;)\s*r\s*=\s*(\d+)")


def ratelimit_reset_seconds(headers: httpx.Headers) -> float | None:
    """Seconds until an exhausted policy of the `RateLimit` field starts afresh
    (draft-ietf-httpapi-ratelimit-headers: `"minute";r=0;t=42`)."""
    value = headers.get("ratelimit")
    if not value:
        return None
    resets: list[float] = []
    for item in value.split(","):
        remaining = _RATELIMIT_REMAINING.search(item)
        reset = _RATELIMIT_RESET.search(item)
        if reset and (remaining is None or int(remaining.group(1)) == 0):
            resets.append(float(reset.group(1)))
    return max(resets) if resets else None


def long_poll_seconds(remaining: float) -> float:
    """The `wait` to ask for: what is left of the deadline, within what the API accepts
    (more than 0, at most 60 s)."""
    return round(min(float(LONG_POLL_MAX), max(remaining, 0.01)), 3)


def action_id_of(response: httpx.Response) -> int:
    value = response.headers.get("x-action-id")
    if value is None or not value.isdigit():
        location = response.headers.get("location", "")
        match = re.search(r"/actions/(\d+)/?$", location)
        if match is None:
            raise ValueError("The delete answer names no action (no X-Action-Id or Location).")
        value = match.group(1)
    return int(value)


def server_payload(response: httpx.Response) -> dict[str, Any]:
    """A server answer's body, with its ETag."""
    payload: dict[str, Any] = dict(response.json())
    etag = response.headers.get("etag")
    if etag is not None:
        payload["etag"] = etag
    return payload


class WaitProgress(Generic[ServerT]):
    """The decisions of `wait_until`, free of I/O: when it is done, failed or late."""

    def __init__(
        self,
        server_id: int,
        status: str,
        timeout: float,
        clock: Callable[[], float],
        initial: ServerT | None,
    ) -> None:
        self.server_id = server_id
        self.status = status
        self.clock = clock
        self.deadline = clock() + timeout
        self.timeout = timeout
        self.last: ServerT | None = initial
        self.last_event_id: str | None = None

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def timed_out(self) -> WaitTimeout:
        seen = f"; last seen {self.last.status}" if self.last is not None else ""
        return WaitTimeout(
            f"Server {self.server_id} did not become {self.status} within "
            f"{self.timeout:g} s{seen}.",
            self.last,
        )

    def reached(self, server: ServerT) -> bool:
        """True when `server` is in the awaited status; WaitFailed when it settled in
        another stable one (nothing more will happen to it without a request)."""
        self.last = server
        if server.status == self.status:
            return True
        if server.status in STABLE_STATUSES:
            detail = f" ({server.error.code}: {server.error.message})" if server.error else ""
            raise WaitFailed(
                f"Server {server.id} is {server.status}, not {self.status}{detail}.", server
            )
        return False

    def gone(self, not_found: NotFound | None = None) -> ServerT:
        """The server is deleted: the end of a wait for `deleted`, a failure otherwise."""
        if self.last is None:
            if not_found is not None:
                raise not_found
            raise NotFound(404, "not_found", f"Server {self.server_id} was deleted.")
        deleted = self.last.model_copy(update={"status": "deleted"})
        self.last = deleted
        if self.status == "deleted":
            return deleted
        raise WaitFailed(f"Server {self.server_id} was deleted.", deleted)

    def needs_read(self, event: Event) -> bool | None:
        """What an event means for the wait: True to read the server, None when it is
        deleted, False to read on."""
        if event.id is not None:
            self.last_event_id = str(event.id)
        if event.type == "reset":
            return True
        if event.type != "server.status" or event.status is None:
            return False
        if event.status == "deleted":
            return None
        if event.status == self.status or event.status in STABLE_STATUSES:
            return True
        if self.last is not None:
            self.last = self.last.model_copy(update={"status": event.status})
        return False


def event_from(sse_event: str, sse_id: str | None, data: str) -> Event:
    return Event.from_message(sse_event, sse_id, data)
