"""The I/O-free half of the clients: request specs, flows, and the descriptors that turn one
description of an endpoint into a method of both the sync and the async resource groups.

A `Call` describes one request (method, path, params, body, headers) and how to parse its
answer. A flow is a generator that yields I/O steps (`Call`, `Sleep`, `Transmit`, `Drain`,
`ReadText`, `Close`) and gets their results (or their exceptions) back: the retry loop,
`wait_until` and the event-stream reconnection are written once as flows, and each client
only performs the steps (blocking in `_sync`, with `await` in `_async`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    Self,
    TypeAlias,
    TypeVar,
    overload,
)

import httpx

from vps.client import _core
from vps.client.errors import ConnectionFailed, error_from_response
from vps.client.sse import Comment, ServerSentEvent, SSEDecoder

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to the API and how its answer becomes a result. Made once per call, so
    a POST's idempotency key (in `headers`) is the same on each retry."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds; for a stream, the read timeout (the client's connect timeout is kept).
    timeout: float | None = None
    #: Keep the answer open (an event stream); the caller closes it.
    stream: bool = False


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Transmit:
    """Send a built request once, without retries; its result is the raw answer."""

    request: httpx.Request
    stream: bool


@dataclass(frozen=True)
class Drain:
    """Read the rest of an open answer and close it (an error answer of a stream)."""

    response: httpx.Response


@dataclass(frozen=True)
class Close:
    response: httpx.Response


@dataclass
class Subscription:
    """An open event stream: its answer, its SSE decoder, and the chunk reader that the
    performing client attaches at the first `ReadText`."""

    response: httpx.Response
    decoder: SSEDecoder = field(default_factory=SSEDecoder)
    reader: object = None
    pending: list[ServerSentEvent | Comment] = field(default_factory=list)


@dataclass(frozen=True)
class ReadText:
    """The next chunk of text of a stream; None at its end."""

    subscription: Subscription


@dataclass(frozen=True)
class Emit(Generic[T]):
    """One result of a flow that yields several (`client.servers.iterate`)."""

    value: T


Step: TypeAlias = Call[Any] | Sleep | Transmit | Drain | Close | ReadText
#: A computation that yields steps, is sent their results, and returns a `T`.
Flow: TypeAlias = Generator[Step, Any, T]
#: A computation that yields steps and, in between, results.
ItemFlow: TypeAlias = Generator[Step | Emit[T], Any, None]
Work: TypeAlias = Call[T] | Flow[T]
Y = TypeVar("Y")
R = TypeVar("R")


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T


def advance(
    flow: Generator[Y, Any, R], *, value: object = None, error: BaseException | None = None
) -> Y | Done[R]:
    """Resume `flow` with a step's result (or its exception): what it yields next, or
    Done with what it returned."""
    try:
        if error is not None:
            return flow.throw(error)
        return flow.send(value)
    except StopIteration as stop:
        result: R = stop.value
        return Done(result)


def retrying(
    request: httpx.Request, stream: bool, policy: _core.RetryPolicy
) -> Flow[httpx.Response]:
    """The one retry loop: connection failures, 429, 502, 503 and 504 are retried as the
    policy decides; other error answers become typed exceptions."""
    attempt = 0
    while True:
        try:
            response: httpx.Response = yield Transmit(request, stream)
        except _core.CONNECT_ERRORS as error:
            decision = policy.after_connect_error(attempt)
            if not decision.retry:
                raise ConnectionFailed(
                    f"Cannot reach {request.url.scheme}://{request.url.netloc.decode()}: {error}"
                ) from error
        except httpx.TransportError as error:
            raise ConnectionFailed(f"{request.method} {request.url.path}: {error}") from error
        else:
            if response.is_success:
                return response
            if stream:
                yield Drain(response)
            decision = policy.after_response(response, attempt)
            if not decision.retry:
                raise error_from_response(response, retry_after=decision.retry_after)
        yield Sleep(decision.delay)
        attempt += 1


def read_item(subscription: Subscription) -> Flow[ServerSentEvent | Comment | None]:
    """The next message or comment of a stream; None at its end (TransportError if it
    drops)."""
    while not subscription.pending:
        text: str | None = yield ReadText(subscription)
        if text is None:
            return None
        subscription.pending.extend(subscription.decoder.feed(text))
    return subscription.pending.pop(0)


def build_request(http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
    timeout: float | httpx.Timeout | Any = httpx.USE_CLIENT_DEFAULT
    if call.stream:
        timeout = httpx.Timeout(call.timeout, connect=http.timeout.connect)
    elif call.timeout is not None:
        timeout = call.timeout
    return http.build_request(
        call.method,
        _core.API_PREFIX + call.path,
        params=call.params,
        json=call.json,
        headers=call.headers,
        timeout=timeout,
    )


HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
SleepT = TypeVar("SleepT")


class RunnerBase(Generic[HttpT, SleepT]):
    """What a client's runner holds; `_sync` and `_async` add how it performs steps."""

    def __init__(
        self, http: HttpT, policy: _core.RetryPolicy, sleep: SleepT, clock: Callable[[], float]
    ) -> None:
        self.http: HttpT = http
        self.policy = policy
        self.sleep = sleep
        self.clock = clock

    def transfer(self, call: Call[Any]) -> Flow[httpx.Response]:
        """The flow that sends `call` with the retry policy."""
        return retrying(build_request(self.http, call), call.stream, self.policy)


