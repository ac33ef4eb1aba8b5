"""PROTOCOL §7.2 / §11.2: retry strategies, presets and their filters."""

from __future__ import annotations

import contextlib
import math
import random
import re
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adurable._duration import Duration
from adurable._retry import (
    JitterStrategy,
    LinearRetryStrategyConfig,
    RetryDecision,
    RetryPresets,
    RetryStrategy,
    RetryStrategyConfig,
    create_linear_retry_strategy,
    create_retry_strategy,
)

BOOM = RuntimeError("boom")


@contextlib.contextmanager
def fixed_random(value: float) -> Iterator[None]:
    """Make the module-level ``random.random()`` return ``value``."""
    with mock.patch.object(random, "random", lambda: value):
        yield


@pytest.fixture
def top_of_jitter() -> Iterator[None]:
    """FULL and HALF jitter give exactly the base delay."""
    with fixed_random(1.0):
        yield


def schedule(strategy: RetryStrategy, error: Exception = BOOM) -> list[int]:
    """Delays (seconds) of every retry the strategy grants, until it gives up."""
    delays: list[int] = []
    for attempts_made in range(1, 1000):
        decision = strategy(error, attempts_made)
        if not decision.should_retry:
            assert decision.delay == Duration(0)
            return delays
        delays.append(decision.delay_seconds)
    raise AssertionError("strategy never gave up")


# -- decisions and configs ----------------------------------------------------------------------


def test_retry_decision_factories() -> None:
    assert RetryDecision.retry(Duration(7)) == RetryDecision(True, Duration(7))
    assert RetryDecision.retry(Duration(7)).delay_seconds == 7
    assert RetryDecision.no_retry() == RetryDecision(should_retry=False, delay=Duration())


def test_config_defaults() -> None:
    assert RetryStrategyConfig() == RetryStrategyConfig(
        max_attempts=3,
        initial_delay=Duration(5),
        max_delay=Duration.from_minutes(5),
        backoff_rate=2.0,
        jitter_strategy=JitterStrategy.FULL,
        retryable_errors=None,
        retryable_error_types=None,
    )
    assert LinearRetryStrategyConfig() == LinearRetryStrategyConfig(
        max_attempts=6,
        initial_delay=Duration(1),
        increment=Duration(1),
        max_delay=Duration(300),
        jitter_strategy=JitterStrategy.FULL,
        retryable_errors=None,
        retryable_error_types=None,
    )


def test_jitter_strategy_members() -> None:
    assert [j.value for j in JitterStrategy] == ["NONE", "FULL", "HALF"]


@pytest.mark.usefixtures("top_of_jitter")
def test_default_factories() -> None:
    assert schedule(create_retry_strategy()) == [5, 10]
    assert schedule(create_linear_retry_strategy()) == [1, 2, 3, 4, 5]


# -- presets (the §7.2 table) -------------------------------------------------------------------


@pytest.mark.usefixtures("top_of_jitter")
@pytest.mark.parametrize(
    ("preset", "delays"),
    [
        (RetryPresets.none, []),
        (RetryPresets.default, [5, 10, 20, 40, 60]),
        (RetryPresets.transient, [5, 10]),
        (RetryPresets.resource_availability, [5, 10, 20, 40]),
        (RetryPresets.critical, [1, 2, 3, 4, 6, 8, 12, 18, 26]),
        (RetryPresets.linear, [1, 2, 3, 4, 5]),
        (RetryPresets.fixed, [5, 5, 5, 5]),
        (lambda: RetryPresets.fixed(Duration(30)), [30, 30, 30, 30]),
        (lambda: RetryPresets.fixed(Duration(0)), [1, 1, 1, 1]),
    ],
)
def test_preset_schedules(preset: Callable[[], RetryStrategy], delays: list[int]) -> None:
    """With random() at its top, the delays are the bases: attempts = len(delays) + 1."""
    assert schedule(preset()) == delays


@pytest.mark.parametrize(
    ("preset", "jitter"),
    [
        (RetryPresets.default, JitterStrategy.FULL),
        (RetryPresets.transient, JitterStrategy.HALF),
        (RetryPresets.resource_availability, JitterStrategy.FULL),
        (RetryPresets.critical, JitterStrategy.NONE),
        (RetryPresets.linear, JitterStrategy.NONE),
        (RetryPresets.fixed, JitterStrategy.NONE),
    ],
)
def test_preset_jitter(preset: Callable[[], RetryStrategy], jitter: JitterStrategy) -> None:
    """At random() == 0 FULL clamps to 1 s, HALF gives half the base, NONE ignores random."""
    with fixed_random(0.0):
        first = preset()(BOOM, 1).delay_seconds
    with fixed_random(1.0):
        base = preset()(BOOM, 1).delay_seconds
    expected = {
        JitterStrategy.FULL: 1,
        JitterStrategy.HALF: math.ceil(base / 2),
        JitterStrategy.NONE: base,
    }
    assert first == expected[jitter]


def test_presets_retry_every_error() -> None:
    class Odd(Exception):
        pass

    assert RetryPresets.default()(Odd(), 1).should_retry
    assert RetryPresets.critical()(KeyError("k"), 1).should_retry


