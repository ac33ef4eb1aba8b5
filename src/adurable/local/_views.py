"""Rendering service state as the API returns it: operations, executions, execution lists.

Operations go out with wire names; their timestamps as ``datetime`` objects in API responses
(what botocore hands over) or integer epoch milliseconds in invocation events (PROTOCOL §2.1).
Executions follow the botocore output shapes of ``GetDurableExecution`` and
``ListDurableExecutionsByFunction``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable
from typing import Any

from adurable._wire import Operation
from adurable.local._model import ExecutionView, invalid
from adurable.local._validate import MAX_PAGE

__all__ = (
    "EXECUTION_STATUSES",
    "RETENTION_DAYS",
    "describe_execution",
    "dump_op",
    "identity",
    "list_page",
    "to_millis",
)

EXECUTION_STATUSES = frozenset({"RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})
#: ``DurableConfig.RetentionPeriodInDays`` reported for every execution (the AWS default).
RETENTION_DAYS = 14
_LIST_PAGE = 100


def to_millis(value: dt.datetime) -> int:
    """Invocation-event timestamps: integer epoch milliseconds."""
    return round(value.timestamp() * 1000)


def identity(value: dt.datetime) -> dt.datetime:
    """API-response timestamps: datetimes, as botocore parses them."""
    return value


def dump_op(op: Operation, timestamp: Callable[[dt.datetime], Any]) -> dict[str, Any]:
    """An Operation as a plain dict with wire names; timestamps rendered by ``timestamp``."""
    converted = _convert(op.model_dump(by_alias=True, exclude_none=True), timestamp)
    assert isinstance(converted, dict)
    return converted


def _convert(value: Any, timestamp: Callable[[dt.datetime], Any]) -> Any:
    if isinstance(value, dict):
        return {k: _convert(v, timestamp) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v, timestamp) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return timestamp(value)
    return value


def _when(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def function_arn(view: ExecutionView) -> str:
    """The qualified ARN of the function version the execution runs."""
    return view.arn.split("/", 1)[0]


def list_item(view: ExecutionView) -> dict[str, Any]:
    """One ``ListDurableExecutionsByFunction`` entry."""
    item: dict[str, Any] = {
        "DurableExecutionArn": view.arn,
        "DurableExecutionName": view.execution_name,
        "FunctionArn": function_arn(view),
        "Status": view.status,
        "StartTimestamp": _when(view.start_time),
    }
    if view.end_time is not None:
        item["EndTimestamp"] = _when(view.end_time)
    return item


def describe_execution(
    view: ExecutionView, input_payload: str | None, *, include_data: bool = True
) -> dict[str, Any]:
    """A ``GetDurableExecution`` response."""
    response = list_item(view)
    response["Version"] = view.qualifier
    response["ExecutionDataIncluded"] = include_data
    if include_data:
        if input_payload is not None:
            response["InputPayload"] = input_payload
        if view.status == "SUCCEEDED" and view.result is not None:
            response["Result"] = view.result
        if view.error is not None:
            response["Error"] = dict(view.error)
    response["DurableConfig"] = {
        "ExecutionTimeout": view.timeout,
        "RetentionPeriodInDays": RETENTION_DAYS,
    }
    return response


def list_page(
    views: Iterable[ExecutionView],
    *,
    statuses: list[str] | None = None,
    name: str | None = None,
    qualifier: str | None = None,
    started_after: dt.datetime | None = None,
    started_before: dt.datetime | None = None,
    max_items: int | None = None,
    marker: str | None = None,
    reverse: bool = False,
) -> dict[str, Any]:
    """A ``ListDurableExecutionsByFunction`` response over ``views`` (in creation order).

    Newest first unless ``reverse`` (the API's ``ReverseOrder``: oldest first).
    """
    bad = sorted(set(statuses or ()) - EXECUTION_STATUSES)
    if bad:
        raise invalid(f"Invalid status {bad[0]!r}; valid: {', '.join(sorted(EXECUTION_STATUSES))}")
    if max_items is not None and not 0 <= max_items <= MAX_PAGE:
        raise invalid(f"MaxItems must be within 0..{MAX_PAGE}, got {max_items}")
    after = started_after.timestamp() if started_after else None
    before = started_before.timestamp() if started_before else None
    selected = [
        v
        for v in views
        if (not statuses or v.status in statuses)
        and (name is None or v.execution_name == name)
        and (qualifier is None or v.qualifier == qualifier)
        and (after is None or v.start_time > after)
        and (before is None or v.start_time < before)
    ]
    if not reverse:
        selected.reverse()
    start = _offset(marker, len(selected))
    page = selected[start : start + (max_items or _LIST_PAGE)]
    response: dict[str, Any] = {"DurableExecutions": [list_item(v) for v in page]}
    if start + len(page) < len(selected):
        response["NextMarker"] = f"executions:{start + len(page)}"
    return response


def _offset(marker: str | None, size: int) -> int:
    if not marker:
        return 0
    kind, _, offset = marker.partition(":")
    if kind != "executions" or not offset.isdigit() or int(offset) > size:
        raise invalid(f"Invalid marker {marker!r}")
    return int(offset)
