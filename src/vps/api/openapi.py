"""OpenAPI as the API really behaves: 400 for bad input (never FastAPI's validation 422; the
only 422 is a reused idempotency key), one error shape, bearer auth."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from vps.api.routes.common import MAX_PAGE
from vps.domain import etags, idempotency
from vps.domain.states import VISIBLE_STATUSES

_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_PUBLIC_PATHS: frozenset[str] = frozenset()


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "HTTPValidationError" in str(responses.get("422", "")):
                    responses.pop("422")  # FastAPI's; the API answers 400 for that
                if operation.get("parameters") or operation.get("requestBody"):
                    responses.setdefault(
                        "400",
                        {
                            "description": "Bad request: invalid parameters",
                            "content": {"application/json": {"schema": _ERROR_REF}},
                        },
                    )
                if path not in _PUBLIC_PATHS:
                    operation["security"] = [{"bearer": []}]
        _document_request_limits(schema)
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        components["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token: `Authorization: Bearer vps_...`",
            }
        }
        _describe_bounds(schema, app)
        _add_links(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]


# --- Request limits: rate limits (429 and the RateLimit fields) and the body cap (413). ---

_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Policy": {
        "description": 'Every quota policy (draft-ietf-httpapi-ratelimit-headers): `"minute";'
        'q=250;w=60, "hour";q=5000;w=3600` (`q` requests per `w` seconds). Absent when rate '
        "limiting is off.",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'The policy closest to exhaustion: `"minute";r=12;t=41` (`r` requests '
        "left, `t` seconds until the window resets). Absent when rate limiting is off or its "
        "counters are unavailable.",
        "schema": {"type": "string"},
    },
}
_RETRY_AFTER = {
    "description": "Seconds to wait before the next request can succeed.",
    "schema": {"type": "integer", "minimum": 1},
}


def _document_request_limits(schema: dict[str, Any]) -> None:
    """Every operation may answer 429 and carries the RateLimit fields; one with a body may
    answer 413 (see `ratelimit.py` and `bodylimit.py`)."""
    header_refs = {name: {"$ref": f"#/components/headers/{name}"} for name in _LIMIT_HEADERS}
    error = {"application/json": {"schema": _ERROR_REF}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses["429"] = {
                "description": "Too many requests: a rate limit is used up (`rate_limited`)",
                "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
                "content": error,
            }
            if operation.get("requestBody"):
                responses["413"] = {
                    "description": "The request body is over `VPS_MAX_BODY_BYTES` "
                    "(`payload_too_large`)",
                    "content": error,
                }
            for response in responses.values():
                response.setdefault("headers", {}).update(header_refs)
    headers = schema.setdefault("components", {}).setdefault("headers", {})
    headers.update(_LIMIT_HEADERS)
    headers["Retry-After"] = _RETRY_AFTER


def _describe_bounds(schema: dict[str, Any], app: FastAPI) -> None:
    """Publish the rules the API enforces on parameters (checked by the services and the
    dependencies, with their own messages): paging bounds come from the settings, statuses
    from the state machine, header formats from the domain."""
    settings = app.state.vps.settings
    rules: dict[tuple[str, str], dict[str, Any]] = {
        ("query", "page"): {"minimum": 1, "maximum": MAX_PAGE},
        ("query", "page_size"): {"minimum": 1, "maximum": settings.page_size_max},
        ("query", "status"): {"enum": sorted(status.value for status in VISIBLE_STATUSES)},
        ("header", idempotency.HEADER.lower()): {
            "minLength": 1,
            "maxLength": idempotency.MAX_KEY_LENGTH,
            "pattern": "^[\\x21-\\x7e]+$",
        },
        ("header", etags.HEADER.lower()): {"pattern": IF_MATCH_PATTERN},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                target = parameter.get("schema", {})
                # `int | None` and `str | None` are documented as anyOf [type, null]; a
                # parameter is never null, only absent (sent, it would arrive as "null").
                options = target.pop("anyOf", None)
                if options:
                    target.update(next(o for o in options if o.get("type") != "null"))
                extra = rules.get((parameter["in"], parameter["name"].lower()), {})
                for key, value in extra.items():
                    target.setdefault(key, value)


IF_MATCH_PATTERN = etags.IF_MATCH_PATTERN


_SERVERS = "/api/v1/servers/"
_SERVER = "/api/v1/servers/{server_id}/"
_ACTION = "/api/v1/actions/{action_id}/"
_KEYS = "/api/v1/ssh-keys/"
_KEY = "/api/v1/ssh-keys/{key_id}/"
_CREATED_SERVER = ("server_id", "$response.body#/id", "The server just created")
_FIRST_SERVER = ("server_id", "$response.body#/results/0/id", "The first server of the page")
_ITS_ACTION = ("action_id", "$response.body#/action/id", "The action started, to follow")
_CREATED_KEY = ("key_id", "$response.body#/id", "The key just added")
_FIRST_KEY = ("key_id", "$response.body#/results/0/id", "The first key of the page")

# OpenAPI links: (response it starts from) -> (operation it leads to), (parameter, value).
_LINKS: list[tuple[tuple[str, str, str], tuple[str, str], tuple[str, str, str]]] = [
    *(
        (("post", _SERVERS, "201"), target, _CREATED_SERVER)
        for target in (
            ("get", _SERVER),
            ("put", _SERVER),
            ("patch", _SERVER),
            ("delete", _SERVER),
            ("post", f"{_SERVER}start/"),
            ("post", f"{_SERVER}stop/"),
            ("post", f"{_SERVER}reboot/"),
            ("get", f"{_SERVER}actions/"),
        )
    ),
    (("post", _SERVERS, "201"), ("get", _ACTION), _ITS_ACTION),
    *(
        (("post", f"{_SERVER}{verb}/", "200"), ("get", _ACTION), _ITS_ACTION)
        for verb in ("start", "stop", "reboot")
    ),
    (
        ("delete", _SERVER, "204"),
        ("get", _ACTION),
        ("action_id", "$response.header.X-Action-Id", "The delete, to follow"),
    ),
    (("get", _SERVERS, "200"), ("get", _SERVER), _FIRST_SERVER),
    (("get", _SERVERS, "200"), ("get", f"{_SERVER}actions/"), _FIRST_SERVER),
    (
        ("get", f"{_SERVER}actions/", "200"),
        ("get", _ACTION),
        ("action_id", "$response.body#/results/0/id", "The first action of the page"),
    ),
    (("post", _KEYS, "201"), ("get", _KEY), _CREATED_KEY),
    (("post", _KEYS, "201"), ("delete", _KEY), _CREATED_KEY),
    (("get", _KEYS, "200"), ("get", _KEY), _FIRST_KEY),
    (("get", _KEYS, "200"), ("delete", _KEY), _FIRST_KEY),
]


# What a delete's `204` carries besides: where to follow the delete (the link above uses it).
_DELETE_HEADERS: dict[str, Any] = {
    "Location": {
        "description": "The delete's action: `/api/v1/actions/{action_id}/`",
        "required": True,
        "schema": {"type": "string"},
    },
    "X-Action-Id": {
        "description": "The id of the delete's action",
        "required": True,
        "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
    },
}


def _add_links(schema: dict[str, Any]) -> None:
    """OpenAPI links: where the id a response names is used next. A client can follow them,
    and Schemathesis's stateful tests chain operations along them (`tests/fuzz/`)."""
    paths = schema.get("paths", {})
    deleted = paths.get(_SERVER, {}).get("delete", {}).get("responses", {}).get("204")
    if deleted is not None:
        deleted.setdefault("headers", {}).update(_DELETE_HEADERS)
    for (method, path, status), (target_method, target_path), link in _LINKS:
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        target = paths.get(target_path, {}).get(target_method, {})
        if response is None or "operationId" not in target:
            continue
        parameter, value, description = link
        # "Get Server" (FastAPI's summary of `get_server`) -> "GetServer".
        name = "".join(target.get("summary", target["operationId"]).title().split())
        response.setdefault("links", {})[name] = {
            "operationId": target["operationId"],
            "parameters": {parameter: value},
            "description": description,
        }
