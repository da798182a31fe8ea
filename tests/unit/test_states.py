"""The server state machine as data: every (status, power action) pair, delete, work table."""

from __future__ import annotations

import pytest

from vps.domain.errors import InvalidState
from vps.domain.states import (
    POWER_ACTIONS,
    RENEWED_STATUSES,
    RESUMED_STATUS,
    RUNNING_STATUSES,
    SUSPENDABLE_STATUSES,
    TRANSITIONAL_STATUSES,
    VISIBLE_STATUSES,
    WORK,
    ActionKind,
    ServerStatus,
    can_delete,
    plan_power_action,
)

S = ServerStatus

# The rules, written out independently of the module under test:
# (action) -> (the only status it is allowed from, the status it moves to, the message).
EXPECTED_ALLOWED: dict[ActionKind, tuple[ServerStatus, ServerStatus, str]] = {
    ActionKind.START: (S.STOPPED, S.STARTING, "Server is starting"),
    ActionKind.STOP: (S.ACTIVE, S.STOPPING, "Server is stopping"),
    ActionKind.REBOOT: (S.ACTIVE, S.REBOOTING, "Server is rebooting"),
}
POWER_KINDS = [ActionKind.START, ActionKind.STOP, ActionKind.REBOOT]
VISIBLE = {
    S.PROVISIONING,
    S.ACTIVE,
    S.STARTING,
    S.STOPPING,
    S.STOPPED,
    S.REBOOTING,
    S.SUSPENDED,
    S.ERROR,
}


def test_status_values_are_the_documented_strings() -> None:
    assert {s.value for s in ServerStatus} == {
        "provisioning",
        "active",
        "starting",
        "stopping",
        "stopped",
        "rebooting",
        "suspended",
        "error",
        "deleting",
        "deleted",
    }


def test_visible_statuses_exclude_deleting_and_deleted() -> None:
    assert set(VISIBLE_STATUSES) == VISIBLE
    assert S.DELETING not in VISIBLE_STATUSES
    assert S.DELETED not in VISIBLE_STATUSES


def test_power_action_table_has_exactly_the_three_actions() -> None:
    assert set(POWER_ACTIONS) == set(EXPECTED_ALLOWED)
    for kind, (source, target, message) in EXPECTED_ALLOWED.items():
        action = POWER_ACTIONS[kind]
        assert (action.kind, action.allowed_from, action.target, action.message) == (
            kind,
            source,
            target,
            message,
        )


@pytest.mark.parametrize("status", list(ServerStatus), ids=lambda s: s.value)
@pytest.mark.parametrize("kind", POWER_KINDS, ids=lambda k: k.value)
def test_every_status_and_power_action(kind: ActionKind, status: ServerStatus) -> None:
    source, target, message = EXPECTED_ALLOWED[kind]
    if status is source:
        action = plan_power_action(kind, status)
        assert action.kind is kind
        assert action.allowed_from is source
        assert action.target is target
        assert action.message == message
    else:
        with pytest.raises(InvalidState) as caught:
            plan_power_action(kind, status)
        assert caught.value.code == "invalid_state"
        assert caught.value.current_status == status.value
        assert caught.value.message


def test_exactly_three_pairs_are_allowed() -> None:
    allowed = set()
    for kind in POWER_KINDS:
        for status in ServerStatus:
            try:
                plan_power_action(kind, status)
            except InvalidState:
                continue
            allowed.add((kind, status))
    assert allowed == {
        (ActionKind.START, S.STOPPED),
        (ActionKind.STOP, S.ACTIVE),
        (ActionKind.REBOOT, S.ACTIVE),
    }


@pytest.mark.parametrize(
    ("kind", "status", "fragment"),
    [
        (ActionKind.START, S.ACTIVE, "already running"),
        (ActionKind.STOP, S.STOPPED, "not running"),
        (ActionKind.REBOOT, S.STOPPED, "not running"),
        (ActionKind.START, S.SUSPENDED, "suspended"),
        (ActionKind.STOP, S.ERROR, "error"),
        (ActionKind.REBOOT, S.PROVISIONING, "provisioning"),
        (ActionKind.START, S.STOPPING, "stopping"),
    ],
)
def test_refusals_explain_themselves(kind: ActionKind, status: ServerStatus, fragment: str) -> None:
    with pytest.raises(InvalidState) as caught:
        plan_power_action(kind, status)
    assert fragment in caught.value.message


@pytest.mark.parametrize("status", list(ServerStatus), ids=lambda s: s.value)
def test_delete_is_accepted_in_every_visible_status_only(status: ServerStatus) -> None:
    assert can_delete(status) is (status in VISIBLE)


def test_work_table_names_success_and_failure_statuses() -> None:
    assert WORK == {
        S.PROVISIONING: (S.ACTIVE, S.ERROR),
        S.STARTING: (S.ACTIVE, S.STOPPED),
        S.STOPPING: (S.STOPPED, S.ACTIVE),
        S.REBOOTING: (S.ACTIVE, S.ACTIVE),
        S.DELETING: (S.DELETED, S.DELETING),
    }
    assert set(TRANSITIONAL_STATUSES) == {
        S.PROVISIONING,
        S.STARTING,
        S.STOPPING,
        S.REBOOTING,
        S.DELETING,
    }


def test_every_power_target_is_work_for_a_worker() -> None:
    for action in POWER_ACTIONS.values():
        assert action.target in TRANSITIONAL_STATUSES
        assert action.allowed_from not in TRANSITIONAL_STATUSES


def test_running_statuses() -> None:
    assert set(RUNNING_STATUSES) == {S.ACTIVE, S.REBOOTING, S.STOPPING}


def test_billing_renews_settled_and_busy_servers_and_suspends_only_settled_ones() -> None:
    assert set(RENEWED_STATUSES) == {S.ACTIVE, S.STARTING, S.STOPPING, S.STOPPED, S.REBOOTING}
    assert set(SUSPENDABLE_STATUSES) == {S.ACTIVE, S.STOPPED}
    assert SUSPENDABLE_STATUSES <= RENEWED_STATUSES
    assert not SUSPENDABLE_STATUSES & TRANSITIONAL_STATUSES
    # A resumed server is started by a worker like any other start.
    assert RESUMED_STATUS is S.STARTING
    assert WORK[RESUMED_STATUS][0] is S.ACTIVE


@pytest.mark.parametrize("kind", POWER_KINDS, ids=lambda k: k.value)
def test_an_unpaid_suspension_says_how_to_lift_it(kind: ActionKind) -> None:
    with pytest.raises(InvalidState) as caught:
        plan_power_action(kind, S.SUSPENDED, unpaid=True)
    assert caught.value.current_status == "suspended"
    assert "suspended" in caught.value.message
    assert "Top up" in caught.value.message
    with pytest.raises(InvalidState) as plain:
        plan_power_action(kind, S.SUSPENDED)
    assert "Top up" not in plain.value.message
