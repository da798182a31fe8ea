"""The panel's session: the API token kept in a cookie, and the CSRF check that goes with it.

The web panel signs in by handing its token to `POST /panel/session`, which keeps it in an
httpOnly cookie (page scripts can never read it back) with `SameSite=Strict` (the browser
sends it only with requests that start on this site). Every API endpoint then accepts that
cookie in place of `Authorization: Bearer`. A change made with the cookie must also carry
`X-CSRF-Token` equal to the `vps_csrf` cookie (the double-submit pattern): only a page of
this origin can read that cookie and set a custom header, and a cross-origin page cannot
send one without a CORS preflight that this service never grants. An `Origin` header
naming another origin is refused too.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from vps.domain.errors import CsrfFailed

SESSION_COOKIE = "vps_session"
CSRF_COOKIE = "vps_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_token(request: Request) -> str | None:
    """The token of the panel's session cookie, once the request is shown to come from the
    panel when it changes something; None without the cookie. CsrfFailed otherwise."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not request.app.state.vps.settings.panel:
        # With the panel turned off, a cookie is no way in (a stale one is ignored).
        return None
    if request.method not in SAFE_METHODS:
        check_csrf(request)
    return token


def check_csrf(request: Request) -> None:
    expected = request.cookies.get(CSRF_COOKIE, "")
    presented = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise CsrfFailed(
            "A change made with the panel's session must carry the X-CSRF-Token header "
            "(the value of the vps_csrf cookie); API clients send 'Authorization: Bearer' "
            "instead."
        )
    check_origin(request)


def check_origin(request: Request) -> None:
    """CsrfFailed when the browser says the request comes from a page of another origin."""
    origin = request.headers.get("origin")
    if origin is not None and not _same_origin(origin, request):
        raise CsrfFailed("Changes through the panel's session must come from its own origin.")


def _same_origin(origin: str, request: Request) -> bool:
    """The origin the request was sent to (its Host), or the public URL's behind a proxy
    that rewrites Host."""
    parts = urlsplit(origin)
    if parts.scheme not in {"http", "https"}:
        return False
    if parts.netloc == request.headers.get("host", ""):
        return True
    public_url = request.app.state.vps.settings.public_url
    if not public_url:
        return False
    public = urlsplit(public_url)
    return (parts.scheme, parts.netloc) == (public.scheme, public.netloc)


def start_session(response: Response, request: Request, token: str) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/"
    )
    # Readable by the panel's scripts (that is the point): it proves same-origin, not who.
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        httponly=False,
        samesite="strict",
        secure=secure,
        path="/",
    )


def end_session(response: Response) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")
