"""Pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware on every request)."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NO_SLASH_PATHS = frozenset(
    {"/api/v1/openapi.json", "/api/v1/docs", "/api/v1/docs/oauth2-redirect"}
)


class RequestContextMiddleware:
    """Gives every request an id (echoing a sane `X-Request-ID`) and serves API paths with
    or without their trailing slash, without a redirect that some clients would not follow
    with the same method."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _GOOD_REQUEST_ID.fullmatch(candidate):
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        if path.startswith("/api/") and not path.endswith("/") and path not in _NO_SLASH_PATHS:
            scope = dict(scope, path=path + "/", raw_path=scope.get("raw_path", b"") + b"/")
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
