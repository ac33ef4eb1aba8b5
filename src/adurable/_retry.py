"""Retry strategies for steps and ``with_retry`` (PROTOCOL §7.2).

A strategy is a plain callable ``(error, attempts_made) -> RetryDecision``; ``attempts_made``
counts every attempt so far, including the one that just failed. The factories here build the
official SDK's exponential and linear strategies, and :class:`RetryPresets` names the usual
configurations. Delays are whole seconds, jittered, rounded up and never below one second.
"""

from __future__ import annotations

import enum
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adurable._duration import Duration

__all__ = (
    "JitterStrategy",
    "LinearRetryStrategyConfig",
    "RetryDecision",
    "RetryPresets",
    "RetryStrategy",
    "RetryStrategyConfig",
    "create_linear_retry_strategy",
    "create_retry_strategy",
)


class JitterStrategy(enum.StrEnum):
    """How a computed delay is randomised, to keep retries of many executions apart."""

    NONE = "NONE"  #: the delay as computed
    FULL = "FULL"  #: uniformly between 0 and the delay
    HALF = "HALF"  #: uniformly between half the delay and the delay

    def apply(self, base: float) -> float:
        """The jittered delay for ``base`` seconds (uses the module-level ``random``)."""
        if self is JitterStrategy.FULL:
            return random.random() * base
        if self is JitterStrategy.HALF:
            return base / 2 + random.random() * base / 2
        return base


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to retry and, if so, after how long."""

    should_retry: bool
    delay: Duration

    @property
    def delay_seconds(self) -> int:
        return self.delay.to_seconds()

    @classmethod
    def retry(cls, delay: Duration) -> RetryDecision:
        return cls(should_retry=True, delay=delay)

    @classmethod
    def no_retry(cls) -> RetryDecision:
        return cls(should_retry=False, delay=Duration())


_ONE_SECOND = Duration(1)
_FIVE_SECONDS = Duration(5)
_ONE_MINUTE = Duration(60)
_FIVE_MINUTES = Duration(300)

#: ``(error, attempts_made) -> RetryDecision``
RetryStrategy = Callable[[Exception, int], RetryDecision]


@dataclass(frozen=True)
class RetryStrategyConfig:
    """Exponential backoff: ``min(initial_delay * backoff_rate ** (attempts_made - 1), max_delay)``.

    ``max_attempts`` counts all attempts (the first one included). Errors are retried when their
    ``str()`` contains one of the ``retryable_errors`` strings (or a regex there ``search``-es
    it) or they are an instance of one of the ``retryable_error_types``. With neither filter
    every error is retried; giving only one of them means only that one decides.
    """

    max_attempts: int = 3
    initial_delay: Duration = _FIVE_SECONDS
    max_delay: Duration = _FIVE_MINUTES
    backoff_rate: float = 2.0
    jitter_strategy: JitterStrategy = JitterStrategy.FULL
    retryable_errors: list[str | re.Pattern[str]] | None = None
    retryable_error_types: list[type[Exception]] | None = None


@dataclass(frozen=True)
class LinearRetryStrategyConfig:
    """Linear backoff: ``min(initial_delay + increment * (attempts_made - 1), max_delay)``.

    ``max_attempts`` and the error filters work as in :class:`RetryStrategyConfig`.
    """

    max_attempts: int = 6
    initial_delay: Duration = _ONE_SECOND
    increment: Duration = _ONE_SECOND
    max_delay: Duration = _FIVE_MINUTES
    jitter_strategy: JitterStrategy = JitterStrategy.FULL
    retryable_errors: list[str | re.Pattern[str]] | None = None
    retryable_error_types: list[type[Exception]] | None = None


def _error_filter(
    patterns: Sequence[str | re.Pattern[str]] | None,
    types: Sequence[type[Exception]] | None,
) -> Callable[[Exception], bool]:
    """A predicate for "this error may be retried"; match-all only when both filters are None."""
    if patterns is None and types is None:
        return lambda _error: True
    type_tuple = tuple(types or ())
    pattern_list = list(patterns or ())

    def matches(error: Exception) -> bool:
        if isinstance(error, type_tuple):
            return True
        if not pattern_list:
            return False
        message = str(error)
        return any(
            p.search(message) if isinstance(p, re.Pattern) else p in message for p in pattern_list
        )

    return matches


def _strategy(
    max_attempts: int,
    matches: Callable[[Exception], bool],
    base_delay: Callable[[int], float],
    jitter: JitterStrategy,
) -> RetryStrategy:
    """Give up at ``max_attempts`` or on a filtered-out error; else wait ceil(jitter(base)) s."""

    def strategy(error: Exception, attempts_made: int) -> RetryDecision:
        if attempts_made >= max_attempts or not matches(error):
            return RetryDecision.no_retry()
        seconds = max(1, math.ceil(jitter.apply(base_delay(attempts_made))))
        return RetryDecision.retry(Duration(seconds))

    return strategy


def create_retry_strategy(config: RetryStrategyConfig | None = None) -> RetryStrategy:
    """An exponential-backoff strategy (defaults: 3 attempts, 5 s doubling up to 5 min, FULL)."""
    cfg = config if config is not None else RetryStrategyConfig()
    initial, cap = cfg.initial_delay.to_seconds(), cfg.max_delay.to_seconds()

    def base_delay(attempts_made: int) -> float:
        try:
            return min(initial * cfg.backoff_rate ** (attempts_made - 1), cap)
        except OverflowError:  # astronomically many attempts: the cap applies
            return cap

    matches = _error_filter(cfg.retryable_errors, cfg.retryable_error_types)
    return _strategy(cfg.max_attempts, matches, base_delay, cfg.jitter_strategy)


def create_linear_retry_strategy(config: LinearRetryStrategyConfig | None = None) -> RetryStrategy:
    """A linear-backoff strategy (defaults: 6 attempts, 1 s growing by 1 s up to 5 min, FULL)."""
    cfg = config if config is not None else LinearRetryStrategyConfig()
    initial, step, cap = (
        cfg.initial_delay.to_seconds(),
        cfg.increment.to_seconds(),
        cfg.max_delay.to_seconds(),
    )

    def base_delay(attempts_made: int) -> float:
        return min(initial + step * (attempts_made - 1), cap)

    matches = _error_filter(cfg.retryable_errors, cfg.retryable_error_types)
    return _strategy(cfg.max_attempts, matches, base_delay, cfg.jitter_strategy)


class RetryPresets:
    """Ready-made strategies (PROTOCOL §7.2). Steps without a strategy use :meth:`default`."""

    @staticmethod
    def none() -> RetryStrategy:
        """Never retry: one attempt in total."""
        return create_retry_strategy(RetryStrategyConfig(max_attempts=1))

    @staticmethod
    def default() -> RetryStrategy:
        """6 attempts, 5 s doubling up to 60 s, FULL jitter."""
        return create_retry_strategy(RetryStrategyConfig(max_attempts=6, max_delay=_ONE_MINUTE))

    @staticmethod
    def transient() -> RetryStrategy:
        """3 attempts, 5 s doubling up to 5 min, HALF jitter."""
        return create_retry_strategy(
            RetryStrategyConfig(max_attempts=3, jitter_strategy=JitterStrategy.HALF)
        )

    @staticmethod
    def resource_availability() -> RetryStrategy:
        """5 attempts, 5 s doubling up to 5 min, FULL jitter."""
        return create_retry_strategy(RetryStrategyConfig(max_attempts=5))

    @staticmethod
    def critical() -> RetryStrategy:
        """10 attempts, 1 s growing by a factor 1.5 up to 60 s, no jitter."""
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=10,
                initial_delay=_ONE_SECOND,
                max_delay=_ONE_MINUTE,
                backoff_rate=1.5,
                jitter_strategy=JitterStrategy.NONE,
            )
        )

    @staticmethod
    def linear() -> RetryStrategy:
        """6 attempts, 1 s growing by 1 s up to 5 min, no jitter."""
        return create_linear_retry_strategy(
            LinearRetryStrategyConfig(jitter_strategy=JitterStrategy.NONE)
        )

    @staticmethod
    def fixed(interval: Duration = _FIVE_SECONDS) -> RetryStrategy:
        """5 attempts, always ``interval`` apart (at least 1 s), no jitter."""
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=5,
                initial_delay=interval,
                max_delay=interval,
                backoff_rate=1,
                jitter_strategy=JitterStrategy.NONE,
            )
        )
