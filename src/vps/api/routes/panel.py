"""The web panel: its page and assets, and its session (sign in, who am I, sign out).

The panel is a client of the public API: its scripts call `/api/v1/…` like any other
client, authenticated by the session cookie (see `api/session.py`). Nothing here is part
of the API, so none of it is in the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import Field

from vps.api.deps import AppState, app_state
from vps.api.schemas import StrictInput
from vps.api.session import (
    SESSION_COOKIE,
    check_csrf,
    check_origin,
    end_session,
    start_session,
)
from vps.domain.errors import NotFound, Unauthenticated
from vps.services import accounts
from vps.services.auth import authenticate

ASSETS = Path(__file__).resolve().parent.parent / "static" / "panel"

# The page runs only its own scripts and styles, talks only to its own origin, and cannot
# be framed (no clickjacking of the power buttons).
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)
State = Annotated[AppState, Depends(app_state)]


class SignIn(StrictInput):
    token: str = Field(max_length=200)


@router.get("/")
async def panel_page() -> Response:
    return FileResponse(ASSETS / "index.html", headers=_PAGE_HEADERS)


@router.get("/panel/assets/{path:path}")
async def panel_asset(path: str) -> Response:
    # Resolved and checked to stay inside the assets: no `..` escapes.
    target = (ASSETS / path).resolve()
    if not target.is_relative_to(ASSETS) or not target.is_file():
        raise NotFound(f"No panel asset {path!r}.")
    return FileResponse(target, headers={"X-Content-Type-Options": "nosniff"})


async def _who(state: AppState, token: str) -> dict[str, object]:
    principal = await authenticate(state.database.reader, token, state.clock())
    async with state.database.read() as session:
        account = await accounts.account_by_id(session, principal.account_id)
    return {"account": {"id": account.id, "name": account.name}, "read_only": principal.read_only}


@router.post("/panel/session")
async def sign_in(body: SignIn, request: Request, state: State) -> Response:
    """Keep a valid token in the session cookie. JSON only: a cross-site HTML form cannot
    send it, so no other site can sign a visitor in to an account of its choosing."""
    check_origin(request)
    token = body.token.strip()
    response = JSONResponse(await _who(state, token))
    start_session(response, request, token)
    return response


@router.get("/panel/session")
async def current_session(request: Request, state: State) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthenticated("Not signed in.")
    return JSONResponse(await _who(state, token))


@router.delete("/panel/session")
async def sign_out(request: Request) -> Response:
    if request.cookies.get(SESSION_COOKIE):
        check_csrf(request)
    response = Response(status_code=204)
    end_session(response)
    return response
