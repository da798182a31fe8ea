"""The server state machine, as data.

A server has one `status`. Stable statuses wait for a user; transitional statuses are work
for a worker, which calls the driver and then moves the server to the status the table
below names. Every user action is checked against `ACTION_RULES`; a transition is claimed in
the database with a conditional update on the expected status, so two racing requests cannot
both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vps.domain.errors import InvalidState


class ServerStatus(StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    STARTING = "starting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    REBOOTING = "rebooting"
    SUSPENDED = "suspended"
    ERROR = "error"
    # Internal: the server is gone for its owner (404) while the machine is destroyed.
    DELETING = "deleting"
    DELETED = "deleted"


class ActionKind(StrEnum):
    CREATE = "create"
    START = "start"
    STOP = "stop"
    REBOOT = "reboot"
    DELETE = "delete"


class ActionStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def action_progress(status: str) -> int:
    """Percent done: no estimate while running, 100 once finished (either way)."""
    return 0 if status == ActionStatus.RUNNING.value else 100


# Statuses an owner can see; DELETING and DELETED answer 404.
VISIBLE_STATUSES: frozenset[ServerStatus] = frozenset(ServerStatus) - {
    ServerStatus.DELETING,
    ServerStatus.DELETED,
}

# Work a worker must do: transitional status -> (status on success, status on failure).
# A failed create ends in ERROR (and is refunded); a failed power action returns the server to
# the stable status it left; a delete is retried until the machine is gone.
WORK: dict[ServerStatus, tuple[ServerStatus, ServerStatus]] = {
    ServerStatus.PROVISIONING: (ServerStatus.ACTIVE, ServerStatus.ERROR),
    ServerStatus.STARTING: (ServerStatus.ACTIVE, ServerStatus.STOPPED),
    ServerStatus.STOPPING: (ServerStatus.STOPPED, ServerStatus.ACTIVE),
    ServerStatus.REBOOTING: (ServerStatus.ACTIVE, ServerStatus.ACTIVE),
    ServerStatus.DELETING: (ServerStatus.DELETED, ServerStatus.DELETING),
}

TRANSITIONAL_STATUSES: frozenset[ServerStatus] = frozenset(WORK)

# Statuses a server stays in until a request (or billing) moves it: a long-poll ends there.
SETTLED_STATUSES: frozenset[ServerStatus] = VISIBLE_STATUSES - TRANSITIONAL_STATUSES


def wait_is_over(status: str, wait_for: ServerStatus | None, initial: str) -> bool:
    """Whether a long-poll on a server can answer: the server reached `wait_for`, or settled
    in a status it will not leave by itself; without `wait_for`, once its status changed."""
    if wait_for is None:
        return status != initial
    return status == wait_for.value or ServerStatus(status) in SETTLED_STATUSES


# Statuses in which the machine is powered on.
RUNNING_STATUSES: frozenset[ServerStatus] = frozenset(
    {ServerStatus.ACTIVE, ServerStatus.REBOOTING, ServerStatus.STOPPING}
)


# Billing (see `vps.domain.billing`). The worker charges a server's next period when it is
# due in any of these statuses: a server still being built, in error (refunded), suspended
# (unpaid) or deleted is not renewed.
RENEWED_STATUSES: frozenset[ServerStatus] = frozenset(
    {
        ServerStatus.ACTIVE,
        ServerStatus.STARTING,
        ServerStatus.STOPPING,
        ServerStatus.STOPPED,
        ServerStatus.REBOOTING,
    }
)
# A server whose account cannot pay its next period is suspended from a stable status; one in
# a transitional status is left to settle first (its worker holds it).
SUSPENDABLE_STATUSES: frozenset[ServerStatus] = frozenset(
    {ServerStatus.ACTIVE, ServerStatus.STOPPED}
)
# A top-up that pays for a suspended server's next period starts it again.
RESUMED_STATUS = ServerStatus.STARTING


@dataclass(frozen=True)
class PowerAction:
    kind: ActionKind
    allowed_from: ServerStatus
    target: ServerStatus
    message: str  # the spec's `message` for a command that was accepted


POWER_ACTIONS: dict[ActionKind, PowerAction] = {
    ActionKind.START: PowerAction(
        ActionKind.START, ServerStatus.STOPPED, ServerStatus.STARTING, "Server is starting"
    ),
    ActionKind.STOP: PowerAction(
        ActionKind.STOP, ServerStatus.ACTIVE, ServerStatus.STOPPING, "Server is stopping"
    ),
    ActionKind.REBOOT: PowerAction(
        ActionKind.REBOOT, ServerStatus.ACTIVE, ServerStatus.REBOOTING, "Server is rebooting"
    ),
}


def _refusal(kind: ActionKind, status: ServerStatus, unpaid: bool) -> str:
    if status in TRANSITIONAL_STATUSES:
        return f"The server is {status.value}; wait until it finishes before asking to {kind}."
    if status is ServerStatus.SUSPENDED and unpaid:
        return (
            f"The server is suspended because the account's credits did not cover its next "
            f"billing period, and cannot {kind}. Top up the account's credits to resume it: "
            "it is then charged and started again."
        )
    if status is ServerStatus.SUSPENDED:
        return f"The server is suspended and cannot {kind}."
    if status is ServerStatus.ERROR:
        return f"The server is in error and cannot {kind}; delete it and create another."
    if kind is ActionKind.START:
        return "The server is already running."
    return "The server is not running."


def plan_power_action(
    kind: ActionKind, status: ServerStatus, *, unpaid: bool = False
) -> PowerAction:
    """Return the transition a power action makes from `status`, or raise InvalidState.

    `unpaid` says a suspension is for lack of credits, so the refusal can say how to lift it.
    """
    action = POWER_ACTIONS[kind]
    if status is not action.allowed_from:
        raise InvalidState(_refusal(kind, status, unpaid), current_status=status.value)
    return action


def can_delete(status: ServerStatus) -> bool:
    """Deletion is accepted in every visible status, including while busy."""
    return status in VISIBLE_STATUSES
