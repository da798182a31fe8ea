"""Typed exceptions for every way a call to the API can go wrong.

`ApiError` and its subclasses come from an HTTP answer and carry the API's error object;
the others (`ConfigurationError`, `ConnectionFailed`, `WaitTimeout`, `WaitFailed`) are the
client's own. Everything derives from `VpsError`, so one `except VpsError` catches all.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from vps.client.models import Action, ErrorInfo, ServerBase

__all__ = [
    "ApiError",
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "IdempotencyKeyReused",
    "InsufficientCredits",
    "InvalidState",
    "NotFound",
    "PreconditionFailed",
    "RateLimited",
    "ServerError",
    "Unauthenticated",
    "VpsError",
    "WaitFailed",
    "WaitTimeout",
    "error_from_response",
]


class VpsError(Exception):
    """Base of every exception the client raises."""


class ConfigurationError(VpsError):
    """The client cannot be built as asked (no token, say)."""


class ConnectionFailed(VpsError):
    """The API could not be reached, or the connection broke, after the allowed retries."""


class ApiError(VpsError):
    """The API answered with an error status.

    `details` is the whole JSON body of the answer (`{"error": {...}}`), or `{}` when the
    body was not JSON; `code` and `message` come from it.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details: dict[str, Any] = details or {}
        self.headers = headers if headers is not None else httpx.Headers()

    @property
    def error(self) -> dict[str, Any]:
        """The error object itself (the `error` member of the body)."""
        inner = self.details.get("error")
        return inner if isinstance(inner, dict) else {}


class BadRequest(ApiError):
    """400: invalid parameters or body. `field` names the first offending field, if any."""

    @property
    def fields(self) -> list[dict[str, str]]:
        fields = self.error.get("fields")
        return [item for item in fields if isinstance(item, dict)] if fields else []

    @property
    def field(self) -> str | None:
        fields = self.fields
        return str(fields[0].get("field")) if fields else None


class InvalidState(BadRequest):
    """400 `invalid_state`: the action is not allowed in the server's current status."""

    @property
    def current_status(self) -> str | None:
        value = self.error.get("current_status")
        return str(value) if value is not None else None


class Unauthenticated(ApiError):
    """401: missing, malformed, unknown, revoked or expired token."""


class InsufficientCredits(ApiError):
    """402: the account cannot pay; `required` and `available` are the amounts."""

    @property
    def required(self) -> Decimal | None:
        return _decimal(self.error.get("required"))

    @property
    def available(self) -> Decimal | None:
        return _decimal(self.error.get("available"))


class Forbidden(ApiError):
    """403: the token may not do this (a read-only token asked to write)."""


class NotFound(ApiError):
    """404: unknown id, another account's id, or a deleted server."""


class Conflict(ApiError):
    """409: a duplicate (SSH key), or a request with the same idempotency key still running."""


class PreconditionFailed(ApiError):
    """412: `If-Match` named an old version; `current_etag` is the current one."""

    @property
    def current_etag(self) -> str | None:
        etag: str | None = self.headers.get("etag")
        return etag


class IdempotencyKeyReused(ApiError):
    """422: the idempotency key was already used for a different request."""


class RateLimited(ApiError):
    """429, still, after the allowed retries; `retry_after` is in seconds, when known."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the service failed; `request_id` identifies the failure to its operators."""


class LocationFull(ServerError):
    """503 `location_full`: no hypervisor host of the location has room for the plan.
    Nothing was charged; try another location or a smaller plan (not retried by itself)."""


class WaitTimeout(VpsError):
    """The deadline passed before the server or action got where it was awaited.

    `last` is the last state seen (a server or an action), or None if none was read.
    """

    def __init__(self, message: str, last: ServerBase | Action | None) -> None:
        super().__init__(message)
        self.last = last


class WaitFailed(VpsError):
    """The server settled in a stable status other than the awaited one (`error`, say).

    `server` is the server as last seen and `error` its error (code and message), if any.
    """

    def __init__(self, message: str, server: ServerBase) -> None:
        super().__init__(message)
        self.server = server

    @property
    def status(self) -> str:
        return self.server.status

    @property
    def error(self) -> ErrorInfo | None:
        return self.server.error


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


_CLASS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthenticated,
    402: InsufficientCredits,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    422: IdempotencyKeyReused,
    429: RateLimited,
}


def error_from_response(response: httpx.Response, *, retry_after: float | None = None) -> ApiError:
    """The typed exception for an error answer (its body must have been read)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    details: dict[str, Any] = body if isinstance(body, dict) else {}
    inner = details.get("error")
    error: dict[str, Any] = inner if isinstance(inner, dict) else {}
    status = response.status_code
    code = str(error.get("code") or f"http_{status}")
    message = str(error.get("message") or response.reason_phrase or "HTTP error")
    request_id = error.get("request_id") or response.headers.get("x-request-id")
    if status == 400 and code == "invalid_state":
        cls: type[ApiError] = InvalidState
    elif code == "location_full":
        cls = LocationFull
    elif status >= 500:
        cls = ServerError
    else:
        cls = _CLASS_BY_STATUS.get(status, ApiError)
    arguments: dict[str, Any] = {
        "request_id": str(request_id) if request_id is not None else None,
        "details": details,
        "headers": response.headers,
    }
    if cls is RateLimited:
        return RateLimited(status, code, message, retry_after=retry_after, **arguments)
    return cls(status, code, message, **arguments)
