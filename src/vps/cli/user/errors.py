"""One line per failure: what went wrong, what to do about it, and the request id.

The SDK's exceptions carry the API's error body; this module turns each kind into a
sentence a person can act on. Nothing here prints a traceback.
"""

from __future__ import annotations

from decimal import Decimal

from vps.client import (
    ApiError,
    BadRequest,
    ConnectionFailed,
    InsufficientCredits,
    InvalidState,
    NotFound,
    Unauthenticated,
)

LOGIN_HINT = "log in with `vps login` (or set VPS_TOKEN)"


def with_request_id(text: str, error: object) -> str:
    request_id = getattr(error, "request_id", None)
    if request_id and request_id != "-":
        return f"{text} (request id {request_id})"
    return text


def _sentence(text: str) -> str:
    return text.rstrip().rstrip(".")


def _fields(error: BadRequest) -> list[tuple[str, str]]:
    """The offending fields of a 400, as the API named them."""
    return [
        (str(item["field"]), _sentence(str(item.get("message", "invalid"))))
        for item in error.fields
        if item.get("field")
    ]


def _credits(error: InsufficientCredits, account: str | None) -> str:
    required = error.required
    available = error.available
    if required is None or available is None:
        return f"insufficient credits: {_sentence(error.message)}; top up the account's credits"
    missing = max(required - available, Decimal("0.00"))
    return (
        f"insufficient credits: this costs {required:.2f} and the balance is {available:.2f}, "
        f"so {missing:.2f} more credits are needed; top up the account's credits "
        f"(the operator runs `vps credits add {account or 'ACCOUNT'} {missing:.2f}`)"
    )


def describe(
    error: Exception,
    *,
    subject: str | None = None,
    api_url: str | None = None,
    account: str | None = None,
) -> str:
    """The one-line explanation of `error`. `subject` names what the command was about
    ("server 42"), so a 404 can say which id was not found; `account` is the account's
    name, for the top-up command a 402 suggests."""
    if isinstance(error, ConnectionFailed):
        where = api_url or "the configured URL"
        # The SDK's message repeats the URL before the reason.
        reason = _sentence(str(error))
        if reason.startswith("Cannot reach ") and ": " in reason:
            reason = reason.split(": ", 1)[1]
        return (
            f"cannot reach the API at {where} ({reason}); is it running? "
            "Start one with `vps serve`, or point at another with --api-url / VPS_API_URL"
        )
    if isinstance(error, Unauthenticated):
        text = f"not authenticated: {_sentence(error.message)}; {LOGIN_HINT}"
    elif isinstance(error, InsufficientCredits):
        text = _credits(error, account)
    elif isinstance(error, NotFound):
        if subject:
            text = f"not found: {subject} does not exist (or is not yours)"
        else:
            text = f"not found: {_sentence(error.message)}"
    elif isinstance(error, InvalidState):
        now = f" (it is {error.current_status})" if error.current_status else ""
        text = f"not now: {_sentence(error.message)}{now}"
    elif isinstance(error, BadRequest):
        named = _fields(error)
        if named:
            problems = "; ".join(f"{field}: {problem}" for field, problem in named)
            text = f"invalid request: {problems}"
        else:
            text = f"invalid request: {_sentence(error.message)}"
    elif isinstance(error, ApiError):
        text = f"the API refused the request ({error.status} {error.code}): " + _sentence(
            error.message
        )
    else:
        text = _sentence(str(error)) or type(error).__name__
    return with_request_id(text, error)
