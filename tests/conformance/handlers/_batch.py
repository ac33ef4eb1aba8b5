"""What the map (9-x) and parallel (8-x) handlers return about a BatchResult."""

from __future__ import annotations

from typing import Any

from adurable import BatchResult

#: Every field of the projection, in the requirements' order.
FULL = ("completionReason", "status", "successCount", "failureCount", "totalCount")


def projection(result: BatchResult[Any], *keys: str) -> dict[str, Any]:
    """The requested subset of {completionReason, status, successCount, failureCount,
    totalCount} of a batch result."""
    values: dict[str, Any] = {
        "completionReason": result.completion_reason.value,
        "status": result.status.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }
    return {key: values[key] for key in keys}
