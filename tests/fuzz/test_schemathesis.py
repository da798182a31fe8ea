"""Schemathesis against our own OpenAPI document: every operation with valid and invalid
data (its examples, coverage and fuzzing phases), then workflows that follow the
document's links (the stateful phase), with every check Schemathesis has: no 5xx,
responses as documented, invalid data refused, authentication enforced."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis

from tests.fuzz.client import AnyCase, FuzzAccount, as_a_client_would

# At least this many generated requests per run (the requirement); the test fails below it,
# so the fuzzing cannot quietly shrink to nothing.
MIN_CASES = 1_000

# The stateful phase: short runs of scenarios (up to ten linked calls each) until this many
# calls were made.
STATEFUL_CALLS = 600
STATEFUL_SCENARIOS_PER_RUN = 20
STATEFUL_MAX_RUNS = 40

CASES: Counter[str] = Counter()
ELAPSED: dict[str, float] = {}

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module", autouse=True)
def _count_cases() -> Any:
    yield
    print(
        f"\nSchemathesis: {CASES['stateless']} stateless cases "
        f"({ELAPSED.get('stateless', 0):.1f} s), {CASES['stateful']} stateful calls "
        f"({ELAPSED.get('stateful', 0):.1f} s) in {CASES['stateful runs']} runs "
        f"({CASES['stateful runs ended early']} ended early)"
    )


@schema.parametrize()
def test_every_operation(case: AnyCase, fuzz_account: FuzzAccount) -> None:
    started = time.monotonic()
    as_a_client_would(case, fuzz_account)
    try:
        case.call_and_validate()
    finally:
        CASES["stateless"] += 1
        ELAPSED["stateless"] = ELAPSED.get("stateless", 0.0) + time.monotonic() - started


def test_workflows(api_schema: schemathesis.BaseSchema, fuzz_account: FuzzAccount) -> None:
    workflow: Any = api_schema.as_state_machine()

    class Workflow(workflow):  # type: ignore[misc]
        def before_call(self, case: AnyCase) -> None:
            as_a_client_would(case, fuzz_account)

        def after_call(self, response: schemathesis.Response, case: AnyCase) -> None:
            CASES["stateful"] += 1

    settings = hypothesis.settings(
        max_examples=STATEFUL_SCENARIOS_PER_RUN,
        stateful_step_count=10,
        deadline=None,
        database=None,
        # The API's timing (how far the worker got) makes every stateful run differ anyway:
        # a fixed seed would only repeat the same scenarios in each run below.
        derandomize=False,
        # Shrinking replays a scenario against an API whose state has moved on since; a
        # failing scenario of at most ten steps is reported as it ran.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    started = time.monotonic()
    runs = 0
    while CASES["stateful"] < STATEFUL_CALLS:
        runs += 1
        assert runs <= STATEFUL_MAX_RUNS, f"{CASES['stateful']} stateful calls in {runs} runs"
        try:
            Workflow.run(settings=settings)
        except hypothesis.errors.FlakyStrategyDefinition:
            CASES["stateful runs ended early"] += 1
            # The API's answers decide which steps can come next (a server built in time
            # can be stopped, one still provisioning cannot), so a scenario Hypothesis
            # builds on an earlier one's first steps may find other steps available, and
            # Hypothesis ends the run. Not a failure of the API (every step that ran was
            # checked): the next run goes on, as Schemathesis's own runner does.
            continue
    CASES["stateful runs"] = runs
    ELAPSED["stateful"] = time.monotonic() - started


def test_enough_cases_were_generated() -> None:
    if "stateless" not in CASES or "stateful" not in CASES:
        pytest.skip("counts the cases of the two tests above; run the module")
    total = CASES["stateless"] + CASES["stateful"]
    assert total >= MIN_CASES, f"only {total} generated requests (at least {MIN_CASES})"
