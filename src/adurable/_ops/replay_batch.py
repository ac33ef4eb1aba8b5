"""Large map/parallel results: the completion record and the replay built on it (§7.9.8).

A BatchResult longer than 256 KiB is not recorded. The container's SUCCEED carries
``ReplayChildren=true`` and a completion record (plain ``json.dumps``, fixed key order)
naming the reason, the item count and which items were still running. Replays rebuild the
result from that record and from the branch checkpoints, without scheduling anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from adurable._batch import BatchItem, BatchItemStatus, BatchResult, CompletionReason, infer_reason
from adurable._enums import OperationSubType, OperationType
from adurable._errors import InvalidStateError, NonDeterministicExecutionError
from adurable._ids import branch_id
from adurable._ops.branches import BatchSpec, OutcomeKind, run_branch
from adurable._scope import Scope

__all__ = ("batch_summary", "rebuild_batch_result")

_RECORD_TYPES = {OperationSubType.MAP: "MapResult", OperationSubType.PARALLEL: "ParallelResult"}


def batch_summary(
    kind: OperationSubType,
    summary_generator: Callable[[Any], str] | None,
    result: BatchResult[Any],
) -> str:
    """The completion record written instead of a too-large BatchResult (§7.9.8).

    ``startedIndexes`` when that list is not longer than the completed one, else
    ``completedIndexes``; ``summary`` only when the user configured a summary_generator.
    """
    started = [item.index for item in result.all if item.status is BatchItemStatus.STARTED]
    completed = [item.index for item in result.all if item.status is not BatchItemStatus.STARTED]
    record: dict[str, Any] = {
        "type": _RECORD_TYPES.get(kind, "MapResult"),
        "totalCount": result.total_count,
        "completionReason": result.completion_reason.value,
    }
    if len(started) <= len(completed):
        record["startedIndexes"] = started
    else:
        record["completedIndexes"] = completed
    record["startedCount"] = len(started)
    record["successCount"] = result.success_count
    record["failureCount"] = result.failure_count
    record["status"] = result.status.value
    if summary_generator is not None:
        record["summary"] = summary_generator(result)
    return json.dumps(record)


async def rebuild_batch_result(
    spec: BatchSpec, container: Scope, record: str | None
) -> BatchResult[Any]:
    """Replay a ReplayChildren container: items from the record and the branch checkpoints.

    With a valid record: indexes below ``totalCount`` only; started ones become STARTED items
    (their checkpoint identity is still checked), the others are re-derived (NESTED: the
    branch checkpoint must be terminal, else NonDeterministicExecutionError; FLAT: the body
    re-runs and replays). Without one: every recorded branch is re-derived and the reason
    inferred. Branch outcomes that cannot be replayed (suspension, retryable or fatal errors)
    propagate as they would from a run.
    """
    parsed = _parse_record(record, spec.count)
    items: list[BatchItem[Any]] = []
    if parsed is None:
        for index in range(spec.count):
            item = await _derive(spec, container, index)
            if item is not None:
                items.append(item)
        return BatchResult(items, infer_reason(item.status for item in items))
    reason, total, started = parsed
    for index in range(total):
        if index in started:
            if spec.nested:
                _lookup(spec, container, index)
            items.append(BatchItem(index, BatchItemStatus.STARTED))
        else:
            items.append(await _completed(spec, container, index))
    return BatchResult(items, reason)


def _parse_record(record: str | None, count: int) -> tuple[CompletionReason, int, set[int]] | None:
    """``(reason, totalCount, started indexes)`` of a valid record, else None."""
    try:
        data = json.loads(record or "")
        reason = CompletionReason(data["completionReason"])
        total = data["totalCount"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= count:
        return None
    key = "startedIndexes" if "startedIndexes" in data else "completedIndexes"
    indexes = data.get(key)
    if not isinstance(indexes, list) or not all(_valid_index(i, total) for i in indexes):
        return None
    listed = set(indexes)
    started = listed if key == "startedIndexes" else set(range(total)) - listed
    return reason, total, started


def _valid_index(value: Any, total: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < total


def _lookup(spec: BatchSpec, container: Scope, index: int) -> Any:
    bid = branch_id(spec.op_id, index)
    wanted = container.identity(OperationType.CONTEXT, spec.branch_sub_type, spec.name_of(index))
    return container.lookup(bid, wanted)


async def _completed(spec: BatchSpec, container: Scope, index: int) -> BatchItem[Any]:
    """An item the record lists as completed."""
    if spec.nested:
        stored = _lookup(spec, container, index)
        if stored is None or not stored.status.is_terminal:
            raise NonDeterministicExecutionError(
                f"map/parallel {spec.op_id} recorded item {index} as completed, but its branch "
                f"checkpoint is {'missing' if stored is None else stored.status.value}",
                branch_id(spec.op_id, index),
            )
    return await _replayed(spec, container, index)


async def _derive(spec: BatchSpec, container: Scope, index: int) -> BatchItem[Any] | None:
    """An item rebuilt without a record: from its checkpoint (NESTED) or by replaying (FLAT)."""
    if not spec.nested:
        return await _replayed(spec, container, index)
    stored = _lookup(spec, container, index)
    if stored is None:
        return None
    if not stored.status.is_terminal:
        return BatchItem(index, BatchItemStatus.STARTED)
    return await _replayed(spec, container, index)


async def _replayed(spec: BatchSpec, container: Scope, index: int) -> BatchItem[Any]:
    outcome = await run_branch(spec, container, index)
    if outcome.kind is OutcomeKind.SUCCEEDED:
        return BatchItem(index, BatchItemStatus.SUCCEEDED, outcome.value)
    if outcome.kind is OutcomeKind.FAILED:
        return BatchItem(index, BatchItemStatus.FAILED, error=outcome.error)
    if outcome.kind is OutcomeKind.SUSPENDED:
        await container.suspend(
            f"map/parallel {spec.op_id}: item {index} waits while its result is rebuilt",
            outcome.resume_at,
        )
    if outcome.exception is not None:
        raise outcome.exception
    raise InvalidStateError(f"item {index} of {spec.op_id} stopped while being replayed")
