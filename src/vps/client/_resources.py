"""Every endpoint, described once: the resource groups that `Client` and `AsyncClient`
share, the flows of `wait_until` and `actions.wait`, and the event-stream reconnection.

The groups are generic in their runner: `Client` makes them with a blocking one (so their
methods block), `AsyncClient` with an asyncio one (so they are coroutines), each with its
bound Server model. `ClientGroups` is what both clients are made of.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from vps.client import _core
from vps.client._core import UNSET, Unset
from vps.client._flows import (
    Call,
    Close,
    Emit,
    Flow,
    Group,
    ItemFlow,
    RunnerT,
    Sleep,
    Subscription,
    endpoint,
    event_stream,
    items,
    read_item,
)
from vps.client.errors import (
    ApiError,
    BadRequest,
    ConnectionFailed,
    NotFound,
    WaitTimeout,
)
from vps.client.models import (
    Account,
    Action,
    AuditEvent,
    Event,
    Location,
    OperatingSystem,
    Page,
    Plan,
    ServerBase,
    SshKey,
    Transaction,
)
from vps.client.sse import Comment

ModelT = TypeVar("ModelT", bound=BaseModel)
ServerT = TypeVar("ServerT", bound=ServerBase)

#: How a wait on a server's stream ended when it did not end the wait.
_STREAM_UNAVAILABLE = "unavailable"
_STREAM_DROPPED = "dropped"
_STREAM_RENEW = "renew"


def _response(response: httpx.Response) -> httpx.Response:
    return response


def _model(model: type[ModelT]) -> Callable[[httpx.Response], ModelT]:
    """A parser of an answer holding one `model`."""
    return lambda response: model.model_validate(response.json())


def _page_of(model: type[ModelT]) -> Callable[[httpx.Response], Page[ModelT]]:
    return lambda response: Page[model].model_validate(response.json())  # type: ignore[valid-type]


def _paged(
    path: str, model: type[ModelT], page: int | None, page_size: int | None
) -> Call[Page[ModelT]]:
    return Call("GET", path, _page_of(model), params=_core.query(page=page, page_size=page_size))


def _get_action(action_id: int) -> Call[Action]:
    return Call("GET", f"/actions/{action_id}/", _model(Action))


def _is_event_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


def _open_stream(path: str, last_event_id: str | None, read_timeout: float) -> Call[httpx.Response]:
    """An open `text/event-stream` answer; the flow closes it."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    return Call("GET", path, _response, headers=headers, timeout=read_timeout, stream=True)


