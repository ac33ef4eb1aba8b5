"""When a map/parallel is done (PROTOCOL §7.9.4): counts in, decision and reason out.

``CompletionPolicy`` keeps the success/failure counts and answers in O(1) per completed item
(a custom ``should_complete`` predicate is handed a live view of the items, not a copy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import overload

from adurable._batch import BatchItemStatus, CompletionReason
from adurable._config import (
    CompletionConfig,
    CompletionDecision,
    CompletionItemStatus,
    CompletionOutcome,
    CompletionStatus,
)

__all__ = ("CompletionPolicy", "ItemsView")


class ItemsView(Sequence[CompletionItemStatus]):
    """Read-only view of every item's status for ``should_complete``, built on access."""

    __slots__ = ("_name", "_statuses")

    def __init__(
        self, name: Callable[[int], str | None], statuses: Sequence[BatchItemStatus | None]
    ) -> None:
        self._name = name
        self._statuses = statuses

    def __len__(self) -> int:
        return len(self._statuses)

    @overload
    def __getitem__(self, index: int) -> CompletionItemStatus: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[CompletionItemStatus]: ...

    def __getitem__(
        self, index: int | slice
    ) -> CompletionItemStatus | Sequence[CompletionItemStatus]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        status = self._statuses[index]
        return CompletionItemStatus(index, self._name(index), status.value if status else None)


class CompletionPolicy:
    """The completion rules of one map/parallel over ``total`` items.

    Call ``evaluate()`` once before any item starts and after every item outcome (after
    updating ``succeeded``/``failed``); it returns True when admission must stop. ``reason()``
    gives the completion reason for the state at that moment. A raising predicate propagates.
    """

    __slots__ = ("_config", "_decision", "_items", "failed", "succeeded", "total")

    def __init__(
        self, config: CompletionConfig, total: int, items: Sequence[CompletionItemStatus] = ()
    ) -> None:
        self._config = config
        self.total = total
        self._items = items
        self.succeeded = 0
        self.failed = 0
        self._decision: CompletionDecision | None = None

    def evaluate(self) -> bool:
        """Re-evaluate (calling the predicate, if any); True once complete or over tolerance."""
        predicate = self._config.should_complete
        if predicate is not None:
            status = CompletionStatus(
                self.succeeded,
                self.failed,
                self.succeeded + self.failed,
                self.total,
                self._items,
            )
            self._decision = predicate(status)
        return self.tolerance_exceeded() or self.is_complete()

    def tolerance_exceeded(self) -> bool:
        """Never with a predicate; fail-fast (any failure) when no threshold is configured."""
        config = self._config
        if config.should_complete is not None:
            return False
        count, pct = config.tolerated_failure_count, config.tolerated_failure_percentage
        if config.min_successful is None and count is None and pct is None:
            return self.failed > 0
        if count is not None and self.failed > count:
            return True
        return pct is not None and self.total > 0 and self.failed / self.total * 100 > pct

    def is_complete(self) -> bool:
        if self._decision is not None and self._decision.complete:
            return True
        if self.succeeded + self.failed >= self.total:
            return True
        minimum = self._config.min_successful
        return minimum is not None and self.succeeded >= minimum

    def reason(self) -> CompletionReason:
        """The completion reason, in the order of precedence of §7.9.4."""
        if self.tolerance_exceeded():
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        decision = self._decision
        if decision is not None and decision.complete:
            if decision.outcome is CompletionOutcome.FAILED:
                return CompletionReason.CUSTOM_COMPLETION_FAILED
            return CompletionReason.CUSTOM_COMPLETION_SUCCEEDED
        if self.succeeded + self.failed >= self.total:
            return CompletionReason.ALL_COMPLETED
        minimum = self._config.min_successful
        if minimum is not None and self.succeeded >= minimum:
            return CompletionReason.MIN_SUCCESSFUL_REACHED
        return CompletionReason.ALL_COMPLETED
