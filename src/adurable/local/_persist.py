"""Records to store rows and back (the write-through half of ``_store``).

``changed_rows`` collects what the service changed since the last write (dirty records,
operations, new events, timers, new callbacks) and marks it clean; ``load_records`` rebuilds
the records from everything a store holds. Values are JSON; datetimes (history timestamps,
cached checkpoint answers) travel as ``{"$dt": "<ISO-8601>"}``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from adurable._wire import Operation
from adurable.local._model import ExecutionView, Record, Timer
from adurable.local._store import Rows

__all__ = ("Loaded", "changed_rows", "decode", "encode", "load_records")


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"cannot store {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$dt" in obj:
        return dt.datetime.fromisoformat(obj["$dt"])
    return obj


def encode(value: Any) -> str:
    """JSON text of ``value`` (datetimes kept)."""
    return json.dumps(value, default=_default, separators=(",", ":"))


def decode(text: str) -> Any:
    """Inverse of ``encode``."""
    return json.loads(text, object_hook=_hook)


# ---------------------------------------------------------------------- writing


def changed_rows(records: Iterable[Record], meta: dict[str, str]) -> Rows:
    """The rows to write for every dirty record, plus ``meta``; marks the records clean."""
    rows = Rows(meta=dict(meta))
    for record in records:
        if record.dirty or record.dirty_ops or record.timers_dirty or record.new_callbacks:
            _record_rows(record, rows)
    return rows


def _record_rows(record: Record, rows: Rows) -> None:
    view = record.view
    arn = view.arn
    if record.dirty:
        rows.executions.append(
            (
                arn,
                record.order,
                view.function_name,
                view.qualifier,
                view.execution_name,
                view.status,
                view.start_time,
                encode(_record_data(record)),
            )
        )
    for op_id in record.dirty_ops:
        op = view.operations[op_id]
        meta = encode(record.op_meta.get(op_id, {}))
        rows.operations.append((arn, op_id, record.positions[op_id], _dump_op(op), meta))
    for event in record.history[record.saved_events :]:
        rows.events.append((arn, event["EventId"], encode(event)))
    if record.timers_dirty:
        rows.timers_of.add(arn)
        rows.timers.extend((arn, t.kind, t.op_id, t.due, t.seq) for t in record.timers.values())
    rows.callbacks.extend((cid, arn, op_id) for cid, op_id in record.new_callbacks)
    _mark_clean(record)


def _mark_clean(record: Record) -> None:
    record.dirty = False
    record.dirty_ops.clear()
    record.saved_events = len(record.history)
    record.timers_dirty = False
    record.new_callbacks.clear()


def _dump_op(op: Operation) -> str:
    return op.model_dump_json(by_alias=True, exclude_none=True)


def _record_data(record: Record) -> dict[str, Any]:
    view = record.view
    return {
        "status": view.status,
        "result": view.result,
        "error": view.error,
        "invocations": view.invocations,
        "consecutive_failures": view.consecutive_failures,
        "request_id": view.request_id,
        "invoked_by": list(view.invoked_by) if view.invoked_by else None,
        "tenant_id": view.tenant_id,
        "end_time": view.end_time,
        "timeout": view.timeout,
        "execution_op_id": record.execution_op_id,
        "token": record.token,
        "token_seq": record.token_seq,
        "invocation_started": record.invocation_started,
        "client_tokens": [[k[0], k[1], v] for k, v in record.client_tokens.items()],
        "delta_pending": list(record.delta_pending),
        "updated": list(record.updated),
        "delta_seq": record.delta_seq,
        "delta_snapshot": list(record.delta_snapshot) if record.delta_snapshot else None,
        "retry_due": record.retry_due,
        "reinvoke": record.reinvoke,
    }


# ---------------------------------------------------------------------- reading


@dataclass
class Loaded:
    """What a store held, as records."""

    records: dict[str, Record] = field(default_factory=dict)
    callbacks: dict[str, tuple[str, str]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)


def load_records(rows: Rows) -> Loaded:
    """Rebuild every record from ``rows`` (all clean: nothing to write back)."""
    loaded = Loaded(meta=dict(rows.meta))
    for row in rows.executions:
        record = _load_record(row)
        loaded.records[record.view.arn] = record
    for arn, op_id, position, op_text, meta_text in rows.operations:
        record = loaded.records[arn]
        record.view.operations[op_id] = Operation.model_validate_json(op_text)
        record.positions[op_id] = position
        meta = decode(meta_text)
        if meta:
            record.op_meta[op_id] = meta
    for arn, _, event_text in rows.events:
        loaded.records[arn].history.append(decode(event_text))
    for arn, kind, op_id, due, seq in rows.timers:
        loaded.records[arn].timers[(kind, op_id)] = Timer(due, seq, kind, op_id)
    for callback_id, arn, op_id in rows.callbacks:
        loaded.callbacks[callback_id] = (arn, op_id)
    for record in loaded.records.values():
        _mark_clean(record)
    return loaded


def _load_record(row: tuple[str, int, str, str, str, str, float, str]) -> Record:
    arn, order, function_name, qualifier, name, _status, start, data_text = row
    data = decode(data_text)
    view = ExecutionView(
        arn=arn,
        execution_name=name,
        status=data["status"],
        result=data["result"],
        error=data["error"],
        invocations=data["invocations"],
        consecutive_failures=data["consecutive_failures"],
        request_id=data["request_id"],
        invoked_by=tuple(data["invoked_by"]) if data["invoked_by"] else None,
        tenant_id=data["tenant_id"],
        function_name=function_name,
        qualifier=qualifier,
        start_time=start,
        end_time=data["end_time"],
        timeout=data["timeout"],
    )
    snapshot = data["delta_snapshot"]
    return Record(
        view=view,
        execution_op_id=data["execution_op_id"],
        order=order,
        token=data["token"],
        token_seq=data["token_seq"],
        invocation_started=data["invocation_started"],
        client_tokens=OrderedDict(((k1, k2), v) for k1, k2, v in data["client_tokens"]),
        delta_pending=dict.fromkeys(data["delta_pending"]),
        updated=dict.fromkeys(data["updated"]),
        delta_seq=data["delta_seq"],
        delta_snapshot=(snapshot[0], snapshot[1]) if snapshot else None,
        retry_due=data["retry_due"],
        reinvoke=data["reinvoke"],
    )
