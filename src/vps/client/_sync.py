"""The synchronous client: `Client`, which performs the shared requests and flows
(`_resources`, `_flows`) with blocking I/O."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from typing import Any, Self, TypeVar

import httpx

from vps.client import _core
from vps.client._flows import (
    Call,
    Close,
    Done,
    Drain,
    Emit,
    ItemFlow,
    ReadText,
    RunnerBase,
    Sleep,
    Step,
    SyncRunner,
    Transmit,
    Work,
    advance,
)
from vps.client._resources import ClientGroups, EventFeed, FeedReader, ServersApi
from vps.client.models import Event, Server

T = TypeVar("T")
Y = TypeVar("Y")
R = TypeVar("R")


class _Runner(RunnerBase[httpx.Client, Callable[[float], None]]):
    """Performs the steps of requests and flows with blocking I/O."""

    def run(self, work: Work[T]) -> T:
        if isinstance(work, Call):
            return work.parse(self.run(self.transfer(work)))
        step = advance(work)
        while not isinstance(step, Done):
            step = self._resume(work, step)
        return step.value

    def iterate(self, flow: ItemFlow[T]) -> Iterator[T]:
        step = advance(flow)
        while not isinstance(step, Done):
            if isinstance(step, Emit):
                yield step.value
                step = advance(flow)
            else:
                step = self._resume(flow, step)

    def stream(self, feed: EventFeed) -> EventStream:
        return EventStream(self, feed)

    def _resume(self, flow: Generator[Y, Any, R], step: Step) -> Y | Done[R]:
        """Perform `step` and hand its result, or its exception, back to `flow`."""
        try:
            result = self._perform(step)
        except BaseException as error:
            return advance(flow, error=error)
        return advance(flow, value=result)

    def _perform(self, step: Step) -> object:
        match step:
            case Call():
                return self.run(step)
            case Sleep(seconds):
                self.sleep(seconds)
            case Transmit(request, stream):
                return self.http.send(request, stream=stream)
            case Drain(response):
                response.read()
                response.close()
            case Close(response):
                response.close()
            case ReadText(subscription):
                if not isinstance(subscription.reader, Iterator):
                    subscription.reader = subscription.response.iter_text()
                return next(subscription.reader, None)
        return None


class _Closing:
    """`with` closes."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EventStream(_Closing, FeedReader[_Runner], Iterator[Event]):
    """An event stream, subscribed as soon as it is created (no change after that is
    missed), reopened after each drop with the last event id seen (`Last-Event-ID`).

    A `reset` event means events were lost (kept no longer): read the state again. A
    server's stream ends after its deletion; the account's runs until `close()`. Use it as
    a context manager, or close it, to release its connection.
    """

    def __init__(self, runner: _Runner, feed: EventFeed) -> None:
        super().__init__(runner, feed)
        runner.run(feed.open())

    def __next__(self) -> Event:
        event = self._runner.run(self._feed.next())
        if event is None:
            raise StopIteration
        return event

    def close(self) -> None:
        self._runner.run(self._feed.close())


#: `client.servers` of a Client.
Servers = ServersApi[SyncRunner, Server]


class Client(_Closing, ClientGroups[SyncRunner, Server]):
    """A client of the VPS.org Servers API.

    `base_url` and `token` default to the `VPS_API_URL` and `VPS_TOKEN` environment
    variables. Every request is retried on connection failures, 429, 502, 503 and 504
    (at most `max_retries` times, capped exponential backoff with full jitter, honouring
    `Retry-After`); every POST carries an idempotency key, the same on each retry.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        user_agent: str = _core.DEFAULT_USER_AGENT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        retry_policy: _core.RetryPolicy | None = None,
    ) -> None:
        settings = _core.resolve_settings(base_url, token, timeout, user_agent)
        policy = retry_policy or _core.RetryPolicy(max_retries, backoff_base, backoff_max)
        self.base_url = settings.base_url
        self._httpx = httpx.Client(transport=transport, **_core.httpx_options(settings))
        super().__init__(_Runner(self._httpx, policy, sleep, clock), Server)

    def close(self) -> None:
        self._httpx.close()
