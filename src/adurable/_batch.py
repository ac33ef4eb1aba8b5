"""``BatchResult``: what ``context.map`` and ``context.parallel`` return (PROTOCOL §7.9.7).

Items are in index order; items that never started are not in ``all``. Failed items do not
fail the operation: inspect the result or call ``throw_if_error()``.

The class is registered with the extended-type serdes, so the default payload of a map or
parallel operation is the ``br`` envelope of ``to_dict()`` (§10.2), byte-compatible with the
official SDK.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from adurable._errors import BatchCompletionError, ChildContextError, SerDesError
from adurable._failures import rebuild_error
from adurable._serde import register_batch_result_type

if TYPE_CHECKING:
    from adurable._wire import ErrorObject

__all__ = ("BatchItem", "BatchItemStatus", "BatchResult", "CompletionReason", "infer_reason")

T = TypeVar("T")


class BatchItemStatus(enum.Enum):
    """Status of one item: STARTED means it was still running when the batch completed."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTED = "STARTED"


class CompletionReason(enum.Enum):
    """Why a map/parallel stopped (§7.9.4)."""

    ALL_COMPLETED = "ALL_COMPLETED"
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"
    CUSTOM_COMPLETION_SUCCEEDED = "CUSTOM_COMPLETION_SUCCEEDED"
    CUSTOM_COMPLETION_FAILED = "CUSTOM_COMPLETION_FAILED"


@dataclass(frozen=True, slots=True)
class BatchItem(Generic[T]):
    """One map item / parallel branch: its index, status, result (SUCCEEDED) or error (FAILED).

    ``error`` is the recorded ErrorObject; its ErrorType is the type that escaped the branch.
    """

    index: int
    status: BatchItemStatus
    result: T | None = None
    error: ErrorObject | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status.value,
            "result": self.result,
            "error": self.error.to_wire() if self.error is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchItem[Any]:
        """Inverse of ``to_dict``; raises SerDesError for a malformed item."""
        try:
            error = data.get("error")
            return cls(
                index=int(data["index"]),
                status=BatchItemStatus(data["status"]),
                result=data.get("result"),
                error=_error_object(error) if error is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SerDesError(f"Malformed batch item {data!r}: {exc}") from exc


def _error_object(raw: Any) -> ErrorObject:
    from adurable._wire import ErrorObject  # failed items only: keeps pydantic off the import path

    return ErrorObject.model_validate(raw)


@dataclass(frozen=True)
class BatchResult(Generic[T]):
    """Items of a map/parallel in index order, and why it completed.

    Every accessor is computed from ``all``; ``total_count`` is ``len(all)`` (never-started
    items are not counted).
    """

    all: list[BatchItem[T]] = field(default_factory=list)
    completion_reason: CompletionReason = CompletionReason.ALL_COMPLETED

    # -- selections ---------------------------------------------------------------------------

    def succeeded(self) -> list[BatchItem[T]]:
        return self._with(BatchItemStatus.SUCCEEDED)

    def failed(self) -> list[BatchItem[T]]:
        return self._with(BatchItemStatus.FAILED)

    def started(self) -> list[BatchItem[T]]:
        """Items that were still running (or suspended) when the batch completed."""
        return self._with(BatchItemStatus.STARTED)

    def get_results(self) -> list[T | None]:
        """Results of the SUCCEEDED items in index order (None results included)."""
        return [item.result for item in self.succeeded()]

    def get_errors(self) -> list[ErrorObject | None]:
        """One ErrorObject per FAILED item, in index order (None if none was recorded)."""
        return [item.error for item in self.failed()]

    def _with(self, status: BatchItemStatus) -> list[BatchItem[T]]:
        return [item for item in self.all if item.status is status]

    # -- counts -------------------------------------------------------------------------------

    @property
    def success_count(self) -> int:
        return self._count(BatchItemStatus.SUCCEEDED)

    @property
    def failure_count(self) -> int:
        return self._count(BatchItemStatus.FAILED)

    @property
    def started_count(self) -> int:
        return self._count(BatchItemStatus.STARTED)

    @property
    def total_count(self) -> int:
        return len(self.all)

    @property
    def has_failure(self) -> bool:
        return any(item.status is BatchItemStatus.FAILED for item in self.all)

    def _count(self, status: BatchItemStatus) -> int:
        return sum(1 for item in self.all if item.status is status)

    @property
    def status(self) -> BatchItemStatus:
        """FAILED for CUSTOM_COMPLETION_FAILED, SUCCEEDED for CUSTOM_COMPLETION_SUCCEEDED,
        otherwise FAILED iff some item failed."""
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED:
            return BatchItemStatus.FAILED
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_SUCCEEDED:
            return BatchItemStatus.SUCCEEDED
        return BatchItemStatus.FAILED if self.has_failure else BatchItemStatus.SUCCEEDED

    def throw_if_error(self) -> None:
        """Raise for the first FAILED item, else for a CUSTOM_COMPLETION_FAILED batch.

        The first failed item raises ChildContextError rebuilt from its ErrorObject (its
        ``error_type`` is the type that escaped the branch; SerDesError for a serdes failure);
        then CUSTOM_COMPLETION_FAILED raises BatchCompletionError. Otherwise returns None.
        """
        for item in self.all:
            if item.status is BatchItemStatus.FAILED:
                if item.error is None:
                    message = f"Batch item {item.index} failed without an ErrorObject."
                    raise ChildContextError(message)
                raise rebuild_error(ChildContextError, item.error)
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED:
            raise BatchCompletionError(
                "Batch completion criteria reported failure (CUSTOM_COMPLETION_FAILED)",
                completion_reason=self.completion_reason,
            )

    # -- wire form ----------------------------------------------------------------------------

    def wire_items(self) -> tuple[Iterator[dict[str, Any]], str]:
        """``to_dict()``'s items one at a time, and its completion reason (the codec streams a
        large result instead of building every item dict at once)."""
        return (item.to_dict() for item in self.all), self.completion_reason.value

    def to_dict(self) -> dict[str, Any]:
        """``{"all": [item dicts], "completionReason": "<reason>"}`` (§7.9.7)."""
        return {
            "all": [item.to_dict() for item in self.all],
            "completionReason": self.completion_reason.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchResult[Any]:
        """Inverse of ``to_dict``. Without ``completionReason`` the reason is inferred from
        the item statuses (see ``infer_reason``). Raises SerDesError for malformed data."""
        raw_items = data.get("all")
        if not isinstance(raw_items, list):
            raise SerDesError(f'Malformed batch result: "all" must be a list, got {raw_items!r}')
        items = [BatchItem.from_dict(_mapping(raw)) for raw in raw_items]
        reason = data.get("completionReason")
        if reason is None:
            return cls(items, infer_reason(item.status for item in items))
        try:
            return cls(items, CompletionReason(reason))
        except ValueError as exc:
            raise SerDesError(f"Unknown completion reason {reason!r}") from exc


def infer_reason(statuses: Iterable[BatchItemStatus]) -> CompletionReason:
    """Best guess of a reason from item statuses alone: any failure → FAILURE_TOLERANCE_EXCEEDED
    (the default policy fails fast), else items still running → MIN_SUCCESSFUL_REACHED, else
    ALL_COMPLETED."""
    seen = set(statuses)
    if BatchItemStatus.FAILED in seen:
        return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    if BatchItemStatus.STARTED in seen:
        return CompletionReason.MIN_SUCCESSFUL_REACHED
    return CompletionReason.ALL_COMPLETED


def _mapping(raw: Any) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise SerDesError(f"Malformed batch item {raw!r}: expected an object")
    return raw


register_batch_result_type(BatchResult)