# -- attempts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("attempts_made", [3, 4, 100])
def test_stops_when_attempts_made_reaches_max(attempts_made: int) -> None:
    strategy = create_retry_strategy(RetryStrategyConfig(max_attempts=3))
    assert strategy(BOOM, 2).should_retry
    assert strategy(BOOM, attempts_made) == RetryDecision.no_retry()


def test_huge_attempt_numbers_use_the_cap() -> None:
    strategy = create_retry_strategy(
        RetryStrategyConfig(max_attempts=10**6, jitter_strategy=JitterStrategy.NONE)
    )
    assert strategy(BOOM, 5000).delay_seconds == 300


# -- delay arithmetic ---------------------------------------------------------------------------


def test_exponential_delay_is_capped_and_rounded_up() -> None:
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=10,
            initial_delay=Duration(3),
            max_delay=Duration(20),
            backoff_rate=1.7,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    assert schedule(strategy) == [3, 6, 9, 15, 20, 20, 20, 20, 20]


def test_linear_delay_is_capped() -> None:
    strategy = create_linear_retry_strategy(
        LinearRetryStrategyConfig(
            max_attempts=5,
            initial_delay=Duration(2),
            increment=Duration(3),
            max_delay=Duration(7),
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    assert schedule(strategy) == [2, 5, 7, 7]


@pytest.mark.parametrize("jitter", list(JitterStrategy))
def test_zero_delay_clamps_to_one_second(jitter: JitterStrategy) -> None:
    strategy = create_retry_strategy(
        RetryStrategyConfig(initial_delay=Duration(0), jitter_strategy=jitter)
    )
    assert strategy(BOOM, 1) == RetryDecision.retry(Duration(1))


@given(
    r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    attempt=st.integers(min_value=1, max_value=8),
    jitter=st.sampled_from(list(JitterStrategy)),
)
def test_jitter_bounds(r: float, attempt: int, jitter: JitterStrategy) -> None:
    config = RetryStrategyConfig(max_attempts=9, jitter_strategy=jitter)
    base = min(5 * 2.0 ** (attempt - 1), 300)
    with fixed_random(r):
        delay = create_retry_strategy(config)(BOOM, attempt).delay_seconds
    jittered = {
        JitterStrategy.NONE: base,
        JitterStrategy.FULL: r * base,
        JitterStrategy.HALF: base / 2 + r * base / 2,
    }[jitter]
    assert delay == max(1, math.ceil(jittered))
    low = {JitterStrategy.NONE: base, JitterStrategy.FULL: 1, JitterStrategy.HALF: base / 2}[jitter]
    assert low <= delay <= base


def test_jitter_draws_from_module_random() -> None:
    strategy = create_retry_strategy(RetryStrategyConfig(max_attempts=50))
    random.seed(1234)
    first = [strategy(BOOM, a).delay_seconds for a in range(1, 40)]
    random.seed(1234)
    assert [strategy(BOOM, a).delay_seconds for a in range(1, 40)] == first
    assert len(set(first)) > 1


# -- filters ------------------------------------------------------------------------------------


class Transient(Exception):
    pass


class Throttled(Transient):
    pass


def retries(error: Exception, **filters: object) -> bool:
    strategy = create_retry_strategy(RetryStrategyConfig(**filters))  # type: ignore[arg-type]
    return strategy(error, 1).should_retry


def test_no_filters_match_everything() -> None:
    assert retries(ValueError(""))
    assert retries(KeyError("x"))


def test_message_filters() -> None:
    errors = ["timeout", re.compile(r"^conn(ection)? reset")]
    assert retries(ValueError("read timeout after 5s"), retryable_errors=errors)
    assert retries(OSError("connection reset by peer"), retryable_errors=errors)
    assert not retries(OSError("peer: conn reset"), retryable_errors=errors)  # regex anchored
    assert not retries(ValueError("TIMEOUT"), retryable_errors=errors)  # substring is exact


def test_message_filter_uses_str_of_error() -> None:
    assert retries(KeyError("k"), retryable_errors=["'k'"])


def test_type_filters_use_isinstance() -> None:
    types = [Transient]
    assert retries(Transient(), retryable_error_types=types)
    assert retries(Throttled(), retryable_error_types=types)
    assert not retries(ValueError("Transient"), retryable_error_types=types)


def test_only_one_filter_disables_match_all() -> None:
    assert not retries(ValueError("x"), retryable_errors=["timeout"])
    assert not retries(ValueError("x"), retryable_error_types=[Transient])
    assert not retries(ValueError("x"), retryable_errors=[])
    assert not retries(ValueError("x"), retryable_error_types=[])


def test_both_filters_either_matches() -> None:
    filters = {"retryable_errors": ["timeout"], "retryable_error_types": [Transient]}
    assert retries(ValueError("timeout"), **filters)
    assert retries(Throttled("nothing"), **filters)
    assert not retries(ValueError("nothing"), **filters)


def test_linear_strategy_filters_too() -> None:
    strategy = create_linear_retry_strategy(
        LinearRetryStrategyConfig(retryable_error_types=[Transient])
    )
    assert strategy(Throttled(), 1).should_retry
    assert not strategy(ValueError(), 1).should_retry


def test_filtered_out_error_is_not_retried_even_on_first_attempt() -> None:
    strategy = create_retry_strategy(RetryStrategyConfig(retryable_errors=["x"], max_attempts=99))
    assert strategy(ValueError("y"), 1) == RetryDecision.no_retry()
