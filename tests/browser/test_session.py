"""Signing in and out, read-only tokens, other accounts, and the CSRF guard, in the page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Service
from tests.browser.panel import By, Panel

pytestmark = pytest.mark.slow

_FETCH = """
const [method, path, headers, done] = arguments;
fetch(path, {method, headers, credentials: "same-origin",
             body: method === "GET" ? undefined : JSON.stringify({name: "x", public_key: "y"})})
  .then(async (r) => done({status: r.status, body: await r.text()}))
  .catch((e) => done({status: 0, body: String(e)}));
"""


def _fetch(panel: Panel, method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """A request made by a script of the page itself (with the session cookie)."""
    result: dict[str, Any] = panel.driver.execute_async_script(_FETCH, method, path, headers)
    return result


def _csrf(panel: Panel) -> str:
    cookie = panel.driver.get_cookie("vps_csrf")
    assert cookie is not None
    return str(cookie["value"])


def test_a_wrong_token_is_refused_in_place(panel: Panel, service: Service) -> None:
    panel.driver.get(f"{service.base_url}/")
    panel.wait_ready()
    panel.fill("API token", "vps_" + "x" * 38)
    panel.click("Sign in")
    error = panel.wait(lambda d: panel.field_error("token"), "the token's error")
    assert "not accepted" in error
    assert panel.field("API token").get_attribute("aria-invalid") == "true"
    assert panel.driver.get_cookie("vps_session") is None
    panel.screenshot("sign-in-refused")


def test_the_session_is_an_httponly_cookie_and_sign_out_forgets_it(
    panel: Panel, service: Service
) -> None:
    owner = service.account("session")
    panel.sign_in(owner.token)
    session = panel.driver.get_cookie("vps_session")
    assert session is not None
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    # The page's scripts see the CSRF cookie, never the token.
    cookies = panel.driver.execute_script("return document.cookie;")
    assert "vps_csrf=" in cookies
    assert owner.token not in cookies
    assert owner.token not in panel.driver.page_source

    panel.driver.find_element(By.ID, "sign-out").click()
    panel.text_in("main", "You are signed out.")
    assert panel.driver.get_cookie("vps_session") is None
    assert panel.driver.get_cookie("vps_csrf") is None
    assert _fetch(panel, "GET", "/api/v1/servers/", {})["status"] == 401
    # A page of the panel, opened again: still signed out.
    panel.driver.get(f"{service.base_url}/#/servers")
    panel.wait_ready()
    panel.text_in("h1", "Sign in")
    assert panel.css("#nav").is_displayed() is False


def test_a_revoked_token_ends_the_session(panel: Panel, service: Service) -> None:
    owner = service.account("revoked")
    panel.sign_in(owner.token)
    panel.text_in("h1", "Servers")
    service.revoke_tokens(owner.name)
    panel.link("Account").click()
    panel.text_in("#sign-in-message", "Your session has ended")
    panel.text_in("h1", "Sign in")
    assert not panel.css("#nav").is_displayed()


def test_a_change_without_the_csrf_header_is_refused(panel: Panel, service: Service) -> None:
    owner = service.account("csrf")
    panel.sign_in(owner.token)
    refused = _fetch(panel, "POST", "/api/v1/ssh-keys/", {"Content-Type": "application/json"})
    assert refused["status"] == 403
    assert '"csrf_failed"' in refused["body"]
    wrong = {"Content-Type": "application/json", "X-CSRF-Token": "not-the-cookie"}
    assert _fetch(panel, "POST", "/api/v1/ssh-keys/", wrong)["status"] == 403
    # With it, the request reaches the API (which then judges the body).
    right = {"Content-Type": "application/json", "X-CSRF-Token": _csrf(panel)}
    assert _fetch(panel, "POST", "/api/v1/ssh-keys/", right)["status"] == 400


def test_a_read_only_token_gives_a_read_only_panel(panel: Panel, service: Service) -> None:
    owner = service.account("reader")
    server = service.create_server(owner, "look-only")
    panel.sign_in(service.token(owner.name, read_only=True))
    assert panel.css("#who-mode").is_displayed()
    note = panel.css("#read-only-note")
    assert note.is_displayed()
    assert "read-only" in note.text

    create = panel.button("Create server")
    assert not create.is_enabled()
    assert "read-only-note" in str(create.get_attribute("aria-describedby"))
    panel.screenshot("read-only-servers")

    panel.open(f"/servers/{server['id']}")
    panel.wait_status("active")
    for label in ("Start", "Stop", "Reboot", "Save changes", "Delete server…"):
        assert not panel.button(label).is_enabled(), label
    assert not panel.field("Name").is_enabled()
    panel.text_in("#power-hint", "read-only")

    panel.open("/ssh-keys")
    assert not panel.button("Add key").is_enabled()
    key_field = panel.field("Public key")
    assert not key_field.is_enabled()
    assert "read-only-note" in str(key_field.get_attribute("aria-describedby"))

    # Whatever the page shows, the API decides: the token cannot write.
    headers = {"Content-Type": "application/json", "X-CSRF-Token": _csrf(panel)}
    stop = _fetch(panel, "POST", f"/api/v1/servers/{server['id']}/stop/", headers)
    assert stop["status"] == 403
    assert '"forbidden"' in stop["body"]


def test_another_accounts_server_is_not_found(panel: Panel, service: Service) -> None:
    owner = service.account("nosy")
    other = service.account("private")
    theirs = service.create_server(other, "theirs")
    panel.sign_in(owner.token)
    panel.open(f"/servers/{theirs['id']}")
    panel.text_in("h1", "Server not found")
    assert "theirs" not in panel.driver.page_source
    assert not panel.all("button[data-action]")
    panel.open("/servers/999999999")
    panel.text_in("h1", "Server not found")
    panel.open("/servers/not-a-number")
    panel.text_in("h1", "Server not found")
