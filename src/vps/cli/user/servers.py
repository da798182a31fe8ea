"""`vps servers ...`: list, inspect, create, change, power and delete servers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from vps.cli.user.catalog import choose
from vps.cli.user.events import follow_events
from vps.cli.user.keys import every_key
from vps.cli.user.output import OutputFormat, as_json, message, print_json, show, show_list
from vps.cli.user.progress import WaitOutcome, wait_for_action
from vps.cli.user.session import Invocation, api_command, every_result, fail
from vps.cli.user.views import ACTION_COLUMNS, SERVER_COLUMNS, SERVER_FIELDS
from vps.client import Client, Server

servers_app = typer.Typer(
    help="Your servers: create, inspect, power and delete them.", no_args_is_help=True
)

ServerId = Annotated[int, typer.Argument(help="The server's id", min=1, show_default=False)]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Follow the action until it ends (exit 1 failed, 2 timeout)")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds --wait waits before giving up")
]
DEFAULT_TIMEOUT = 300.0


def _end_wait(outcome: WaitOutcome) -> None:
    """Say where the wait ended; unless it succeeded, exit with its code (1 failed, 2 timeout)."""
    if outcome.exit_code != 0:
        raise fail(outcome.summary, outcome.exit_code)
    message(outcome.summary)


def _show_or_wait(
    client: Client,
    answer: dict[str, Any],
    *,
    verb: str,
    target_status: str,
    wait: bool,
    timeout: float,
    output: OutputFormat,
) -> None:
    """After a request that started an action on a server (`answer`: the server, with the
    action): print the server at once, or with --wait once it has `target_status`."""
    if not wait:
        show(answer, output, SERVER_FIELDS)
        return
    outcome = wait_for_action(
        client,
        server_id=answer["id"],
        action_id=answer["action"]["id"],
        verb=verb,
        target_status=target_status,
        timeout=timeout,
        initial_status=answer.get("status"),
    )
    _end_wait(outcome)
    show(outcome.server or client.servers.get(answer["id"]), output, SERVER_FIELDS)


@servers_app.command("list")
@api_command
def list_servers(
    call: Invocation,
    status: Annotated[str | None, typer.Option(help="Only servers in this status")] = None,
    location: Annotated[str | None, typer.Option(help="Only servers in this location")] = None,
    page: Annotated[int | None, typer.Option(min=1, help="Page number")] = None,
    page_size: Annotated[int | None, typer.Option(min=1, max=100, help="Servers per page")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every page, not just one")] = False,
) -> None:
    """Your servers, one page at a time (or all of them with --all)."""
    with call.client() as client:
        if every:
            servers = list(
                client.servers.iterate(status=status, location=location, page_size=page_size or 100)
            )
            show_list(servers, call.output, SERVER_COLUMNS, empty="no servers")
            return
        found = client.servers.list(
            status=status, location=location, page=page, page_size=page_size
        )
        show_list(found.results, call.output, SERVER_COLUMNS, empty="no servers on this page")
        if found.next and call.output is OutputFormat.table:
            shown = len(found.results)
            message(
                f"{shown} of {found.count} servers shown; "
                f"next: --page {(page or 1) + 1}, or --all for every page"
            )


@servers_app.command("get")
@api_command
def get_server(call: Invocation, server_id: ServerId) -> None:
    """One server in detail: addresses, plan, OS, resource usage."""
    with call.client(subject=f"server {server_id}") as client:
        show(client.servers.get(server_id), call.output, SERVER_FIELDS)


def _ssh_key_id(client: Client, wanted: str) -> int:
    return choose("SSH key", wanted, every_key(client))


@servers_app.command("create")
@api_command
def create_server(
    call: Invocation,
    name: Annotated[str, typer.Option(help="Letters, digits and hyphens", show_default=False)],
    plan: Annotated[
        str, typer.Option(help="Plan id or name (see `vps plans`)", show_default=False)
    ],
    operating_system: Annotated[
        str, typer.Option("--os", help="OS id or name (see `vps os`)", show_default=False)
    ],
    location: Annotated[
        str, typer.Option(help="Location code (see `vps locations`)", show_default=False)
    ],
    hostname: Annotated[str | None, typer.Option(help="Fully qualified domain name")] = None,
    ssh_key: Annotated[
        str | None, typer.Option("--ssh-key", help="SSH key id or name to install")
    ] = None,
    backups: Annotated[bool, typer.Option("--backups", help="Enable backups (extra cost)")] = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Create a server (charges its first month). With --wait, until it is active."""
    with call.client() as client:
        plan_id = choose("plan", plan, client.plans.list())
        os_id = choose("operating system", operating_system, client.operating_systems.list())
        key_id = _ssh_key_id(client, ssh_key) if ssh_key else None
        created = client.servers.create(
            name=name,
            plan_id=plan_id,
            os_id=os_id,
            location=location,
            hostname=hostname,
            ssh_key_id=key_id,
            backups_enabled=backups,
        )
        body = as_json(created)
        message(f"server {body['id']} ({body['name']}): {body.get('message', 'created')}")
        _show_or_wait(
            client,
            body,
            verb="build",
            target_status="active",
            wait=wait,
            timeout=timeout,
            output=call.output,
        )


