"""The retry policy, on canned answers (httpx.MockTransport) and an injected sleep: which
answers are retried, how long the client waits, and that a POST keeps its idempotency key."""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest

from vps.client import (
    ApiError,
    BadRequest,
    Client,
    ConnectionFailed,
    InsufficientCredits,
    LocationFull,
    RateLimited,
    RetryPolicy,
    ServerError,
)
from vps.client._core import ratelimit_reset_seconds, retry_after_seconds

LOCATIONS = [{"code": "us-west", "name": "US West"}]
SSH_KEY = {
    "id": 7,
    "name": "laptop",
    "public_key": "ssh-ed25519 AAAA",
    "fingerprint": "SHA256:x",
    "created_at": "2026-11-28T23:59:59Z",
}


def _error(status: int, code: str, headers: dict[str, str] | None = None, **extra: object):
    body = {"error": {"code": code, "message": f"{code} happened", "request_id": "req-1", **extra}}
    return httpx.Response(status, json=body, headers=headers)


class Recorder:
    """Plays a scripted sequence of answers and records the requests and the sleeps."""

    def __init__(self, answers: list[httpx.Response | Exception]) -> None:
        self.answers: Iterator[httpx.Response | Exception] = iter(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, *, random: Callable[[], float] = lambda: 1.0, max_retries: int = 4) -> Client:
        policy = RetryPolicy(
            max_retries=max_retries,
            backoff_base=0.5,
            backoff_max=8.0,
            random=random,
            wall_clock=lambda: 1_000_000.0,
        )
        return Client(
            "http://api.test",
            "vps_token",
            transport=httpx.MockTransport(self.handler),
            sleep=self.sleeps.append,
            retry_policy=policy,
        )


def test_503_twice_then_200_is_retried_with_growing_backoff() -> None:
    recorder = Recorder(
        [_error(503, "service_unavailable")] * 2 + [httpx.Response(200, json=LOCATIONS)]
    )
    locations = recorder.client().locations.list()
    assert [location.code for location in locations] == ["us-west"]
    assert len(recorder.requests) == 3
    # random() == 1.0: the full ceiling, 0.5 then 1.0.
    assert recorder.sleeps == [0.5, 1.0]


def test_502_and_504_are_retried_too() -> None:
    recorder = Recorder(
        [
            _error(502, "bad_gateway"),
            _error(504, "gateway_timeout"),
            httpx.Response(200, json=LOCATIONS),
        ]
    )
    recorder.client().locations.list()
    assert len(recorder.requests) == 3


def test_429_waits_for_retry_after_in_seconds() -> None:
    recorder = Recorder(
        [_error(429, "rate_limited", {"Retry-After": "7"}), httpx.Response(200, json=LOCATIONS)]
    )
    recorder.client().locations.list()
    assert recorder.sleeps == [7.0]


def test_429_waits_for_retry_after_as_an_http_date() -> None:
    in_twelve_seconds = email.utils.formatdate(1_000_012.0, usegmt=True)
    recorder = Recorder(
        [
            _error(429, "rate_limited", {"Retry-After": in_twelve_seconds}),
            httpx.Response(200, json=LOCATIONS),
        ]
    )
    recorder.client().locations.list()
    assert recorder.sleeps == [12.0]


def test_429_without_retry_after_uses_the_ratelimit_field() -> None:
    recorder = Recorder(
        [
            _error(429, "rate_limited", {"RateLimit": '"minute";r=0;t=42'}),
            httpx.Response(200, json=LOCATIONS),
        ]
    )
    recorder.client().locations.list()
    assert recorder.sleeps == [42.0]


def test_429_that_persists_raises_rate_limited_with_retry_after() -> None:
    recorder = Recorder([_error(429, "rate_limited", {"Retry-After": "3"})] * 3)
    with pytest.raises(RateLimited) as caught:
        recorder.client(max_retries=2).locations.list()
    assert caught.value.retry_after == 3.0
    assert caught.value.status == 429
    assert caught.value.request_id == "req-1"
    assert len(recorder.requests) == 3
    assert recorder.sleeps == [3.0, 3.0]


def test_too_many_streams_is_not_retried() -> None:
    """Waiting frees no stream: only closing one of the caller's own does."""
    recorder = Recorder([_error(429, "too_many_streams", {"Retry-After": "5"})])
    with pytest.raises(RateLimited) as caught:
        recorder.client().locations.list()
    assert caught.value.code == "too_many_streams"
    assert len(recorder.requests) == 1
    assert recorder.sleeps == []


