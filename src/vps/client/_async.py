"""The asynchronous client: `AsyncClient`, `Client`'s interface with coroutines and async
iterators; it performs the shared requests and flows (`_resources`, `_flows`) with await."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Self, TypeVar

import httpx

from vps.client import _core
from vps.client._flows import (
    AsyncRunner,
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
    Transmit,
    Work,
    advance,
)
from vps.client._resources import ClientGroups, EventFeed, FeedReader, ServersApi
from vps.client.models import AsyncServer, Event

T = TypeVar("T")
Y = TypeVar("Y")
R = TypeVar("R")


class _Runner(RunnerBase[httpx.AsyncClient, Callable[[float], Awaitable[None]]]):
    """Performs the steps of requests and flows with asyncio I/O."""

    async def run(self, work: Work[T]) -> T:
        if isinstance(work, Call):
            return work.parse(await self.run(self.transfer(work)))
        step = advance(work)
        while not isinstance(step, Done):
            step = await self._resume(work, step)
        return step.value

    async def iterate(self, flow: ItemFlow[T]) -> AsyncIterator[T]:
        step = advance(flow)
        while not isinstance(step, Done):
            if isinstance(step, Emit):
                yield step.value
                step = advance(flow)
            else:
                step = await self._resume(flow, step)

    def stream(self, feed: EventFeed) -> AsyncEventStream:
        return AsyncEventStream(self, feed)

    async def _resume(self, flow: Generator[Y, Any, R], step: Step) -> Y | Done[R]:
        """Perform `step` and hand its result, or its exception, back to `flow`."""
        try:
            result = await self._perform(step)
        except BaseException as error:
            return advance(flow, error=error)
        return advance(flow, value=result)

    async def _perform(self, step: Step) -> object:
        match step:
            case Call():
                return await self.run(step)
            case Sleep(seconds):
                await self.sleep(seconds)
            case Transmit(request, stream):
                return await self.http.send(request, stream=stream)
            case Drain(response):
                await response.aread()
                await response.aclose()
            case Close(response):
                await response.aclose()
            case ReadText(subscription):
                if not isinstance(subscription.reader, AsyncIterator):
                    subscription.reader = subscription.response.aiter_text()
                return await anext(subscription.reader, None)
        return None


class _Closing:
    """`async with` closes."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncEventStream(_Closing, FeedReader[_Runner], AsyncIterator[Event]):
    """An event stream, reopened after each drop with the last event id seen
    (`Last-Event-ID`). It subscribes at `async with` (no change after that is missed), or
    else at the first iteration.

    A `reset` event means events were lost (kept no longer): read the state again. A
    server's stream ends after its deletion; the account's runs until `close()`.
    """

    async def open(self) -> None:
        """Subscribe now (done by `async with`, or by the first iteration)."""
        await self._runner.run(self._feed.open())

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __anext__(self) -> Event:
        event = await self._runner.run(self._feed.next())
        if event is None:
            raise StopAsyncIteration
        return event

    async def close(self) -> None:
        await self._runner.run(self._feed.close())


#: `client.servers` of an AsyncClient.
AsyncServers = ServersApi[AsyncRunner, AsyncServer]


class AsyncClient(_Closing, ClientGroups[AsyncRunner, AsyncServer]):
    """An asyncio client of the VPS.org Servers API: `Client`'s interface, with coroutines
    (`await client.servers.get(1)`) and async iterators (`async for event in ...`).
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
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        retry_policy: _core.RetryPolicy | None = None,
    ) -> None:
        settings = _core.resolve_settings(base_url, token, timeout, user_agent)
        policy = retry_policy or _core.RetryPolicy(max_retries, backoff_base, backoff_max)
        self.base_url = settings.base_url
        self._httpx = httpx.AsyncClient(transport=transport, **_core.httpx_options(settings))
        super().__init__(_Runner(self._httpx, policy, sleep, clock), AsyncServer)

    async def close(self) -> None:
        await self._httpx.aclose()