@servers_app.command("update")
@api_command
def update_server(
    call: Invocation,
    server_id: ServerId,
    name: Annotated[str | None, typer.Option(help="New name")] = None,
    hostname: Annotated[str | None, typer.Option(help="New hostname")] = None,
    backups: Annotated[
        bool | None, typer.Option("--backups/--no-backups", help="Turn backups on or off")
    ] = None,
) -> None:
    """Change a server's name, hostname or backups (only what is given)."""
    changes: dict[str, Any] = {
        key: value
        for key, value in (("name", name), ("hostname", hostname), ("backups_enabled", backups))
        if value is not None
    }
    if not changes:
        raise fail("nothing to change: give --name, --hostname, --backups or --no-backups")
    with call.client(subject=f"server {server_id}") as client:
        updated = client.servers.update(server_id, **changes)
        message(f"server {server_id} updated: {', '.join(sorted(changes))}")
        show(updated, call.output, SERVER_FIELDS)


@servers_app.command("delete")
@api_command
def delete_server(
    call: Invocation,
    server_id: ServerId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Delete a server and destroy its machine (asks first, unless --yes)."""
    with call.client(subject=f"server {server_id}") as client:
        if not yes:
            server = as_json(client.servers.get(server_id))
            question = f"Delete server {server_id} ({server['name']}) and destroy its data?"
            if not typer.confirm(question, err=True):
                raise fail("not deleted")
        action = as_json(client.servers.delete(server_id))
        message(f"server {server_id}: deleting (action {action['id']})")
        if wait:
            outcome = wait_for_action(
                client,
                server_id=server_id,
                action_id=action["id"],
                verb="delete",
                target_status=None,
                timeout=timeout,
            )
            _end_wait(outcome)
            action = outcome.action
        if call.output is OutputFormat.json:
            print_json(action)


@dataclass(frozen=True)
class PowerCommand:
    """`vps servers start|stop|reboot`: the request, and the status --wait waits for."""

    verb: str
    target_status: str
    request: Callable[[Client, int], Server]
    summary: str


POWER_COMMANDS = (
    PowerCommand(
        "start",
        "active",
        lambda client, server_id: client.servers.start(server_id),
        "Power a stopped server on. With --wait, until it is active.",
    ),
    PowerCommand(
        "stop",
        "stopped",
        lambda client, server_id: client.servers.stop(server_id),
        "Shut an active server down. With --wait, until it is stopped.",
    ),
    PowerCommand(
        "reboot",
        "active",
        lambda client, server_id: client.servers.reboot(server_id),
        "Reboot an active server. With --wait, until it is active again.",
    ),
)


def _power_command(power: PowerCommand) -> Callable[..., None]:
    def command(
        call: Invocation,
        server_id: ServerId,
        wait: WaitOption = False,
        timeout: TimeoutOption = DEFAULT_TIMEOUT,
    ) -> None:
        with call.client(subject=f"server {server_id}") as client:
            # The server as it is now, with the action the request started and its message.
            answer = as_json(power.request(client, server_id))
            message(f"server {server_id}: {answer.get('message', power.verb)}")
            _show_or_wait(
                client,
                answer,
                verb=power.verb,
                target_status=power.target_status,
                wait=wait,
                timeout=timeout,
                output=call.output,
            )

    command.__name__ = f"{power.verb}_server"
    command.__doc__ = power.summary
    return api_command(command)


for _power in POWER_COMMANDS:
    servers_app.command(_power.verb)(_power_command(_power))


@servers_app.command("actions")
@api_command
def list_actions(call: Invocation, server_id: ServerId) -> None:
    """A server's actions (create, start, stop, reboot) and how each one ended."""
    with call.client(subject=f"server {server_id}") as client:
        actions = every_result(
            lambda page: client.servers.actions(server_id, page=page, page_size=100)
        )
        show_list(actions, call.output, ACTION_COLUMNS, empty=f"server {server_id} has no actions")


servers_app.command("events")(follow_events)
