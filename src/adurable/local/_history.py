"""Execution history (PROTOCOL §14): building events and serving them like the real API.

Events are stored exactly as ``GetDurableExecutionHistory`` returns them through botocore:
``EventType``, ``EventId`` (1-based, chronological), ``EventTimestamp`` (aware datetime),
the operation's ``Id``/``ParentId``/``Name``/``SubType`` when the event is about an operation,
and one ``<EventType>Details`` structure. Payload-carrying members are ``EventInput`` /
``EventResult`` (``{"Payload": str, "Truncated": False}``) and ``EventError``
(``{"Payload": ErrorObject, "Truncated": False}``), as the service returns them; with
``IncludeExecutionData=False`` they are replaced by ``{"Truncated": True}``.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from adurable._wire import ErrorObject, Operation
from adurable.local._model import Record, invalid
from adurable.local._validate import MAX_PAGE

__all__ = ("append_events", "error_payload", "event", "page_events", "payload")

#: Details members that carry execution data (EventInput / EventResult / EventError).
_DATA_MEMBERS = ("Input", "Result", "Error")


def event(
    event_type: str, op: Operation | None, when: dt.datetime, details: dict[str, Any]
) -> dict[str, Any]:
    """One history event (without ``EventId``, which ``append_events`` assigns)."""
    built: dict[str, Any] = {"EventType": event_type, "EventTimestamp": when}
    if op is not None:
        built["Id"] = op.id
        if op.parent_id:
            built["ParentId"] = op.parent_id
        if op.name:
            built["Name"] = op.name
        if op.sub_type:
            built["SubType"] = op.sub_type
    built[f"{event_type}Details"] = details
    return built


def payload(value: str | None) -> dict[str, Any]:
    """``EventInput`` / ``EventResult`` of a payload string (no ``Payload`` when there is none).

    The service always says whether it cut the payload: ``Truncated`` is ``False`` here.
    """
    return {"Truncated": False} if value is None else {"Payload": value, "Truncated": False}


def error_payload(error: ErrorObject | None) -> dict[str, Any]:
    """``EventError`` of an ErrorObject (no ``Payload`` when there is none)."""
    if error is None:
        return {"Truncated": False}
    return {"Payload": error.to_wire(), "Truncated": False}


def append_events(record: Record, events: list[dict[str, Any]]) -> None:
    """Append ``events`` to the record's history, numbering them."""
    for built in events:
        event_id = len(record.history) + 1
        event_type = built.pop("EventType")
        record.history.append({"EventType": event_type, "EventId": event_id, **built})
    if events:
        record.dirty = True


def page_events(
    history: list[dict[str, Any]],
    *,
    include_data: bool = True,
    max_items: int | None = None,
    marker: str | None = None,
    reverse: bool = False,
) -> dict[str, Any]:
    """A ``GetDurableExecutionHistory`` response: ``{"Events": [...], "NextMarker"?}``."""
    if max_items is not None and not 0 <= max_items <= MAX_PAGE:
        raise invalid(f"MaxItems must be within 0..{MAX_PAGE}, got {max_items}")
    limit = max_items or MAX_PAGE
    ordered = list(reversed(history)) if reverse else history
    start = _marker_offset(marker, len(ordered))
    page = ordered[start : start + limit]
    events = [copy.deepcopy(e) if include_data else _without_data(e) for e in page]
    response: dict[str, Any] = {"Events": events}
    if start + len(page) < len(ordered):
        response["NextMarker"] = f"events:{start + len(page)}"
    return response


def _marker_offset(marker: str | None, size: int) -> int:
    if not marker:
        return 0
    kind, _, offset = marker.partition(":")
    if kind != "events" or not offset.isdigit() or int(offset) > size:
        raise invalid(f"Invalid marker {marker!r}")
    return int(offset)


def _without_data(built: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``built`` whose payload members are ``{"Truncated": True}``."""
    stripped = copy.deepcopy(built)
    details = stripped.get(f"{stripped['EventType']}Details")
    if isinstance(details, dict):
        for member in _DATA_MEMBERS:
            if member in details:
                details[member] = {"Truncated": True}
    return stripped