class Runner(Protocol):
    """What the resource groups need of a client: its clock and retry policy."""

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def policy(self) -> _core.RetryPolicy: ...


class SyncRunner(Runner, Protocol):
    """A `Client`'s way to perform work: blocking."""

    def run(self, work: Work[T]) -> T: ...

    def iterate(self, flow: ItemFlow[T]) -> Iterator[T]: ...

    def stream(self, feed: EventFeed) -> EventStream: ...


class AsyncRunner(Runner, Protocol):
    """An `AsyncClient`'s way to perform work: with coroutines."""

    async def run(self, work: Work[T]) -> T: ...

    def iterate(self, flow: ItemFlow[T]) -> AsyncIterator[T]: ...

    def stream(self, feed: EventFeed) -> AsyncEventStream: ...


RunnerT = TypeVar("RunnerT", bound=Runner)


class Group(Generic[RunnerT]):
    """A resource group (`client.servers`, ...), described once for both clients: a
    `Group[SyncRunner]` has blocking methods, a `Group[AsyncRunner]` coroutine ones."""

    def __init__(self, runner: RunnerT) -> None:
        self._runner = runner


GroupT = TypeVar("GroupT", bound=Group[Any])


W = TypeVar("W")


class _GroupMethod(Generic[GroupT, P, W]):
    """A group method described by what it does (`W`: a `Call`, a flow, a feed), which
    the group's runner performs in its own way: see the subclasses."""

    #: The runner's method that performs what the description returns.
    performer: ClassVar[str]

    def __init__(self, build: Callable[Concatenate[GroupT, P], W]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        # What `help()` and editors show of the method: the description, without `self`.
        signature = inspect.signature(build)
        self._signature = signature.replace(
            parameters=list(signature.parameters.values())[1:],
            return_annotation=inspect.Signature.empty,
        )

    def _bind(self, group: GroupT | None) -> Any:
        if group is None:
            return self
        build, perform = self.build, getattr(group._runner, self.performer)

        async def coroutine(*args: P.args, **kwargs: P.kwargs) -> Any:
            return await perform(build(group, *args, **kwargs))

        def function(*args: P.args, **kwargs: P.kwargs) -> Any:
            return perform(build(group, *args, **kwargs))

        # An async runner's methods are coroutine functions, as if written `async def`.
        method: Any = coroutine if inspect.iscoroutinefunction(perform) else function
        method.__signature__ = self._signature
        method.__name__ = build.__name__
        method.__qualname__ = f"{type(group).__name__}.{build.__name__}"
        method.__doc__ = self.__doc__
        return method


class endpoint(_GroupMethod[GroupT, P, Work[T]]):  # noqa: N801 (a decorator, like property)
    """A group method described by the `Call` or flow it runs: a plain method of a sync
    group, a coroutine method of an async group."""

    performer = "run"

    @overload
    def __get__(self, group: None, owner: type) -> Self: ...
    @overload
    def __get__(self, group: Group[SyncRunner], owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, group: Group[AsyncRunner], owner: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, group: Any, owner: type) -> Any:
        return self._bind(group)


class items(_GroupMethod[GroupT, P, ItemFlow[T]]):  # noqa: N801 (a decorator, like property)
    """A group method described by a flow that yields several results: an iterator of a
    sync group, an async iterator of an async group (lazy: nothing is sent before the
    first item is asked for)."""

    performer = "iterate"

    @overload
    def __get__(self, group: None, owner: type) -> Self: ...
    @overload
    def __get__(self, group: Group[SyncRunner], owner: type) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, group: Group[AsyncRunner], owner: type) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, group: Any, owner: type) -> Any:
        return self._bind(group)


class event_stream(_GroupMethod[GroupT, P, "EventFeed"]):  # noqa: N801 (a decorator, like property)
    """A group method described by the `EventFeed` it follows: an `EventStream` of a sync
    group, an `AsyncEventStream` of an async group."""

    performer = "stream"

    @overload
    def __get__(self, group: None, owner: type) -> Self: ...
    @overload
    def __get__(self, group: Group[SyncRunner], owner: type) -> Callable[P, EventStream]: ...
    @overload
    def __get__(self, group: Group[AsyncRunner], owner: type) -> Callable[P, AsyncEventStream]: ...
    def __get__(self, group: Any, owner: type) -> Any:
        return self._bind(group)


if TYPE_CHECKING:
    from vps.client._async import AsyncEventStream
    from vps.client._resources import EventFeed
    from vps.client._sync import EventStream
