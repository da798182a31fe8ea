"""The web panel's session: the token in an httpOnly cookie, accepted by every API endpoint,
with the CSRF check on changes. (The pages themselves are tested in a real browser, in
tests/browser.)

Cookies are sent as explicit headers, and the shared test client is kept from storing any.
"""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import Factory, Tenant
from vps.api.app import create_app
from vps.api.ratelimit import Identities
from vps.config import Settings
from vps.db.engine import Database
from vps.domain.tokens import generate_token

SERVER = {"name": "panel-made", "plan_id": 3, "os_id": 5, "location": "us-west"}


@pytest.fixture(autouse=True)
def _no_kept_cookies(client: httpx.AsyncClient) -> Iterator[None]:
    """httpx keeps the cookies a response sets: never let a session reach another test."""
    client.cookies.clear()
    yield
    client.cookies.clear()


async def post_clean(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    response = await client.post(url, **kwargs)
    client.cookies.clear()
    return response


def cookies_of(response: httpx.Response) -> dict[str, Any]:
    jar: dict[str, Any] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            jar[name] = morsel
    return jar


async def sign_in(client: httpx.AsyncClient, token: str) -> tuple[str, str]:
    """The Cookie header of a fresh session, and its CSRF value."""
    response = await post_clean(client, "/panel/session", json={"token": token})
    assert response.status_code == 200, response.text
    jar = cookies_of(response)
    csrf = jar["vps_csrf"].value
    return f"vps_session={jar['vps_session'].value}; vps_csrf={csrf}", csrf


async def test_sign_in_keeps_the_token_in_an_httponly_strict_cookie(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    tenant = await factory.tenant("10.00")
    response = await post_clean(client, "/panel/session", json={"token": tenant.token})
    assert response.status_code == 200, response.text
    assert response.json()["account"]["name"] == tenant.name
    assert response.json()["read_only"] is False
    jar = cookies_of(response)
    session, csrf = jar["vps_session"], jar["vps_csrf"]
    assert session.value == tenant.token
    assert session["httponly"] is True and session["samesite"].lower() == "strict"
    assert session["path"] == "/"
    # The CSRF value is for the page's scripts to read: not httpOnly, and unguessable.
    assert not csrf["httponly"] and csrf["samesite"].lower() == "strict"
    assert len(csrf.value) >= 32 and csrf.value != tenant.token

    cookie = f"vps_session={tenant.token}; vps_csrf={csrf.value}"
    who = await client.get("/panel/session", headers={"Cookie": cookie})
    assert who.status_code == 200 and who.json()["account"]["name"] == tenant.name


async def test_sign_in_refuses_bad_tokens_and_bodies(client: httpx.AsyncClient) -> None:
    made_up = await post_clean(client, "/panel/session", json={"token": "vps_" + "a" * 38})
    assert made_up.status_code == 401
    assert made_up.json()["error"]["code"] == "unauthenticated"
    assert "set-cookie" not in made_up.headers
    # A cross-site HTML form can only send form encodings: never accepted.
    form = await post_clean(client, "/panel/session", data={"token": "x"})
    assert form.status_code == 400
    extra = await post_clean(client, "/panel/session", json={"token": "x", "remember": True})
    assert extra.status_code == 400
    assert extra.json()["error"]["fields"][0]["field"] == "remember"
    assert (await client.get("/panel/session")).status_code == 401


async def test_the_cookie_authenticates_the_api_and_changes_need_the_csrf_header(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    tenant = await factory.tenant("100.00")
    cookie, csrf = await sign_in(client, tenant.token)

    listed = await client.get("/api/v1/servers/", headers={"Cookie": cookie})
    assert listed.status_code == 200

    for headers in (
        {"Cookie": cookie},
        {"Cookie": cookie, "X-CSRF-Token": "wrong"},
        {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        # Without its CSRF cookie, the header proves nothing.
        {"Cookie": f"vps_session={tenant.token}", "X-CSRF-Token": csrf},
    ):
        refused = await client.post("/api/v1/servers/", json=SERVER, headers=headers)
        assert refused.status_code == 403, (headers, refused.text)
        assert refused.json()["error"]["code"] == "csrf_failed"
    assert (await client.get("/api/v1/servers/", headers={"Cookie": cookie})).json()["count"] == 0

    made = await client.post(
        "/api/v1/servers/",
        json=SERVER,
        headers={"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "http://testserver"},
    )
    assert made.status_code == 201, made.text
    server_id = made.json()["id"]
    patched = await client.patch(
        f"/api/v1/servers/{server_id}/",
        json={"name": "renamed"},
        headers={"Cookie": cookie, "X-CSRF-Token": csrf},
    )
    assert patched.status_code == 200 and patched.json()["name"] == "renamed"
    deleted = await client.delete(
        f"/api/v1/servers/{server_id}/", headers={"Cookie": cookie, "X-CSRF-Token": csrf}
    )
    assert deleted.status_code == 204


async def test_a_bearer_header_wins_over_the_cookie(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """API clients are not subject to the CSRF check, and a stray cookie changes nothing."""
    mine = await factory.tenant("100.00")
    other = await factory.tenant("100.00")
    cookie, _ = await sign_in(client, other.token)
    made = await client.post(
        "/api/v1/servers/", json=SERVER, headers={**mine.headers, "Cookie": cookie}
    )
    assert made.status_code == 201, made.text
    assert (await mine.get(f"/api/v1/servers/{made.json()['id']}/")).status_code == 200
    assert (await other.get(f"/api/v1/servers/{made.json()['id']}/")).status_code == 404
    await mine.delete(f"/api/v1/servers/{made.json()['id']}/")


async def test_a_read_only_session_reads_but_cannot_change(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    tenant = await factory.tenant("100.00")
    reader: Tenant = await factory.token_for(tenant, read_only=True)
    response = await post_clean(client, "/panel/session", json={"token": reader.token})
    assert response.json()["read_only"] is True
    cookie, csrf = await sign_in(client, reader.token)
    assert (await client.get("/api/v1/account/", headers={"Cookie": cookie})).status_code == 200
    refused = await client.post(
        "/api/v1/servers/", json=SERVER, headers={"Cookie": cookie, "X-CSRF-Token": csrf}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


async def test_sign_out_needs_the_csrf_header_and_clears_both_cookies(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    tenant = await factory.tenant("10.00")
    cookie, csrf = await sign_in(client, tenant.token)
    forged = await client.delete("/panel/session", headers={"Cookie": cookie})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
    out = await client.delete("/panel/session", headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    assert out.status_code == 204
    cleared = cookies_of(out)
    assert {"vps_session", "vps_csrf"} <= set(cleared)
    assert all(cleared[name].value == "" for name in ("vps_session", "vps_csrf"))
    assert all(str(cleared[name]["max-age"]) == "0" for name in ("vps_session", "vps_csrf"))


async def test_the_page_and_its_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for escape in ("../routes/panel.py", "..%2F..%2Fconfig.py", "/etc/passwd", "nope.js"):
        response = await client.get(f"/panel/assets/{escape}")
        assert response.status_code == 404, escape
        assert response.json()["error"]["code"] == "not_found"


async def test_the_panel_can_be_turned_off(
    settings: Settings, database: Database, factory: Factory
) -> None:
    tenant = await factory.tenant("10.00")
    app: FastAPI = create_app(settings.model_copy(update={"panel": False}), database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        assert (await client.get("/")).status_code == 404
        assert (await post_clean(client, "/panel/session", json={"token": "x"})).status_code == 404
        # Nor does a session cookie (left from when it was on) open the API.
        cookie = {"Cookie": f"vps_session={tenant.token}"}
        refused = await client.get("/api/v1/servers/", headers=cookie)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
        bearer = {"Authorization": f"Bearer {tenant.token}"}
        assert (await client.get("/api/v1/servers/", headers=bearer)).status_code == 200


def test_a_session_counts_against_its_token_s_rate_limit() -> None:
    identities = Identities()
    token = generate_token()
    by_header = identities.of(
        {"headers": [(b"authorization", f"Bearer {token}".encode())], "client": ("1.2.3.4", 1)}
    )
    by_cookie = identities.of(
        {
            "headers": [(b"cookie", f"theme=dark; vps_session={token}; vps_csrf=x".encode())],
            "client": ("5.6.7.8", 1),
        }
    )
    assert by_header == by_cookie and by_header.startswith("token:")