class ServersApi(Group[RunnerT], Generic[RunnerT, ServerT]):
    """`client.servers`: the account's servers."""

    def __init__(self, runner: RunnerT, model: type[ServerT]) -> None:
        super().__init__(runner)
        #: The Server model that this group's answers are bound to.
        self._server_model = model

    def _bind(self, payload: Any) -> ServerT:
        server = self._server_model.model_validate(payload)
        server._servers = self
        return server

    def _server_call(self, method: str, path: str, **options: Any) -> Call[ServerT]:
        return Call(
            method, path, lambda response: self._bind(_core.server_payload(response)), **options
        )

    def _list(
        self, status: str | None, location: str | None, page: int | None, page_size: int | None
    ) -> Call[Page[ServerT]]:
        def parse(response: httpx.Response) -> Page[ServerT]:
            body = response.json()
            results = [self._bind(item) for item in body.get("results", [])]
            return Page[self._server_model].model_validate({**body, "results": results})  # type: ignore[name-defined]

        params = _core.query(status=status, location=location, page=page, page_size=page_size)
        return Call("GET", "/servers/", parse, params=params)

    @endpoint
    def list(
        self,
        *,
        status: str | None = None,
        location: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> Call[Page[ServerT]]:
        return self._list(status, location, page, page_size)

    @items
    def iterate(
        self, *, status: str | None = None, location: str | None = None, page_size: int = 100
    ) -> ItemFlow[ServerT]:
        """Every server, page after page (by number, so a server created meanwhile may
        shift one into the next page: ids already seen are skipped)."""
        seen: set[int] = set()
        page_number = 1
        while True:
            page: Page[ServerT] = yield self._list(status, location, page_number, page_size)
            for server in page.results:
                if server.id not in seen:
                    seen.add(server.id)
                    yield Emit(server)
            if page.next is None or not page.results:
                return
            page_number += 1

    def _get(self, server_id: int) -> Call[ServerT]:
        return self._server_call("GET", f"/servers/{server_id}/")

    @endpoint
    def get(self, server_id: int) -> Call[ServerT]:
        return self._get(server_id)

    @endpoint
    def create(
        self,
        *,
        name: str,
        plan_id: int,
        os_id: int,
        location: str,
        hostname: str | None = None,
        ssh_key_id: int | None = None,
        backups_enabled: bool = False,
        idempotency_key: str | None = None,
    ) -> Call[ServerT]:
        body: dict[str, Any] = {
            "name": name,
            "plan_id": plan_id,
            "os_id": os_id,
            "location": location,
            "backups_enabled": backups_enabled,
        }
        if hostname is not None:
            body["hostname"] = hostname
        if ssh_key_id is not None:
            body["ssh_key_id"] = ssh_key_id
        headers = _core.request_headers("POST", idempotency_key=idempotency_key)
        return self._server_call("POST", "/servers/", json=body, headers=headers)

    @endpoint
    def update(
        self,
        server_id: int,
        *,
        name: str | Unset = UNSET,
        hostname: str | Unset | None = UNSET,
        backups_enabled: bool | Unset = UNSET,
        if_match: str | None = None,
    ) -> Call[ServerT]:
        """PATCH: only the fields passed are sent."""
        body = _core.patch_body(name=name, hostname=hostname, backups_enabled=backups_enabled)
        headers = _core.request_headers("PATCH", if_match=if_match)
        return self._server_call("PATCH", f"/servers/{server_id}/", json=body, headers=headers)

    @endpoint
    def replace(
        self,
        server_id: int,
        *,
        name: str,
        hostname: str,
        backups_enabled: bool,
        if_match: str | None = None,
    ) -> Call[ServerT]:
        """PUT: every changeable field (name, hostname, backups_enabled) is required."""
        body = {"name": name, "hostname": hostname, "backups_enabled": backups_enabled}
        headers = _core.request_headers("PUT", if_match=if_match)
        return self._server_call("PUT", f"/servers/{server_id}/", json=body, headers=headers)

    @endpoint
    def delete(self, server_id: int, *, if_match: str | None = None) -> Flow[Action]:
        """Delete the server (it is 404 from now on) and return the delete's action, which
        `client.actions.wait(action.id)` follows until the machine is destroyed."""
        headers = _core.request_headers("DELETE", if_match=if_match)
        response = yield Call("DELETE", f"/servers/{server_id}/", _response, headers=headers)
        action: Action = yield _get_action(_core.action_id_of(response))
        return action

    def _power(self, server_id: int, verb: str, idempotency_key: str | None) -> Flow[ServerT]:
        headers = _core.request_headers("POST", idempotency_key=idempotency_key)
        path = f"/servers/{server_id}/{verb}/"
        body = yield Call("POST", path, lambda response: response.json(), headers=headers)
        action = Action.model_validate(body["action"])
        # The answer carries only the server's id, name and status: read the whole server.
        server: ServerT = yield self._get(server_id)
        return server.model_copy(update={"action": action, "message": body.get("message")})

    @endpoint
    def start(self, server_id: int, *, idempotency_key: str | None = None) -> Flow[ServerT]:
        return self._power(server_id, "start", idempotency_key)

    @endpoint
    def stop(self, server_id: int, *, idempotency_key: str | None = None) -> Flow[ServerT]:
        return self._power(server_id, "stop", idempotency_key)

    @endpoint
    def reboot(self, server_id: int, *, idempotency_key: str | None = None) -> Flow[ServerT]:
        return self._power(server_id, "reboot", idempotency_key)

    @endpoint
    def actions(
        self, server_id: int, *, page: int | None = None, page_size: int | None = None
    ) -> Call[Page[Action]]:
        return _paged(f"/servers/{server_id}/actions/", Action, page, page_size)

    @event_stream
    def events(self, server_id: int, *, last_event_id: int | None = None) -> EventFeed:
        """The server's events (`EventStream`, `AsyncEventStream`); the iteration ends
        after its deletion. `last_event_id` resumes after that event. A sync stream is
        subscribed on return, an async one at `async with` or its first iteration."""
        path = f"/servers/{server_id}/events/"
        return EventFeed(path, last_event_id, True, self._runner.policy)

    @endpoint
    def wait_until(
        self,
        server_id: int,
        status: str,
        *,
        timeout: float = 300.0,
        initial: ServerT | None = None,
    ) -> Flow[ServerT]:
        """Wait until the server is in `status` and return it.

        Raises WaitFailed if it settles in another stable status (active, stopped, error,
        suspended), WaitTimeout at the deadline. Waiting for `deleted` ends when the server
        is gone (404), with the last server seen (status `deleted`). Follows the server's
        event stream; falls back to the long-poll, then to polling, where they fail.
        """
        progress = _core.WaitProgress(server_id, status, timeout, self._runner.clock, initial)
        clock = self._runner.clock
        mode = "stream"
        drops = 0
        poll_delay = _core.POLL_FIRST_DELAY
        while True:
            if progress.expired():
                raise progress.timed_out()
            if mode == "stream":
                outcome = yield from self._wait_on_stream(progress)
                if isinstance(outcome, ServerBase):
                    return outcome
                if outcome == _STREAM_UNAVAILABLE:
                    mode = "long-poll"
                elif outcome == _STREAM_DROPPED:
                    drops += 1
                    if drops > _core.STREAM_DROPS_LIMIT:
                        mode = "long-poll"
                continue
            if mode == "long-poll":
                wait = _core.long_poll_seconds(progress.remaining())
                started = clock()
                try:
                    server: ServerT = yield self._server_call(
                        "GET",
                        f"/servers/{server_id}/",
                        params={"wait_for": status, "wait": wait},
                        timeout=wait + _core.STREAM_SILENCE_LIMIT / 3,
                    )
                except NotFound as error:
                    return progress.gone(error)
                except BadRequest:
                    mode = "poll"
                    continue
                if progress.reached(server):
                    return server
                if clock() - started < min(wait, 2) / 2:
                    # It answered at once without a reason to: the API ignores `wait_for`.
                    mode = "poll"
                continue
            reached = yield from self._read(progress)
            if reached is not None:
                return reached
            yield Sleep(max(0.0, min(poll_delay, progress.remaining())))
            poll_delay = min(poll_delay * 2, _core.POLL_MAX_DELAY)

    def _read(self, progress: _core.WaitProgress[ServerT]) -> Flow[ServerT | None]:
        """Read the server: itself when the wait is over, None to wait on."""
        try:
            server: ServerT = yield self._get(progress.server_id)
        except NotFound as error:
            return progress.gone(error)
        return server if progress.reached(server) else None

    def _wait_on_stream(self, progress: _core.WaitProgress[ServerT]) -> Flow[ServerT | str]:
        read_timeout = max(0.01, min(progress.remaining(), _core.STREAM_SILENCE_LIMIT))
        path = f"/servers/{progress.server_id}/events/"
        try:
            response = yield _open_stream(path, progress.last_event_id, read_timeout)
        except (ApiError, ConnectionFailed):
            # Not found may mean a deleted server or an API without streams: the
            # long-poll's answer tells which.
            return _STREAM_UNAVAILABLE
        subscription = Subscription(response)
        try:
            if not _is_event_stream(response):
                return _STREAM_UNAVAILABLE
            # Subscribed: from now on no change is missed, so reading the server is safe.
            reached = yield from self._read(progress)
            if reached is not None:
                return reached
            try:
                while (item := (yield from read_item(subscription))) is not None:
                    if progress.expired():
                        raise progress.timed_out()
                    if isinstance(item, Comment):
                        remaining = progress.remaining()
                        if (
                            remaining < read_timeout - 1
                            and remaining < _core.STREAM_SILENCE_LIMIT / 3
                        ):
                            # Reopen with a read timeout that ends at the deadline.
                            return _STREAM_RENEW
                        continue
                    need = progress.needs_read(_core.event_from(item.event, item.id, item.data))
                    if need is None:
                        return progress.gone()
                    if need:
                        reached = yield from self._read(progress)
                        if reached is not None:
                            return reached
            except httpx.TransportError:
                if progress.expired():
                    raise progress.timed_out() from None
        finally:
            yield Close(response)
        retry = subscription.decoder.retry
        if retry is not None:
            yield Sleep(max(0.0, min(retry / 1000, progress.remaining())))
        return _STREAM_DROPPED


class ActionsApi(Group[RunnerT]):
    """`client.actions`: follow what create, the power actions and delete started."""

    def _get(self, action_id: int, wait: float | None) -> Call[Action]:
        if wait is None:
            return _get_action(action_id)
        seconds = _core.long_poll_seconds(wait)
        return Call(
            "GET",
            f"/actions/{action_id}/",
            _model(Action),
            params={"wait": seconds},
            timeout=seconds + _core.STREAM_SILENCE_LIMIT / 3,
        )

    @endpoint
    def get(self, action_id: int, *, wait: float | None = None) -> Call[Action]:
        """The action; with `wait` (seconds, up to 60) the API answers as soon as it is
        no longer running, or when the wait ends."""
        return self._get(action_id, wait)

    @endpoint
    def wait(self, action_id: int, *, timeout: float = 300.0) -> Flow[Action]:
        """Wait until the action is no longer running (succeeded or failed) and return it;
        WaitTimeout at the deadline. Long-polls in slices of at most 60 s."""
        clock = self._runner.clock
        deadline = clock() + timeout
        poll_delay = _core.POLL_FIRST_DELAY
        last: Action | None = None
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                raise WaitTimeout(f"Action {action_id} still running after {timeout:g} s.", last)
            started = clock()
            wait = _core.long_poll_seconds(remaining)
            action: Action = yield self._get(action_id, wait)
            last = action
            if action.done:
                return action
            if clock() - started < min(wait, 2) / 2:
                # Answered at once while running: an API without the long-poll. Poll.
                yield Sleep(max(0.0, min(poll_delay, deadline - clock())))
                poll_delay = min(poll_delay * 2, _core.POLL_MAX_DELAY)


class CatalogApi(Group[RunnerT], Generic[RunnerT, ModelT]):
    """`client.plans`, `client.operating_systems`, `client.locations`: what a server can
    be made of."""

    def __init__(self, runner: RunnerT, path: str, model: type[ModelT]) -> None:
        super().__init__(runner)
        self._path = path
        self._model = model

    @endpoint
    def list(self) -> Call[list[ModelT]]:
        model = self._model
        return Call(
            "GET",
            self._path,
            lambda response: [model.model_validate(item) for item in response.json()],
        )


class SshKeysApi(Group[RunnerT]):
    """`client.ssh_keys`: the account's SSH keys."""

    @endpoint
    def list(self, *, page: int | None = None, page_size: int | None = None) -> Call[Page[SshKey]]:
        return _paged("/ssh-keys/", SshKey, page, page_size)

    @endpoint
    def get(self, key_id: int) -> Call[SshKey]:
        return Call("GET", f"/ssh-keys/{key_id}/", _model(SshKey))

    @endpoint
    def create(
        self, *, name: str, public_key: str, idempotency_key: str | None = None
    ) -> Call[SshKey]:
        return Call(
            "POST",
            "/ssh-keys/",
            _model(SshKey),
            json={"name": name, "public_key": public_key},
            headers=_core.request_headers("POST", idempotency_key=idempotency_key),
        )

    @endpoint
    def delete(self, key_id: int) -> Call[None]:
        return Call("DELETE", f"/ssh-keys/{key_id}/", lambda response: None)


class AccountApi(Group[RunnerT]):
    """`client.account`: balance, ledger and audit log."""

    @endpoint
    def get(self) -> Call[Account]:
        return Call("GET", "/account/", _model(Account))

    @endpoint
    def transactions(
        self, *, page: int | None = None, page_size: int | None = None
    ) -> Call[Page[Transaction]]:
        return _paged("/account/transactions/", Transaction, page, page_size)

    @endpoint
    def audit_log(
        self, *, page: int | None = None, page_size: int | None = None
    ) -> Call[Page[AuditEvent]]:
        return _paged("/account/audit-log/", AuditEvent, page, page_size)


class EventFeed:
    """The state of an event stream, free of I/O: it subscribes, reads events, and after
    a drop reopens with the last event id seen (`Last-Event-ID`). `EventStream` and
    `AsyncEventStream` run its flows."""

    def __init__(
        self,
        path: str,
        last_event_id: int | None,
        ends_at_deletion: bool,
        policy: _core.RetryPolicy,
    ) -> None:
        self.path = path
        self.ends_at_deletion = ends_at_deletion
        self.policy = policy
        self.resume = str(last_event_id) if last_event_id is not None else None
        self.opened = False
        self.finished = False
        self._failures = 0
        self._subscription: Subscription | None = None
        self._retry: int | None = None

    @property
    def last_event_id(self) -> int | None:
        return int(self.resume) if self.resume and self.resume.isdigit() else None

    def open(self) -> Flow[None]:
        """Subscribe; connection failures are retried with backoff."""
        self.opened = True
        while True:
            try:
                response: httpx.Response = yield _open_stream(
                    self.path, self.resume, _core.STREAM_SILENCE_LIMIT
                )
            except ConnectionFailed:
                self._failures += 1
                if self._failures > self.policy.max_retries:
                    raise
                yield Sleep(self.policy.backoff(self._failures))
                continue
            if not _is_event_stream(response):
                yield Close(response)
                raise ApiError(
                    response.status_code,
                    "not_an_event_stream",
                    f"{self.path} did not answer an event stream.",
                    request_id=response.headers.get("x-request-id"),
                )
            self._subscription = Subscription(response)
            return

    def next(self) -> Flow[Event | None]:
        """The next event; None when the stream is over (closed, or the server deleted)."""
        if not self.opened:
            yield from self.open()
        while not self.finished:
            if self._subscription is None:
                yield from self._reopen()
                continue
            try:
                item = yield from read_item(self._subscription)
            except httpx.TransportError:
                self._failures += 1
                if self._failures > self.policy.max_retries:
                    yield from self.close()
                    raise ConnectionFailed(
                        f"The event stream {self.path} keeps dropping."
                    ) from None
                yield from self._disconnect()
                continue
            if item is None:
                yield from self._disconnect()
                continue
            if isinstance(item, Comment):
                continue
            self._failures = 0
            if item.id:
                self.resume = item.id
            event = _core.event_from(item.event, item.id, item.data)
            if (
                self.ends_at_deletion
                and event.type == "server.status"
                and event.status == "deleted"
            ):
                yield from self.close()
            return event
        return None

    def _reopen(self) -> Flow[None]:
        retry = self._retry
        yield Sleep(retry / 1000 if retry is not None else self.policy.backoff(0))
        yield from self.open()

    def _disconnect(self) -> Flow[None]:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            self._retry = subscription.decoder.retry
            yield Close(subscription.response)

    def close(self) -> Flow[None]:
        self.finished = True
        yield from self._disconnect()


class ClientGroups(Group[RunnerT], Generic[RunnerT, ServerT]):
    """The resource groups of a client, and the account's event stream."""

    def __init__(self, runner: RunnerT, server_model: type[ServerT]) -> None:
        super().__init__(runner)
        self.servers = ServersApi(runner, server_model)
        self.actions = ActionsApi(runner)
        self.plans = CatalogApi(runner, "/plans/", Plan)
        self.operating_systems = CatalogApi(runner, "/operating-systems/", OperatingSystem)
        self.locations = CatalogApi(runner, "/locations/", Location)
        self.ssh_keys = SshKeysApi(runner)
        self.account = AccountApi(runner)

    @event_stream
    def events(self, *, last_event_id: int | None = None) -> EventFeed:
        """The account's events as they happen (`EventStream`, `AsyncEventStream`);
        `last_event_id` resumes after that event. Runs until closed."""
        return EventFeed("/events/", last_event_id, False, self._runner.policy)


class FeedReader(Generic[RunnerT]):
    """What `EventStream` and `AsyncEventStream` share: a runner and the feed it reads."""

    def __init__(self, runner: RunnerT, feed: EventFeed) -> None:
        self._runner = runner
        self._feed = feed

    @property
    def last_event_id(self) -> int | None:
        """The id of the last event received: pass it to resume in another stream."""
        return self._feed.last_event_id
