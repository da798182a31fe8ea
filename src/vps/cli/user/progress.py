"""`--wait`: follow an action to its end, showing the server's status and the time spent.

The action is the source of truth (every mutating request returns one): it ends
`succeeded` or `failed`, with the reason. The wait long-polls it (`?wait=`), in short
slices so that the display shows the server's current status between them, and so that
the deadline is kept even when the API answers at once (an API without long-poll).
On a terminal the display is a Rich spinner on stderr; elsewhere (a pipe, a CI log) it is
one plain line per status change.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from vps.cli.user.output import as_json, message, stderr_console
from vps.cli.user.session import EXIT_FAILED, EXIT_TIMED_OUT
from vps.client import Client

EXIT_INTERRUPTED = 130
# Long enough to spare the API, short enough to refresh the status line often.
_SLICE_SECONDS = 2.0
# Below this an answer to `?wait=` came back at once: pause so as not to spin on the API.
_MIN_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class WaitOutcome:
    """How a wait ended: `exit_code` 0 (done), 1 (failed), 2 (timed out) or 130 (Ctrl-C)."""

    exit_code: int
    summary: str
    action: dict[str, Any]
    server: dict[str, Any] | None


@contextmanager
def _display(title: str) -> Iterator[Callable[[str], None]]:
    console = stderr_console()
    if not console.is_terminal:
        last: list[str] = []

        def note(status: str) -> None:
            if not last or last[-1] != status:
                last.append(status)
                message(f"{title}: {status}")

        yield note
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(title, total=None)

        def update(status: str) -> None:
            progress.update(task, description=f"{title}: {status}")

        yield update


def wait_for_action(
    client: Client,
    *,
    server_id: int,
    action_id: int,
    verb: str,
    target_status: str | None,
    timeout: float,
    initial_status: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> WaitOutcome:
    """Wait until the action ends and, when `target_status` is given, the server has it.

    `verb` says what is awaited, for the messages ("build", "start", "delete"), and
    `initial_status` is what the display shows until the first answer. A failed action, or
    a server that ends up elsewhere than `target_status`, is a failure.
    """
    deadline = clock() + timeout
    title = f"server {server_id}: waiting for {verb}"
    action: dict[str, Any] = {}
    server: dict[str, Any] | None = None
    try:
        with _display(title) as show:
            show(initial_status or "waiting")
            while True:
                remaining = deadline - clock()
                if remaining <= 0:
                    status = (server or {}).get("status") or action.get("status", "unknown")
                    return WaitOutcome(
                        EXIT_TIMED_OUT,
                        f"timed out after {timeout:g} s waiting for server {server_id} to finish "
                        f"its {verb} (still {status}); it may yet finish: "
                        f"`vps servers get {server_id}`",
                        action,
                        server,
                    )
                asked = clock()
                wait_seconds = max(1, math.ceil(min(remaining, _SLICE_SECONDS)))
                action = as_json(client.actions.get(action_id, wait=wait_seconds))
                if target_status is not None:
                    server = as_json(client.servers.get(server_id))
                    show(str(server.get("status")))
                else:
                    show(f"action {action.get('status')}")
                if action.get("status") != "running":
                    break
                if clock() - asked < _MIN_POLL_SECONDS:
                    time.sleep(_MIN_POLL_SECONDS)
    except KeyboardInterrupt:
        # Ctrl-C stops the wait, not the action: say where to look next.
        return WaitOutcome(
            EXIT_INTERRUPTED,
            f"stopped waiting; server {server_id}'s {verb} carries on: "
            f"`vps servers get {server_id}`",
            action,
            server,
        )
    return _judge(server_id, verb, target_status, action, server)


def _judge(
    server_id: int,
    verb: str,
    target_status: str | None,
    action: dict[str, Any],
    server: dict[str, Any] | None,
) -> WaitOutcome:
    if action.get("status") == "failed":
        error = action.get("error") or {}
        reason = error.get("message") or "no reason given"
        code = f" [{error['code']}]" if error.get("code") else ""
        where = f"; the server is {server.get('status')}" if server else ""
        return WaitOutcome(
            EXIT_FAILED, f"server {server_id}: {verb} failed: {reason}{code}{where}", action, server
        )
    if target_status is not None and server is not None and server.get("status") != target_status:
        return WaitOutcome(
            EXIT_FAILED,
            f"server {server_id}: {verb} finished but the server is {server.get('status')}, "
            f"not {target_status}",
            action,
            server,
        )
    final = target_status or "done"
    return WaitOutcome(0, f"server {server_id}: {verb} done ({final})", action, server)
