"""One table from domain error codes to HTTP statuses, and one JSON error shape."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIRouter
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from vps.api.session import SESSION_COOKIE
from vps.domain.errors import (
    DomainError,
    InsufficientCredits,
    InvalidParameters,
    InvalidState,
    PreconditionFailed,
    TooManyStreams,
    Unauthenticated,
)
from vps.domain.money import format_cents
from vps.domain.tokens import is_well_formed

log = logging.getLogger("vps.api")

STATUS_BY_CODE: dict[str, int] = {
    "invalid_parameters": 400,
    "malformed_json": 400,
    "invalid_state": 400,
    "unauthenticated": 401,
    "insufficient_credits": 402,
    "forbidden": 403,
    "csrf_failed": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "idempotency_key_in_use": 409,
    "precondition_failed": 412,
    "idempotency_key_reused": 422,
    "payload_too_large": 413,
    "rate_limited": 429,
    "too_many_streams": 429,
    "internal_error": 500,
    "service_unavailable": 503,
    "location_full": 503,
}

_AUTH_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vps"'}

_PYDANTIC_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ("required", "This field is required."),
    "extra_forbidden": ("unknown_field", "Unknown field."),
    "int_type": ("wrong_type", "Must be an integer."),
    "int_parsing": ("wrong_type", "Must be an integer."),
    "int_from_float": ("wrong_type", "Must be an integer."),
    "bool_type": ("wrong_type", "Must be a boolean (true or false)."),
    "bool_parsing": ("wrong_type", "Must be a boolean (true or false)."),
    "string_type": ("wrong_type", "Must be a string."),
    "model_type": ("wrong_type", "Must be a JSON object."),
    "model_attributes_type": (
        "wrong_type",
        "The body must be a JSON object sent with Content-Type: application/json.",
    ),
    "dict_type": ("wrong_type", "Must be a JSON object."),
    "null_type": ("wrong_type", "Must not be null."),
}


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))


def error_response(
    request: Request,
    code: str,
    message: str,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id_of(request)}
    body.update({key: value for key, value in extra.items() if value is not None})
    return JSONResponse(
        {"error": body}, status_code=status or STATUS_BY_CODE[code], headers=headers
    )


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location[1:]]
    if parts:
        return ".".join(parts)
    return str(location[0]) if location else "body"


def _validation_fields(error: RequestValidationError) -> tuple[str, str, list[dict[str, str]]]:
    fields: list[dict[str, str]] = []
    for item in error.errors():
        kind = item.get("type", "")
        if kind == "json_invalid":
            detail = item.get("ctx", {}).get("error", "invalid JSON")
            return "malformed_json", f"The request body is not valid JSON: {detail}.", []
        location = tuple(item.get("loc", ()))
        code, message = _PYDANTIC_MESSAGES.get(kind, ("invalid", ""))
        if not message:
            message = str(item.get("msg", "Invalid value.")).removeprefix("Value error, ")
            message = message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")
        fields.append({"field": _field_name(location), "code": code, "message": message})
    summary = "Invalid parameters: " + ", ".join(sorted({f["field"] for f in fields})) + "."
    return "invalid_parameters", summary, fields


def is_connection_failure(error: BaseException) -> bool:
    """True when the database could not be reached (as opposed to a bug in a statement)."""
    if isinstance(error, OSError):
        return True
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _allowed_methods(request: Request, routers: Sequence[APIRouter]) -> list[str]:
    """Every method of every route at this path (FastAPI has one route per method, and the
    router reports only the first one it met)."""
    path = request.scope["path"]
    methods: set[str] = set()
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path_regex.match(path):
                methods.update(route.methods or ())
    return sorted(methods)


def _plausible_credentials(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not scheme:
        token, scheme = request.cookies.get(SESSION_COOKIE, ""), "bearer"
    return scheme.lower() == "bearer" and is_well_formed(token.strip())


def install_error_handlers(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """The handlers; `routers` are the app's, for a 405's `Allow` (passed in, not imported:
    the routes depend on this module's status table through their dependencies)."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> JSONResponse:
        extra: dict[str, Any] = {}
        headers = None
        if isinstance(error, InvalidParameters):
            extra["fields"] = [
                {"field": p.field, "code": p.code, "message": p.message} for p in error.problems
            ]
        elif isinstance(error, InsufficientCredits):
            extra["required"] = format_cents(error.required_cents)
            extra["available"] = format_cents(error.available_cents)
        elif isinstance(error, InvalidState):
            extra["current_status"] = error.current_status
        elif isinstance(error, Unauthenticated):
            headers = _AUTH_CHALLENGE
        elif isinstance(error, TooManyStreams):
            headers = {"Retry-After": "5"}
        elif isinstance(error, PreconditionFailed):
            # The current version, so the client can read the resource again and retry.
            headers = {"ETag": error.current_etag}
        return error_response(
            request,
            error.code,
            error.message,
            status=STATUS_BY_CODE.get(error.code, 400),
            headers=headers,
            **extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        code, message, fields = _validation_fields(error)
        if code == "malformed_json" and not _plausible_credentials(request):
            # The body is parsed before authentication runs; a caller without credentials
            # still learns only that it must authenticate.
            return error_response(
                request,
                "unauthenticated",
                "Authentication credentials are missing or malformed.",
                headers=_AUTH_CHALLENGE,
            )
        return error_response(request, code, message, fields=fields or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            return error_response(request, "not_found", "No such endpoint.")
        if error.status_code == 405:
            allowed = ", ".join(_allowed_methods(request, routers))
            return error_response(
                request,
                "method_not_allowed",
                f"This method is not allowed on this endpoint; allowed: {allowed}.",
                headers={"Allow": allowed},
            )
        code = "invalid_parameters" if error.status_code == 400 else "internal_error"
        return error_response(request, code, str(error.detail), status=error.status_code)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def _unavailable(request: Request, error: Exception) -> JSONResponse:
        if not is_connection_failure(error):
            return await _unexpected(request, error)
        log.warning(
            "database unavailable (request %s): %s", request_id_of(request), type(error).__name__
        )
        return error_response(
            request,
            "service_unavailable",
            "The service is temporarily unavailable; retry shortly.",
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("unexpected error (request %s)", request_id_of(request), exc_info=error)
        return error_response(
            request,
            "internal_error",
            f"Internal error; quote request id {request_id_of(request)} when reporting it.",
        )
