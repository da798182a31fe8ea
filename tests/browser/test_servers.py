"""Servers in the panel: create, watch, power, edit, delete, list."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import Service
from tests.browser.panel import By, Keys, Panel

pytestmark = pytest.mark.slow


def _power_buttons(panel: Panel) -> dict[str, bool]:
    return {
        str(b.get_attribute("data-action")): b.is_enabled()
        for b in panel.all("button[data-action]")
    }


def test_a_server_created_in_the_form_becomes_active_without_reloading(
    panel: Panel, service: Service
) -> None:
    owner = service.account("creator", credits="100")
    panel.sign_in(owner.token)
    panel.text_in("main", "You have no servers yet.")
    panel.click("Create server")
    panel.text_in("h1", "Create a server")

    panel.fill("Name", "web-1")
    panel.choose("Plan", "Standard VPS")
    assert panel.css("#monthly-price").text == "24.00 credits"
    assert panel.css("#balance-after").text == "76.00 credits"
    panel.field("Enable backups").click()
    assert panel.css("#monthly-price").text == "28.80 credits"
    assert panel.css("#balance-after").text == "71.20 credits"
    panel.fill("Hostname (optional)", "web1.example.com")
    panel.screenshot("create-form")
    panel.mark_page()
    panel.record_statuses(".title-line .badge")
    panel.click("Create server")

    panel.text_in(".title-line h1", "web-1")
    # Built by the worker: no power action until the server is active.
    assert panel.status() in {"provisioning", "active"}
    if panel.status() == "provisioning":
        assert _power_buttons(panel) == {"start": False, "stop": False, "reboot": False}
    panel.wait_status("active")
    assert panel.statuses() == ["provisioning", "active"]
    assert panel.not_reloaded()
    panel.wait(
        lambda d: _power_buttons(panel) == {"start": False, "stop": True, "reboot": True},
        "stop and reboot to be enabled",
    )
    panel.text_in(".facts", "203.0.113.")
    panel.text_in(".actions-table", "Create")
    panel.text_in(".actions-table", "succeeded")

    panel.link("Servers").click()
    row = panel.text_in("table.servers tbody tr", "web-1")
    assert row.find_element(By.CSS_SELECTOR, ".badge").get_attribute("data-status") == "active"

    panel.link("Account").click()
    panel.text_in("#balance", "71.20 credits")
    charge = panel.text_in(".ledger tbody tr[data-kind='charge']", "First month")
    assert "-28.80" in charge.text
    assert "71.20" in charge.text
    panel.screenshot("account")


def test_a_create_sent_again_after_a_lost_answer_makes_one_server(
    panel: Panel, service: Service
) -> None:
    owner = service.account("resender")
    panel.sign_in(owner.token)
    panel.open("/servers/new")
    panel.fill("Name", "once-1")
    # The request reaches the service, but its answer is lost on the way back.
    panel.driver.execute_script(
        """
        const realFetch = window.fetch;
        window.fetch = async (url, options) => {
          const response = await realFetch(url, options);
          if (options?.method === "POST" && url === "/api/v1/servers/" && !window.__lostOne) {
            window.__lostOne = true;
            throw new TypeError("connection reset");
          }
          return response;
        };
        """
    )
    panel.click("Create server")
    panel.text_in("#create-message", "cannot be reached")
    panel.click("Create server")
    panel.text_in(".title-line h1", "once-1")

    with owner.client(service.base_url) as api:
        listed = api.get("/servers/").json()
    assert [server["name"] for server in listed["results"]] == ["once-1"]


def test_the_list_follows_status_changes_as_they_happen(panel: Panel, service: Service) -> None:
    owner = service.account("watcher")
    panel.sign_in(owner.token)
    panel.text_in("main", "You have no servers yet.")
    panel.mark_page()
    panel.record_statuses("table.servers tbody .badge")
    with owner.client(service.base_url) as api:
        created = api.post(
            "/servers/", json={"name": "live-1", "plan_id": 3, "os_id": 5, "location": "us-east"}
        ).json()
    # Made elsewhere (another client): the row appears, then turns active, by itself.
    row_selector = f"tr[data-server-id='{created['id']}'] .badge"
    panel.wait(
        lambda d: panel.css(row_selector).get_attribute("data-status") == "active",
        "the row to turn active",
    )
    assert panel.statuses() == ["provisioning", "active"]
    assert panel.not_reloaded()
    announcer = panel.css("#announcer")
    assert announcer.get_attribute("aria-live") == "polite"
    panel.wait(
        lambda d: "live-1 is now active" in str(announcer.get_attribute("textContent")),
        "the change to be announced",
    )

    # Renamed elsewhere: the row shows the new name, still without a reload.
    with owner.client(service.base_url) as api:
        renamed = api.patch(f"/servers/{created['id']}/", json={"name": "live-2"})
        assert renamed.status_code == 200, renamed.text
    panel.text_in(f"tr[data-server-id='{created['id']}']", "live-2")
    assert panel.not_reloaded()


def test_power_buttons_follow_the_state_machine(panel: Panel, service: Service) -> None:
    owner = service.account("power")
    server = service.create_server(owner, "power-1")
    panel.sign_in(owner.token)
    panel.open(f"/servers/{server['id']}")
    panel.mark_page()
    assert panel.status() == "active"
    assert _power_buttons(panel) == {"start": False, "stop": True, "reboot": True}

    panel.click("Stop")
    panel.wait_status("stopped")
    panel.wait(
        lambda d: _power_buttons(panel) == {"start": True, "stop": False, "reboot": False},
        "only start to be enabled",
    )

    panel.click("Start")
    panel.wait_status("active")
    panel.wait(lambda d: _power_buttons(panel)["reboot"], "reboot to be enabled")

    panel.click("Reboot")
    panel.wait(lambda d: panel.all(".actions-table tr[data-kind='reboot']"), "the reboot")
    panel.wait_status("active")
    panel.wait(
        lambda d: (
            [
                (r.get_attribute("data-kind"), r.get_attribute("data-status"))
                for r in panel.all(".actions-table tbody tr")
            ][:3]
            == [("reboot", "succeeded"), ("start", "succeeded"), ("stop", "succeeded")]
        ),
        "the action history, newest first",
    )
    assert panel.not_reloaded()
    # Usage samples collected while the page was open draw the chart.
    panel.wait(lambda d: panel.all(".chart polyline"), "the usage chart", timeout=15)
    panel.driver.set_window_size(1280, 1500)
    panel.screenshot("server-detail", doc=True)


def test_rename_hostname_and_backups_are_saved_and_errors_shown_in_place(
    panel: Panel, service: Service
) -> None:
    owner = service.account("editor")
    server = service.create_server(owner, "old-name")
    panel.sign_in(owner.token)
    panel.open(f"/servers/{server['id']}")

    panel.fill("Hostname", "not a hostname!")
    panel.click("Save changes")
    error = panel.wait(lambda d: panel.field_error("hostname"), "the hostname's error")
    assert "hostname" in error.lower()
    assert panel.field("Hostname").get_attribute("aria-invalid") == "true"

    panel.fill("Name", "new-name")
    panel.fill("Hostname", "new.example.com")
    panel.field("Enable backups").click()
    panel.click("Save changes")
    panel.text_in("main", "Changes saved.")
    panel.text_in(".title-line h1", "new-name")
    panel.text_in(".facts", "new.example.com")
    assert panel.field_error("hostname") == ""
    with owner.client(service.base_url) as api:
        saved = api.get(f"/servers/{server['id']}/").json()
    assert (saved["name"], saved["hostname"], saved["backups_enabled"]) == (
        "new-name",
        "new.example.com",
        True,
    )


def test_delete_asks_for_a_confirmation_that_names_the_server(
    panel: Panel, service: Service
) -> None:
    owner = service.account("deleter")
    server = service.create_server(owner, "doomed-1")
    panel.sign_in(owner.token)
    panel.open(f"/servers/{server['id']}")

    panel.click("Delete server…")
    dialog = panel.shown("dialog[open]")
    assert "doomed-1" in dialog.find_element(By.TAG_NAME, "h2").text
    assert panel.button("Delete doomed-1").is_displayed()
    panel.screenshot("delete-dialog")
    # Escape cancels, and nothing is deleted.
    dialog.send_keys(Keys.ESCAPE)
    panel.wait(lambda d: not panel.all("dialog"), "the dialog to close")
    with owner.client(service.base_url) as api:
        assert api.get(f"/servers/{server['id']}/").status_code == 200

    panel.click("Delete server…")
    panel.click("Delete doomed-1")
    panel.text_in("h1", "Servers")
    panel.wait(
        lambda d: not panel.all(f"tr[data-server-id='{server['id']}']"),
        "the server to leave the list",
    )
    with owner.client(service.base_url) as api:
        assert api.get(f"/servers/{server['id']}/").status_code == 404


def test_the_list_filters_by_status_and_location_and_pages(panel: Panel, service: Service) -> None:
    owner = service.account("lister")
    names = ["web-1", "web-2", "db-1", "db-2", "cache-1", "cache-2", "ci-runner", "staging"]
    names += ["mail", "vpn", "backup", "edge-east"]
    with owner.client(service.base_url) as api:
        ids = []
        for name in names:
            location = "us-east" if name == "edge-east" else "us-west"
            body = {"name": name, "plan_id": 3, "os_id": 5, "location": location}
            created = api.post("/servers/", json=body)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        for server_id in ids:
            api.get(f"/servers/{server_id}/", params={"wait_for": "active", "wait": 30})
        assert api.post(f"/servers/{ids[3]}/stop/").status_code == 200
    panel.sign_in(owner.token)
    panel.open("/servers")
    panel.text_in(".pagination", "Page 1 of 2 · 12 servers")
    assert len(panel.all("table.servers tbody tr")) == 10
    panel.wait(
        lambda d: panel.css(f"tr[data-server-id='{ids[3]}'] .badge").text == "Stopped",
        "db-2 to be stopped",
    )
    panel.screenshot("servers", doc=True)
    panel.link("Next").click()
    panel.text_in(".pagination", "Page 2 of 2")
    panel.wait(lambda d: len(panel.all("table.servers tbody tr")) == 2, "the second page")

    panel.choose("Location", "us-east")
    panel.text_in(".pagination", "Page 1 of 1 · 1 server")
    assert "edge-east" in panel.css("table.servers tbody").text
    panel.choose("Location", "Any location")
    panel.choose("Status", "Stopped")
    panel.text_in(".pagination", "Page 1 of 1 · 1 server")
    assert "db-2" in panel.css("table.servers tbody").text
    panel.choose("Status", "Error")
    panel.text_in("main", "No servers match these filters.")

    with httpx.Client(base_url=service.base_url) as anonymous:
        assert anonymous.get("/api/v1/servers/").status_code == 401
