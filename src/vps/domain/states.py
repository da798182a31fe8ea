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

# Statuses in which the machine is powered on.
RUNNING_STATUSES: frozenset[ServerStatus] = frozenset(
    {ServerStatus.ACTIVE, ServerStatus.REBOOTING, ServerStatus.STOPPING}
)


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


def _refusal(kind: ActionKind, status: ServerStatus) -> str:
    if status in TRANSITIONAL_STATUSES:
        return f"The server is {status.value}; wait until it finishes before asking to {kind}."
    if status is ServerStatus.SUSPENDED:
        return f"The server is suspended and cannot {kind}."
    if status is ServerStatus.ERROR:
        return f"The server is in error and cannot {kind}; delete it and create another."
    if kind is ActionKind.START:
        return "The server is already running."
    return "The server is not running."


def plan_power_action(kind: ActionKind, status: ServerStatus) -> PowerAction:
    """Return the transition a power action makes from `status`, or raise InvalidState."""
    action = POWER_ACTIONS[kind]
    if status is not action.allowed_from:
        raise InvalidState(_refusal(kind, status), current_status=status.value)
    return action


def can_delete(status: ServerStatus) -> bool:
    """Deletion is accepted in every visible status, including while busy."""
    return status in VISIBLE_STATUSES