def test_a_full_location_is_not_retried() -> None:
    """Capacity comes back when servers go or hosts are added, not within a retry's wait."""
    recorder = Recorder([_error(503, "location_full")])
    with pytest.raises(LocationFull) as caught:
        recorder.client().locations.list()
    assert isinstance(caught.value, ServerError) and caught.value.status == 503
    assert len(recorder.requests) == 1
    assert recorder.sleeps == []


def test_a_very_long_retry_after_is_not_slept_through() -> None:
    recorder = Recorder([_error(429, "rate_limited", {"Retry-After": "3600"})])
    with pytest.raises(RateLimited) as caught:
        recorder.client().locations.list()
    assert caught.value.retry_after == 3600.0
    assert recorder.sleeps == []


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "invalid_parameters", BadRequest),
        (402, "insufficient_credits", InsufficientCredits),
        (500, "internal_error", ServerError),
    ],
)
def test_other_errors_are_never_retried(status: int, code: str, expected: type[ApiError]) -> None:
    recorder = Recorder([_error(status, code, required="24.00", available="0.00")])
    with pytest.raises(expected) as caught:
        recorder.client().locations.list()
    assert len(recorder.requests) == 1
    assert recorder.sleeps == []
    assert caught.value.status == status
    if isinstance(caught.value, InsufficientCredits):
        assert caught.value.required == Decimal("24.00")
        assert caught.value.available == Decimal("0.00")


def test_every_retry_of_a_post_carries_the_same_idempotency_key() -> None:
    recorder = Recorder(
        [
            _error(503, "service_unavailable"),
            httpx.ConnectError("refused"),
            httpx.Response(201, json=SSH_KEY),
        ]
    )
    key = recorder.client().ssh_keys.create(name="laptop", public_key="ssh-ed25519 AAAA")
    assert key.id == 7
    sent = [request.headers.get("idempotency-key") for request in recorder.requests]
    assert len(sent) == 3
    assert sent[0] is not None and len(sent[0]) == 36
    assert sent == [sent[0]] * 3
    # Each request carried the same body, too.
    assert {request.content for request in recorder.requests} == {recorder.requests[0].content}


def test_each_post_call_gets_its_own_key_and_a_callers_key_is_kept() -> None:
    recorder = Recorder([httpx.Response(201, json=SSH_KEY)] * 3)
    client = recorder.client()
    client.ssh_keys.create(name="a", public_key="k")
    client.ssh_keys.create(name="a", public_key="k")
    client.ssh_keys.create(name="a", public_key="k", idempotency_key="mine-1")
    keys = [request.headers["idempotency-key"] for request in recorder.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "mine-1"


def test_gets_carry_no_idempotency_key() -> None:
    recorder = Recorder([httpx.Response(200, json=LOCATIONS)])
    recorder.client().locations.list()
    assert "idempotency-key" not in recorder.requests[0].headers


def test_connection_errors_are_retried_then_raise_connection_failed() -> None:
    recorder = Recorder([httpx.ConnectError("refused")] * 5)
    with pytest.raises(ConnectionFailed):
        recorder.client().locations.list()
    assert len(recorder.requests) == 5  # the first try and max_retries == 4 retries
    assert len(recorder.sleeps) == 4


def test_a_read_timeout_is_not_retried() -> None:
    # The request may have been processed: only failures to connect are retried.
    recorder = Recorder([httpx.ReadTimeout("slow")])
    with pytest.raises(ConnectionFailed):
        recorder.client().locations.list()
    assert len(recorder.requests) == 1


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    draws = iter([0.0, 0.25, 0.999])
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8.0, random=lambda: next(draws))
    assert policy.backoff(0) == 0.0
    assert policy.backoff(2) == pytest.approx(0.25 * 2.0)
    assert policy.backoff(3) == pytest.approx(0.999 * 4.0)


def test_backoff_is_capped_at_backoff_max() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8.0, random=lambda: 1.0)
    assert [policy.backoff(attempt) for attempt in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]


def test_jitter_uses_real_randomness_within_bounds() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8.0)
    delays = [policy.backoff(5) for _ in range(500)]
    assert all(0.0 <= delay <= 8.0 for delay in delays)
    assert max(delays) - min(delays) > 1.0  # spread, not a constant


def test_retry_after_parsing() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "5"}), 0.0) == 5.0
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"}), 0.0) is None
    past = email.utils.formatdate(10.0, usegmt=True)
    assert retry_after_seconds(httpx.Headers({"Retry-After": past}), 100.0) == 0.0
    assert ratelimit_reset_seconds(httpx.Headers({"RateLimit": '"minute";r=5;t=42'})) is None
    assert ratelimit_reset_seconds(httpx.Headers({"RateLimit": '"hour";r=0;t=900'})) == 900.0
