"""Configuration objects with the official SDK's names and defaults (PROTOCOL §11)."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adurable._duration import Duration
from adurable._errors import ValidationError
from adurable._retry import JitterStrategy

if TYPE_CHECKING:
    from adurable._retry import RetryDecision
    from adurable._serde import SerDes

    RetryStrategy = Callable[[Exception, int], RetryDecision]

_SUB_TYPE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _check_sub_type(value: str | None) -> str | None:
    if not value:
        return None
    if not _SUB_TYPE.fullmatch(value):
        raise ValidationError(
            f"sub_type {value!r} is invalid: use 1-32 characters of letters, digits, '_' or '-'"
        )
    return value


class StepSemantics(enum.Enum):
    """When a step's START is made durable (PROTOCOL §7.1)."""

    AT_MOST_ONCE_PER_RETRY = "AT_MOST_ONCE_PER_RETRY"
    AT_LEAST_ONCE_PER_RETRY = "AT_LEAST_ONCE_PER_RETRY"


@dataclass(frozen=True)
class StepConfig:
    """Options of ``context.step``.

    ``retry_strategy`` defaults to ``RetryPresets.default()`` (6 attempts, 5 s doubling up to
    60 s, full jitter); ``serdes`` to the extended-type serdes.
    """

    retry_strategy: RetryStrategy | None = None
    step_semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY
    serdes: SerDes[Any] | None = None
    sub_type: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sub_type", _check_sub_type(self.sub_type))


@dataclass(frozen=True)
class ChildConfig:
    """Options of ``context.run_in_child_context``.

    ``summary_generator`` produces the checkpointed payload when the result exceeds 256 KiB
    (the child then re-runs on replay); ``is_virtual`` groups operations without writing a
    CONTEXT operation of its own.
    """

    serdes: SerDes[Any] | None = None
    sub_type: str | None = None
    summary_generator: Callable[[Any], str] | None = None
    is_virtual: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sub_type", _check_sub_type(self.sub_type))


@dataclass(frozen=True)
class CallbackConfig:
    """Options of ``context.create_callback``.

    ``timeout`` / ``heartbeat_timeout``: service-side timers (``Duration()`` = none).
    ``serdes`` decodes the result; the default passes the raw string through.
    """

    timeout: Duration = Duration()
    heartbeat_timeout: Duration = Duration()
    serdes: SerDes[Any] | None = None
    sub_type: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sub_type", _check_sub_type(self.sub_type))


@dataclass(frozen=True)
class WaitForCallbackConfig(CallbackConfig):
    """Options of ``context.wait_for_callback``: a CallbackConfig plus the submitter's retries."""

    retry_strategy: RetryStrategy | None = None


@dataclass(frozen=True)
class InvokeConfig:
    """Options of ``context.invoke``: payload/result serdes (plain JSON by default), tenant."""

    serdes_payload: SerDes[Any] | None = None
    serdes_result: SerDes[Any] | None = None
    tenant_id: str | None = None


class NestingType(enum.Enum):
    """NESTED: one CONTEXT per map item / parallel branch. FLAT: none (fewer operations)."""

    NESTED = "NESTED"
    FLAT = "FLAT"


