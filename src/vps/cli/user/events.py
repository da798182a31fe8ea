"""`vps servers events [ID]`: follow the event stream, one line per event."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from vps.cli.user.output import OutputFormat, as_json, message, status_text, stdout_console
from vps.cli.user.session import Invocation, api_command


def _error(error: dict[str, Any] | None) -> str:
    return f"  error: {error.get('message')} [{error.get('code')}]" if error else ""


def event_line(event: dict[str, Any]) -> Text:
    """A person's view of one event: when, which server, what changed."""
    line = Text(f"{event.get('occurred_at') or '-'}  ")
    kind = event.get("type")
    if kind == "reset":
        line.append(
            f"reset: {event.get('reason') or 'events were lost'}; "
            "read the state again (`vps servers list`)",
            style="bold",
        )
        return line
    line.append(f"server {event.get('server_id')}  ")
    if kind == "server.status":
        line.append_text(status_text(event.get("previous_status")))
        line.append(" -> ")
        line.append_text(status_text(event.get("status")))
        line.append(_error(event.get("error")))
    elif kind == "action.status":
        action = event.get("action") or {}
        line.append(f"action {action.get('id', event.get('action_id'))} ({action.get('kind')}) ")
        line.append_text(status_text(action.get("status")))
        line.append(_error(action.get("error")))
    elif kind == "server.updated":
        changes = event.get("changes") or {}
        line.append("updated " + ", ".join(f"{key}={value}" for key, value in changes.items()))
    else:
        line.append(f"{kind}")
    return line


@api_command
def follow_events(
    call: Invocation,
    server_id: Annotated[
        int | None,
        typer.Argument(help="Only this server's events (default: the whole account's)", min=1),
    ] = None,
    after: Annotated[
        int | None,
        typer.Option(
            "--after", min=0, help="First replay the kept events after this event id (0: all)"
        ),
    ] = None,
) -> None:
    """Follow events as they happen (Ctrl-C to stop). With -o json, one JSON object a line.

    A server's stream ends once the server is deleted."""
    subject = f"server {server_id}" if server_id is not None else None
    with call.client(subject=subject) as client:
        stream = (
            client.servers.events(server_id, last_event_id=after)
            if server_id is not None
            else client.events(last_event_id=after)
        )
        message(f"following the events of {subject or 'the account'} (Ctrl-C to stop)")
        console = stdout_console()
        try:
            for event in stream:
                body = as_json(event)
                if call.output is OutputFormat.json:
                    typer.echo(json.dumps(body, ensure_ascii=False))
                else:
                    console.print(event_line(body), soft_wrap=True, highlight=False)
        except KeyboardInterrupt:
            message("stopped")
            return
    message(f"{subject} is deleted: no more events")
