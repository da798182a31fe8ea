"""SSH keys, the account's ledger, and a create that the credits do not cover."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Service
from tests.browser.panel import Panel

pytestmark = pytest.mark.slow

PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop"
)


def test_ssh_keys_are_added_with_errors_shown_inline_and_deleted(
    panel: Panel, service: Service
) -> None:
    owner = service.account("keys")
    panel.sign_in(owner.token)
    panel.open("/ssh-keys")
    panel.text_in("main", "No SSH keys yet.")

    panel.fill("Name", "laptop")
    panel.fill("Public key", "ssh-ed25519 not-base64!")
    panel.click("Add key")
    error = panel.wait(lambda d: panel.field_error("public_key"), "the key's error")
    assert "Not a valid public key" in error
    key_field = panel.field("Public key")
    assert key_field.get_attribute("aria-invalid") == "true"
    # The error is tied to its field for screen readers.
    error_id = panel.css('.field[data-field="public_key"] .field-error').get_attribute("id")
    assert str(error_id) in str(key_field.get_attribute("aria-describedby"))
    assert panel.focused() == key_field
    panel.screenshot("ssh-key-error")

    panel.fill("Public key", PUBLIC_KEY)
    panel.click("Add key")
    panel.text_in("#keys-message", "SSH key laptop added")
    row = panel.text_in("table.keys tbody", "laptop")
    assert "SHA256:" in row.text
    assert panel.field_error("public_key") == ""
    panel.screenshot("ssh-keys")

    # The same key twice: refused, and said next to the field.
    panel.fill("Name", "again")
    panel.fill("Public key", PUBLIC_KEY)
    panel.click("Add key")
    panel.wait(lambda d: panel.field_error("public_key"), "the duplicate's error")

    # The create form offers it.
    panel.open("/servers/new")
    panel.choose("SSH key", "laptop")

    panel.open("/ssh-keys")
    panel.click("Delete")
    panel.text_in("dialog[open] h2", "laptop")
    panel.click("Delete laptop")
    panel.text_in("main", "No SSH keys yet.")
    with owner.client(service.base_url) as api:
        assert api.get("/ssh-keys/").json()["count"] == 0


def test_a_create_the_credits_do_not_cover_is_explained(panel: Panel, service: Service) -> None:
    owner = service.account("short", credits="10")
    panel.sign_in(owner.token)
    panel.open("/servers/new")
    panel.fill("Name", "too-big")
    panel.choose("Plan", "Performance VPS")
    assert panel.css("#balance-after").text == "-38.00 credits"
    panel.text_in("#price-summary", "38.00 credits are missing")
    panel.click("Create server")
    message = panel.text_in("#create-message", "Not enough credits")
    assert "48.00 credits for its first month" in message.text
    assert "the account has 10.00 credits" in message.text
    assert "at least 38.00 credits" in message.text
    assert message.find_element("css selector", "[role=alert]")
    panel.screenshot("create-insufficient-credits")
    with owner.client(service.base_url) as api:
        assert api.get("/servers/").json()["count"] == 0
        assert api.get("/account/").json()["balance"] == "10.00"


def test_the_account_page_shows_the_balance_and_ledger(panel: Panel, service: Service) -> None:
    owner = service.account("ledger", credits="50")
    server = service.create_server(owner, "billed")
    panel.sign_in(owner.token)
    panel.open("/account")
    panel.text_in("#balance", "44.00 credits")
    rows = panel.all(".ledger tbody tr")
    assert [r.get_attribute("data-kind") for r in rows] == ["charge", "topup"]
    assert "-6.00" in rows[0].text
    assert f"server {server['id']}" in rows[0].text
    assert "50.00" in rows[1].text
