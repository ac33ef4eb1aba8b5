"""Configuration objects with the official SDK's names and defaults (PROTOCOL §11)."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adurable._errors import ValidationError

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