class CompletionOutcome(enum.Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class CompletionDecision:
    """Returned by a ``CompletionConfig.should_complete`` predicate."""

    complete: bool
    outcome: CompletionOutcome | None = None

    @classmethod
    def continue_batch(cls) -> CompletionDecision:
        return cls(False)

    @classmethod
    def complete_batch(
        cls, outcome: CompletionOutcome = CompletionOutcome.SUCCEEDED
    ) -> CompletionDecision:
        return cls(True, outcome)


@dataclass(frozen=True)
class CompletionItemStatus:
    """One item as seen by ``should_complete``."""

    index: int
    name: str | None
    status: str | None  # None (not started), "STARTED", "SUCCEEDED", "FAILED"


@dataclass(frozen=True)
class CompletionStatus:
    """Handed to ``should_complete`` after each item completes (and once before any starts).

    ``items`` is a read-only sequence of every item's CompletionItemStatus in index order; it is
    a live view valid during the call (copy it with ``list()`` to keep it).
    """

    success_count: int
    failure_count: int
    completed_count: int
    total_count: int
    items: Sequence[CompletionItemStatus] = ()


@dataclass(frozen=True)
class CompletionConfig:
    """When a map/parallel is complete (PROTOCOL §7.9.4).

    All thresholds None: fail fast (the first failure stops admitting new items). Failures
    never fail the operation itself; inspect the BatchResult or call ``throw_if_error()``.
    """

    min_successful: int | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: float | None = None
    should_complete: Callable[[CompletionStatus], CompletionDecision] | None = None

    def __post_init__(self) -> None:
        if self.min_successful is not None and self.min_successful < 1:
            raise ValidationError("min_successful must be at least 1")
        if self.tolerated_failure_count is not None and self.tolerated_failure_count < 0:
            raise ValidationError("tolerated_failure_count must be 0 or more")
        pct = self.tolerated_failure_percentage
        if pct is not None and not 0 <= pct <= 100:
            raise ValidationError("tolerated_failure_percentage must be between 0 and 100")
        if self.should_complete is not None:
            if not callable(self.should_complete):
                raise ValidationError("should_complete must be callable")
            if any(v is not None for v in (self.min_successful, self.tolerated_failure_count, pct)):
                raise ValidationError(
                    "should_complete decides completion on its own: do not combine it with "
                    "min_successful or the tolerated_failure_* thresholds"
                )

    @classmethod
    def all_successful(cls) -> CompletionConfig:
        return cls(tolerated_failure_count=0, tolerated_failure_percentage=0)

    @classmethod
    def first_successful(cls) -> CompletionConfig:
        return cls(min_successful=1)

    @classmethod
    def all_completed(cls) -> CompletionConfig:
        return cls(tolerated_failure_percentage=100)


def _check_concurrency(value: int | None) -> None:
    if value is not None and value < 1:
        raise ValidationError(
            f"max_concurrency must be at least 1 (or None for no limit), got {value}"
        )


@dataclass(frozen=True)
class MapConfig:
    """Options of ``context.map`` (PROTOCOL §7.9, §11.2)."""

    max_concurrency: int | None = None
    completion_config: CompletionConfig = field(default_factory=CompletionConfig)
    serdes: SerDes[Any] | None = None
    item_serdes: SerDes[Any] | None = None
    summary_generator: Callable[[Any], str] | None = None
    nesting_type: NestingType = NestingType.NESTED
    item_namer: Callable[[Any, int], str] | None = None

    def __post_init__(self) -> None:
        _check_concurrency(self.max_concurrency)


@dataclass(frozen=True)
class ParallelConfig:
    """Options of ``context.parallel`` (defaults to all_successful completion)."""

    max_concurrency: int | None = None
    completion_config: CompletionConfig = field(default_factory=CompletionConfig.all_successful)
    serdes: SerDes[Any] | None = None
    item_serdes: SerDes[Any] | None = None
    summary_generator: Callable[[Any], str] | None = None
    nesting_type: NestingType = NestingType.NESTED

    def __post_init__(self) -> None:
        _check_concurrency(self.max_concurrency)


@dataclass(frozen=True)
class WaitForConditionDecision:
    """What a wait strategy decides after a check: poll again after ``delay``, or stop."""

    should_continue: bool
    delay: Duration = Duration()

    @classmethod
    def continue_waiting(cls, delay: Duration) -> WaitForConditionDecision:
        return cls(True, delay)

    @classmethod
    def stop_polling(cls) -> WaitForConditionDecision:
        return cls(False)


@dataclass(frozen=True)
class WaitForConditionConfig:
    """Options of ``context.wait_for_condition``: ``wait_strategy(state, attempt)`` decides
    whether to poll again; ``initial_state`` is the first state handed to the check."""

    wait_strategy: Callable[[Any, int], WaitForConditionDecision]
    initial_state: Any
    serdes: SerDes[Any] | None = None


@dataclass(frozen=True)
class WaitStrategyConfig:
    """Parameters of ``create_wait_strategy`` (exponential backoff with jitter)."""

    should_continue_polling: Callable[[Any], bool]
    max_attempts: int = 60
    initial_delay: Duration = Duration(5)
    max_delay: Duration = Duration(300)
    backoff_rate: float = 1.5
    jitter_strategy: JitterStrategy = JitterStrategy.FULL
