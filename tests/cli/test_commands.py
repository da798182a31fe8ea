"""Every user command, as a table for people and as the API's own JSON for scripts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx

from tests.cli.conftest import Cli, create_command, create_server, wait_for_status, without


def public_key(seed: int, comment: str) -> str:
    """A well-formed ed25519 public key line (type and 32 key bytes, length-prefixed)."""
    blob = b"".join(
        len(part).to_bytes(4, "big") + part for part in (b"ssh-ed25519", bytes([seed]) * 32)
    )
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


PUBLIC_KEY = public_key(1, "cli@test")


def test_catalog_commands(user_cli: Cli, api: httpx.Client) -> None:
    for command, path in (
        ("plans", "/plans/"),
        ("os", "/operating-systems/"),
        ("locations", "/locations/"),
    ):
        assert user_cli.json(command) == api.get(path).json()
    plans = user_cli.ok("plans").stdout
    assert "Standard VPS" in plans and "24.00" in plans and "4096 MB" in plans
    assert "Ubuntu 22.04 LTS" in user_cli.ok("os").stdout
    locations = user_cli.ok("locations").stdout
    assert "us-west" in locations and "US East" in locations


def test_account_shows_balance_and_transactions(user_cli: Cli, api: httpx.Client) -> None:
    create_server(api, "billed", active=False)
    assert user_cli.json("account") == api.get("/account/").json()
    table = user_cli.ok("account").stdout
    assert "94.00 credits" in table  # 100.00 less the Starter plan's first month
    assert "charge" in table and "-6.00" in table


def test_servers_list_get_and_pages(user_cli: Cli, api: httpx.Client) -> None:
    first = create_server(api, "list-one")
    second = create_server(api, "list-two")
    third = create_server(api, "list-three")
    listed = user_cli.json("servers", "list")
    reference = api.get("/servers/").json()["results"]
    ignored = ("resource_usage", "updated_at")
    assert [without(s, *ignored) for s in listed] == [without(s, *ignored) for s in reference]
    assert [s["id"] for s in listed] == [first["id"], second["id"], third["id"]]

    one_page = user_cli("servers", "list", "--page-size", "2", "-o", "json")
    assert [s["id"] for s in json.loads(one_page.stdout)] == [first["id"], second["id"]]
    assert "next: --page 2" not in one_page.stdout  # hints never pollute JSON
    table_page = user_cli.ok("servers", "list", "--page-size", "2")
    assert "2 of 3 servers shown" in table_page.stderr
    assert "list-three" not in table_page.stdout
    every = user_cli.json("servers", "list", "--page-size", "2", "--all")
    assert [s["id"] for s in every] == [first["id"], second["id"], third["id"]]
    assert user_cli.json("servers", "list", "--status", "stopped") == []

    table = user_cli.ok("servers", "list").stdout
    for server in (first, second, third):
        row = next(line for line in table.splitlines() if server["name"] in line)
        assert "active" in row and server["ip_address"] in row

    got = user_cli.json("servers", "get", str(first["id"]))
    assert without(got, *ignored) == without(api.get(f"/servers/{first['id']}/").json(), *ignored)
    detail = user_cli.ok("servers", "get", str(first["id"])).stdout
    assert first["ipv6_address"] in detail and "Starter VPS" in detail and "Debian 12" in detail


def test_create_resolves_names_and_update_changes_only_what_is_given(
    user_cli: Cli, api: httpx.Client
) -> None:
    created = user_cli.json(
        *create_command("by-names", plan="standard", system="ubuntu-22.04", location="us-west"),
        "--hostname",
        "web.example.com",
        "--backups",
    )
    assert created["status"] == "provisioning"
    assert created["plan"]["id"] == 1 and created["os"]["id"] == 5
    assert created["action"]["kind"] == "create"
    assert created["backups_enabled"] is True
    reference = api.get(f"/servers/{created['id']}/").json()
    assert reference["hostname"] == "web.example.com"

    ambiguous = user_cli(*create_command("x", plan="1", system="ubuntu", location="us-west"))
    assert ambiguous.exit_code == 1
    assert "ambiguous" in ambiguous.stderr and "Ubuntu 24.04 LTS" in ambiguous.stderr
    unknown = user_cli(*create_command("x", plan="huge", system="5", location="us-west"))
    assert unknown.exit_code == 1
    assert "unknown plan 'huge'" in unknown.stderr and "Starter VPS" in unknown.stderr

    as_table = user_cli.ok(
        *create_command("as-table", plan="Performance VPS", system="rocky-9", location="us-east")
    )
    assert "provisioning" in as_table.stdout and "Performance VPS" in as_table.stdout
    assert "Rocky Linux 9" in as_table.stdout
    assert "as-table" in as_table.stderr and "provisioned" in as_table.stderr

    wait_for_status(api, created["id"], "active")
    updated = user_cli.json(
        "servers", "update", str(created["id"]), "--name", "renamed", "--no-backups"
    )
    assert updated["name"] == "renamed" and updated["backups_enabled"] is False
    assert updated["hostname"] == "web.example.com"
    assert api.get(f"/servers/{created['id']}/").json()["name"] == "renamed"
    table = user_cli.ok("servers", "update", str(created["id"]), "--hostname", "b.example.com")
    assert "b.example.com" in table.stdout and "updated: hostname" in table.stderr
    nothing = user_cli("servers", "update", str(created["id"]))
    assert nothing.exit_code == 1 and "nothing to change" in nothing.stderr


def test_power_actions_and_the_action_history(user_cli: Cli, api: httpx.Client) -> None:
    server = create_server(api, "powered")
    sid = str(server["id"])
    stopped = user_cli.json("servers", "stop", sid, "--wait")
    assert stopped["status"] == "stopped"
    assert api.get(f"/servers/{sid}/").json()["status"] == "stopped"
    started = user_cli.ok("servers", "start", sid)
    assert "Server is starting" in started.stderr
    wait_for_status(api, server["id"], "active")
    rebooted = user_cli.json("servers", "reboot", sid)
    assert rebooted["action"]["kind"] == "reboot"
    wait_for_status(api, server["id"], "active")

    actions = user_cli.json("servers", "actions", sid)
    assert actions == api.get(f"/servers/{sid}/actions/").json()["results"]
    assert sorted(a["kind"] for a in actions) == ["create", "reboot", "start", "stop"]
    table = user_cli.ok("servers", "actions", sid).stdout
    assert "reboot" in table and "succeeded" in table

    wrong = user_cli("servers", "start", sid)
    assert wrong.exit_code == 1
    assert "not now" in wrong.stderr and "request id" in wrong.stderr


def test_delete_asks_first(user_cli: Cli, api: httpx.Client) -> None:
    server = create_server(api, "doomed")
    sid = str(server["id"])
    declined = user_cli("servers", "delete", sid, input="n\n")
    assert declined.exit_code == 1
    assert "Delete server" in declined.stderr and "doomed" in declined.stderr
    assert api.get(f"/servers/{sid}/").status_code == 200
    confirmed = user_cli("servers", "delete", sid, input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert api.get(f"/servers/{sid}/").status_code == 404

    other = create_server(api, "doomed-too")
    action = user_cli.json("servers", "delete", str(other["id"]), "--yes", "--wait")
    assert action["kind"] == "delete" and action["status"] == "succeeded"
    assert action == api.get(f"/actions/{action['id']}/").json()


def test_ssh_keys(user_cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    added = user_cli.json("ssh-keys", "add", "--name", "laptop", "--public-key", PUBLIC_KEY)
    assert added == api.get(f"/ssh-keys/{added['id']}/").json()
    key_file = tmp_path / "id.pub"
    key_file.write_text(public_key(2, "file@test") + "\n")
    from_file = user_cli.ok("ssh-keys", "add", "--name", "desk", "--public-key-file", str(key_file))
    assert "added SSH key" in from_file.stderr and from_file.stdout.count("desk") == 1

    listed = user_cli.json("ssh-keys", "list")
    assert listed == api.get("/ssh-keys/").json()["results"]
    assert [k["name"] for k in listed] == ["laptop", "desk"]
    assert added["fingerprint"] in user_cli.ok("ssh-keys", "list").stdout
    assert user_cli.json("ssh-keys", "get", str(added["id"])) == added
    assert PUBLIC_KEY in user_cli.ok("ssh-keys", "get", str(added["id"])).stdout

    # A server can name its key by name.
    server = user_cli.json(
        *create_command("keyed", plan="3", system="3", location="us-east"),
        "--ssh-key",
        "laptop",
    )
    assert server["status"] == "provisioning"

    both = user_cli(
        "ssh-keys",
        "add",
        "--name",
        "x",
        "--public-key",
        PUBLIC_KEY,
        "--public-key-file",
        str(key_file),
    )
    assert both.exit_code == 1 and "exactly one" in both.stderr

    deleted = user_cli.ok("ssh-keys", "delete", str(added["id"]), "-o", "json")
    assert deleted.stdout == "" and f"deleted SSH key {added['id']}" in deleted.stderr
    assert api.get(f"/ssh-keys/{added['id']}/").status_code == 404
    gone = user_cli("ssh-keys", "get", str(added["id"]))
    assert gone.exit_code == 1 and f"SSH key {added['id']}" in gone.stderr
