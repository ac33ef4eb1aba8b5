"""The completion policy of map/parallel (PROTOCOL §7.9.2, §7.9.4)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adurable import (
    BatchItemStatus,
    CompletionConfig,
    CompletionDecision,
    CompletionOutcome,
    CompletionReason,
    CompletionStatus,
    MapConfig,
    ParallelConfig,
    ValidationError,
)
from adurable._ops.completion import CompletionPolicy, ItemsView

R = CompletionReason


def run(config: CompletionConfig, outcomes: list[bool]) -> tuple[int, CompletionReason]:
    """Feed outcomes one by one (True = success); return how many were consumed and the
    reason at the stop (or after all of them)."""
    policy = CompletionPolicy(config, len(outcomes))
    if policy.evaluate():
        return 0, policy.reason()
    for consumed, ok in enumerate(outcomes, start=1):
        if ok:
            policy.succeeded += 1
        else:
            policy.failed += 1
        if policy.evaluate():
            return consumed, policy.reason()
    return len(outcomes), policy.reason()


@pytest.mark.parametrize(
    ("config", "outcomes", "expected"),
    [
        # Default: fail fast on the first failure.
        (CompletionConfig(), [True, False, True, True], (2, R.FAILURE_TOLERANCE_EXCEEDED)),
        (CompletionConfig(), [True, True], (2, R.ALL_COMPLETED)),
        # Parallel's default behaves the same way.
        (CompletionConfig.all_successful(), [False, True], (1, R.FAILURE_TOLERANCE_EXCEEDED)),
        # Counts and percentages are "more than".
        (
            CompletionConfig(tolerated_failure_count=1),
            [False, False],
            (2, R.FAILURE_TOLERANCE_EXCEEDED),
        ),
        (CompletionConfig(tolerated_failure_count=1), [False, True, True], (3, R.ALL_COMPLETED)),
        (
            CompletionConfig(tolerated_failure_percentage=50),
            [False, False, True, True],
            (4, R.ALL_COMPLETED),
        ),
        (
            CompletionConfig(tolerated_failure_percentage=25),
            [False, False, True, True],
            (2, R.FAILURE_TOLERANCE_EXCEEDED),
        ),
        (CompletionConfig.all_completed(), [False, False], (2, R.ALL_COMPLETED)),
        # min_successful alone is a threshold: failures do not stop the batch.
        (
            CompletionConfig.first_successful(),
            [False, False, True, True],
            (3, R.MIN_SUCCESSFUL_REACHED),
        ),
        (CompletionConfig(min_successful=2), [True, False], (2, R.ALL_COMPLETED)),
        # A.5: min_successful=2 with one tolerated failure.
        (
            CompletionConfig(min_successful=2, tolerated_failure_count=1),
            [True, False, True, True],
            (3, R.MIN_SUCCESSFUL_REACHED),
        ),
        # Tolerance wins over "all done" in the reason.
        (
            CompletionConfig(tolerated_failure_count=0),
            [True, False],
            (2, R.FAILURE_TOLERANCE_EXCEEDED),
        ),
        # No items: complete at once.
        (CompletionConfig(), [], (0, R.ALL_COMPLETED)),
    ],
)
def test_policy(
    config: CompletionConfig, outcomes: list[bool], expected: tuple[int, CompletionReason]
) -> None:
    assert run(config, outcomes) == expected


def test_custom_predicate_decides_and_sees_the_counts() -> None:
    seen: list[tuple[int, int, int, int]] = []

    def decide(status: CompletionStatus) -> CompletionDecision:
        seen.append(
            (status.success_count, status.failure_count, status.completed_count, status.total_count)
        )
        if status.failure_count >= 2:
            return CompletionDecision.complete_batch(CompletionOutcome.FAILED)
        if status.success_count >= 2:
            return CompletionDecision.complete_batch()
        return CompletionDecision.continue_batch()

    config = CompletionConfig(should_complete=decide)
    assert run(config, [False, True, False, True]) == (3, R.CUSTOM_COMPLETION_FAILED)
    assert seen == [(0, 0, 0, 4), (0, 1, 1, 4), (1, 1, 2, 4), (1, 2, 3, 4)]
    assert run(config, [True, True, False]) == (2, R.CUSTOM_COMPLETION_SUCCEEDED)
    # The predicate never "exceeds tolerance"; all done without a decision → ALL_COMPLETED.
    never = CompletionConfig(should_complete=lambda _: CompletionDecision.continue_batch())
    assert run(never, [False, False]) == (2, R.ALL_COMPLETED)


def test_predicate_is_evaluated_before_anything_starts() -> None:
    config = CompletionConfig(should_complete=lambda _: CompletionDecision.complete_batch())
    assert run(config, [True, True]) == (0, R.CUSTOM_COMPLETION_SUCCEEDED)


def test_items_view_is_a_read_only_sequence() -> None:
    statuses: list[BatchItemStatus | None] = [
        BatchItemStatus.SUCCEEDED,
        None,
        BatchItemStatus.STARTED,
    ]
    view = ItemsView(lambda i: f"n{i}", statuses)
    assert len(view) == 3
    assert [(i.index, i.name, i.status) for i in view] == [
        (0, "n0", "SUCCEEDED"),
        (1, "n1", None),
        (2, "n2", "STARTED"),
    ]
    assert view[-1].index == 2
    assert [i.index for i in view[1:]] == [1, 2]
    statuses[1] = BatchItemStatus.FAILED  # live: reflects the current state
    assert view[1].status == "FAILED"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_successful": 0}, "min_successful"),
        ({"tolerated_failure_count": -1}, "tolerated_failure_count"),
        ({"tolerated_failure_percentage": 101}, "percentage"),
        ({"tolerated_failure_percentage": -0.5}, "percentage"),
        ({"should_complete": 3}, "callable"),
        (
            {"should_complete": lambda s: CompletionDecision.continue_batch(), "min_successful": 1},
            "do not combine",
        ),
    ],
)
def test_completion_config_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CompletionConfig(**kwargs)


@pytest.mark.parametrize("cls", [MapConfig, ParallelConfig])
@pytest.mark.parametrize("value", [0, -1])
def test_max_concurrency_below_one_is_rejected(cls: type[Any], value: int) -> None:
    with pytest.raises(ValidationError, match="max_concurrency"):
        cls(max_concurrency=value)


def test_defaults() -> None:
    assert MapConfig().completion_config == CompletionConfig()
    assert ParallelConfig().completion_config == CompletionConfig(
        tolerated_failure_count=0, tolerated_failure_percentage=0
    )


# -- properties ---------------------------------------------------------------------------------

configs = st.one_of(
    st.builds(CompletionConfig),
    st.builds(
        CompletionConfig,
        min_successful=st.none() | st.integers(1, 6),
        tolerated_failure_count=st.none() | st.integers(0, 6),
        tolerated_failure_percentage=st.none() | st.floats(0, 100),
    ),
)


@given(configs, st.lists(st.booleans(), max_size=8))
def test_policy_properties(config: CompletionConfig, outcomes: list[bool]) -> None:
    consumed, reason = run(config, outcomes)
    done = outcomes[:consumed]
    succeeded, failed = done.count(True), done.count(False)
    thresholds = (
        config.min_successful,
        config.tolerated_failure_count,
        config.tolerated_failure_percentage,
    )
    if all(t is None for t in thresholds):  # fail fast: stop exactly at the first failure
        expected = outcomes.index(False) + 1 if False in outcomes else len(outcomes)
        assert consumed == expected
    if reason is R.FAILURE_TOLERANCE_EXCEEDED:
        assert failed > 0
    if reason is R.MIN_SUCCESSFUL_REACHED:
        assert config.min_successful is not None and succeeded >= config.min_successful
        assert consumed < len(outcomes)
    if consumed < len(outcomes):  # stopped early: for a reason other than "all done"
        assert reason in (R.FAILURE_TOLERANCE_EXCEEDED, R.MIN_SUCCESSFUL_REACHED)
    else:
        assert reason in (R.FAILURE_TOLERANCE_EXCEEDED, R.ALL_COMPLETED)
