"""The service-side state machines of PROTOCOL §4.7, applied to one checkpoint call.

``validate`` parses a call's updates (§3.7) and computes their effects on a ``Batch`` — an
overlay over the execution's record — without touching the record; the first violation raises
``ServiceError`` and the call changes nothing. The caller commits the batch atomically.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adurable._wire import (
    CallbackDetails,
    ChainedInvokeDetails,
    ChainedInvokeOptions,
    ContextDetails,
    ErrorObject,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StepDetails,
    WaitDetails,
)
from adurable.local._history import error_payload, event, payload
from adurable.local._model import (
    CALLBACK_HEARTBEAT,
    CALLBACK_TIMEOUT,
    STEP_RETRY,
    WAIT,
    ExecutionStatus,
    Record,
    Timer,
    invalid,
)
from adurable.local._validate import (
    INVOKE_PAYLOAD_LIMIT,
    MAX_CALLBACK_TIMEOUT,
    MAX_DURATION_SECONDS,
    TENANT_RE,
    check_consistent,
    check_range,
    no_error,
    no_payload,
    parse_update,
)

__all__ = ("Batch", "Completion", "Resolution", "Resolver", "finish", "to_datetime", "validate")

_A = OperationAction
_S = OperationStatus
_T = OperationType

VALID_ACTIONS: dict[OperationType, frozenset[OperationAction]] = {
    _T.STEP: frozenset({_A.START, _A.SUCCEED, _A.FAIL, _A.RETRY}),
    _T.CONTEXT: frozenset({_A.START, _A.SUCCEED, _A.FAIL}),
    _T.WAIT: frozenset({_A.START, _A.CANCEL}),
    _T.CALLBACK: frozenset({_A.START}),
    _T.CHAINED_INVOKE: frozenset({_A.START}),
    _T.EXECUTION: frozenset({_A.SUCCEED, _A.FAIL}),
}


@dataclass(eq=False)
class Completion:
    """How an execution ends."""

    status: ExecutionStatus
    result: str | None
    error: ErrorObject | None


@dataclass(eq=False)
class Resolution:
    """Where a CHAINED_INVOKE START goes: fail at once (``error``), a resolved target
    (``meta``: the op metadata, see ``Record.op_meta``), or neither (stays STARTED)."""

    error: ErrorObject | None = None
    meta: dict[str, Any] | None = None


Resolver = Callable[[Record, OperationUpdate, ChainedInvokeOptions], Resolution]


@dataclass(eq=False)
class Batch:
    """The effects of one checkpoint call, computed on an overlay and committed atomically."""

    record: Record
    now: float
    seq: Callable[[], int]
    resolve: Resolver
    ops: dict[str, Operation] = field(default_factory=dict)
    seen: dict[str, list[OperationAction]] = field(default_factory=dict)
    touched: dict[str, None] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    timers: list[tuple[tuple[str, str], Timer | None]] = field(default_factory=list)
    callbacks: dict[str, str] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: CHAINED_INVOKE ids whose resolved target must be started at commit.
    invokes: list[str] = field(default_factory=list)
    completion: Completion | None = None

    @property
    def now_dt(self) -> dt.datetime:
        return to_datetime(self.now)

    def current(self, op_id: str) -> Operation | None:
        return self.ops.get(op_id) or self.record.view.operations.get(op_id)

    def put(self, op: Operation) -> None:
        self.ops[op.id] = op
        self.touched[op.id] = None

    def event(self, event_type: str, op: Operation | None, details: dict[str, Any]) -> None:
        self.events.append(event(event_type, op, self.now_dt, details))

    def set_timer(self, kind: str, op_id: str, due: float) -> None:
        self.timers.append(((kind, op_id), Timer(due, self.seq(), kind, op_id)))

    def clear_timer(self, kind: str, op_id: str) -> None:
        self.timers.append(((kind, op_id), None))


def to_datetime(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def finish(op: Operation, status: OperationStatus, when: dt.datetime, **fields: Any) -> Operation:
    """``op`` in terminal ``status`` at ``when`` (plus ``fields``)."""
    return op.model_copy(update={"status": status, "end_timestamp": when, **fields})


def validate(batch: Batch, raw_updates: list[Any]) -> Batch:
    """Apply ``raw_updates`` to ``batch`` or raise ``ServiceError`` (nothing committed)."""
    parsed = [parse_update(index, raw) for index, raw in enumerate(raw_updates)]
    executions = [i for i, u in enumerate(parsed) if u.type is _T.EXECUTION]
    if len(executions) > 1:
        raise invalid("At most one EXECUTION update is allowed per checkpoint")
    if executions and executions[0] != len(parsed) - 1:
        raise invalid("An EXECUTION update must be the last update of its checkpoint")
    for index, update in enumerate(parsed):
        where = f"Updates[{index}] ({update.type.value} {update.id} {update.action.value})"
        _apply(batch, update, where)
    return batch


def _apply(batch: Batch, update: OperationUpdate, where: str) -> None:
    if update.action not in VALID_ACTIONS[update.type]:
        allowed = ", ".join(sorted(a.value for a in VALID_ACTIONS[update.type]))
        raise invalid(f"{where}: invalid action for {update.type.value}; allowed: {allowed}")
    if update.type is _T.EXECUTION:
        _apply_execution(batch, update, where)
        return
    previous = batch.seen.setdefault(update.id, [])
    if previous and not (
        update.type in (_T.STEP, _T.CONTEXT)
        and previous == [_A.START]
        and update.action is not _A.START
    ):
        raise invalid(f"{where}: duplicate operation id in one checkpoint")
    previous.append(update.action)
    if update.parent_id is not None:
        parent = batch.current(update.parent_id)
        if parent is None or parent.type is not _T.CONTEXT:
            raise invalid(f"{where}: Invalid parent operation id {update.parent_id!r}")
    current = batch.current(update.id)
    if current is not None:
        check_consistent(where, update, current)
    _APPLY[update.type](batch, update, current, where)


def _new_op(
    u: OperationUpdate, now: dt.datetime, status: OperationStatus, **details: Any
) -> Operation:
    return Operation(
        id=u.id,
        parent_id=u.parent_id,
        name=u.name,
        type=u.type,
        sub_type=u.sub_type,
        start_timestamp=now,
        status=status,
        **details,
    )


# ---------------------------------------------------------------------- STEP


def _apply_step(batch: Batch, u: OperationUpdate, cur: Operation | None, where: str) -> None:
    if u.action is _A.START:
        _step_start(batch, u, cur, where)
        return
    if cur is None:
        raise invalid(f"{where}: Invalid status transition: the step was never started")
    if cur.status not in (_S.STARTED, _S.READY):
        raise invalid(
            f"{where}: Invalid status transition: {u.action.value} needs a STARTED or READY "
            f"step, this one is {cur.status.value}"
        )
    attempt = (cur.step_details.attempt if cur.step_details else 0) + 1
    batch.clear_timer(STEP_RETRY, u.id)
    if u.action is _A.SUCCEED:
        no_error(u, where)
        details = StepDetails(attempt=attempt, result=u.payload)
        op = finish(cur, _S.SUCCEEDED, batch.now_dt, step_details=details)
        batch.put(op)
        retry = {"CurrentAttempt": attempt}
        batch.event("StepSucceeded", op, {"Result": payload(u.payload), "RetryDetails": retry})
    elif u.action is _A.FAIL:
        no_payload(u, where)
        details = StepDetails(attempt=attempt, error=u.error)
        op = finish(cur, _S.FAILED, batch.now_dt, step_details=details)
        batch.put(op)
        retry = {"CurrentAttempt": attempt}
        batch.event("StepFailed", op, {"Error": error_payload(u.error), "RetryDetails": retry})
    else:
        _step_retry(batch, u, cur, attempt, where)


def _step_start(batch: Batch, u: OperationUpdate, cur: Operation | None, where: str) -> None:
    if cur is None:
        op = _new_op(u, batch.now_dt, _S.STARTED, step_details=StepDetails(attempt=0))
    elif cur.status is _S.READY:
        op = cur.model_copy(update={"status": _S.STARTED})
    else:
        raise invalid(
            f"{where}: Invalid status transition: START needs a new or READY step, "
            f"this one is {cur.status.value}"
        )
    batch.put(op)
    batch.event("StepStarted", op, {})


def _step_retry(batch: Batch, u: OperationUpdate, cur: Operation, attempt: int, where: str) -> None:
    if u.step_options is None:
        raise invalid(f"{where}: RETRY requires StepOptions")
    if u.error is not None and u.payload is not None:
        raise invalid(f"{where}: RETRY must not carry both Error and Payload")
    delay = u.step_options.next_attempt_delay_seconds
    check_range(where, "NextAttemptDelaySeconds", delay, 1, MAX_DURATION_SECONDS)
    due = batch.now + delay
    details = StepDetails(
        attempt=attempt, next_attempt_timestamp=to_datetime(due), result=u.payload, error=u.error
    )
    op = cur.model_copy(update={"status": _S.PENDING, "step_details": details})
    batch.put(op)
    batch.set_timer(STEP_RETRY, u.id, due)
    retry = {"CurrentAttempt": attempt, "NextAttemptDelaySeconds": delay}
    if u.error is not None:
        batch.event("StepFailed", op, {"Error": error_payload(u.error), "RetryDetails": retry})
    else:  # a wait_for_condition poll: the state payload is the "result" of this attempt
        batch.event("StepSucceeded", op, {"Result": payload(u.payload), "RetryDetails": retry})


# ---------------------------------------------------------------------- WAIT, CALLBACK


def _apply_wait(batch: Batch, u: OperationUpdate, cur: Operation | None, where: str) -> None:
    if u.action is _A.CANCEL:
        if cur is None or cur.status is not _S.STARTED:
            state = "missing" if cur is None else cur.status.value
            raise invalid(
                f"{where}: Invalid status transition: CANCEL needs a STARTED wait ({state})"
            )
        op = finish(cur, _S.CANCELLED, batch.now_dt)
        batch.put(op)
        batch.clear_timer(WAIT, u.id)
        batch.event("WaitCancelled", op, {})
        return
    if cur is not None:
        raise invalid(f"{where}: Invalid status transition: the wait already exists")
    if u.wait_options is None:
        raise invalid(f"{where}: START of a WAIT requires WaitOptions")
    seconds = u.wait_options.wait_seconds
    check_range(where, "WaitSeconds", seconds, 1, MAX_DURATION_SECONDS)
    due = batch.now + seconds
    end = to_datetime(due)
    op = _new_op(u, batch.now_dt, _S.STARTED, wait_details=WaitDetails(scheduled_end_timestamp=end))
    batch.put(op)
    batch.set_timer(WAIT, u.id, due)
    batch.meta[u.id] = {"wait_seconds": seconds}
    batch.event("WaitStarted", op, {"Duration": seconds, "ScheduledEndTimestamp": end})


def _apply_callback(batch: Batch, u: OperationUpdate, cur: Operation | None, where: str) -> None:
    if cur is not None:
        raise invalid(f"{where}: Invalid status transition: the callback already exists")
    timeout = u.callback_options.timeout_seconds if u.callback_options else 0
    heartbeat = u.callback_options.heartbeat_timeout_seconds if u.callback_options else 0
    check_range(where, "TimeoutSeconds", timeout, 0, MAX_CALLBACK_TIMEOUT)
    check_range(where, "HeartbeatTimeoutSeconds", heartbeat, 0, MAX_CALLBACK_TIMEOUT)
    raw = f"{batch.record.execution_op_id}:{u.id}:{batch.seq()}"
    callback_id = base64.b64encode(raw.encode("ascii")).decode("ascii")
    details = CallbackDetails(callback_id=callback_id)
    op = _new_op(u, batch.now_dt, _S.STARTED, callback_details=details)
    batch.put(op)
    batch.callbacks[callback_id] = u.id
    batch.meta[u.id] = {"timeout": timeout, "heartbeat": heartbeat}
    if timeout > 0:
        batch.set_timer(CALLBACK_TIMEOUT, u.id, batch.now + timeout)
    if heartbeat > 0:
        batch.set_timer(CALLBACK_HEARTBEAT, u.id, batch.now + heartbeat)
    started: dict[str, Any] = {"CallbackId": callback_id}
    if heartbeat > 0:
        started["HeartbeatTimeout"] = heartbeat
    if timeout > 0:
        started["Timeout"] = timeout
    batch.event("CallbackStarted", op, started)


# ---------------------------------------------------------------------- CHAINED_INVOKE


def _apply_chained_invoke(
    batch: Batch, u: OperationUpdate, cur: Operation | None, where: str
) -> None:
    if cur is not None:
        raise invalid(f"{where}: Invalid status transition: the chained invoke already exists")
    options = u.chained_invoke_options
    if options is None:
        raise invalid(f"{where}: START of a CHAINED_INVOKE requires ChainedInvokeOptions")
    if not 1 <= len(options.function_name) <= 256:
        raise invalid(f"{where}: FunctionName must be 1-256 characters")
    if options.tenant_id is not None and not TENANT_RE.fullmatch(options.tenant_id):
        raise invalid(f"{where}: invalid TenantId {options.tenant_id!r}")
    if u.payload is not None and len(u.payload.encode("utf-8")) > INVOKE_PAYLOAD_LIMIT:
        raise invalid(f"{where}: chained invoke payload exceeds 1 MiB")
    op = _new_op(u, batch.now_dt, _S.STARTED)
    batch.put(op)
    resolution = batch.resolve(batch.record, u, options)
    batch.event("ChainedInvokeStarted", op, _invoke_started(u, options, resolution))
    if resolution.error is not None:
        details = ChainedInvokeDetails(error=resolution.error)
        failed = finish(op, _S.FAILED, batch.now_dt, chained_invoke_details=details)
        batch.put(failed)
        batch.event("ChainedInvokeFailed", failed, {"Error": error_payload(resolution.error)})
    elif resolution.meta is not None:
        batch.meta[u.id] = resolution.meta
        batch.invokes.append(u.id)


def _invoke_started(
    u: OperationUpdate, options: ChainedInvokeOptions, resolution: Resolution
) -> dict[str, Any]:
    details: dict[str, Any] = {"FunctionName": options.function_name}
    if options.tenant_id is not None:
        details["TenantId"] = options.tenant_id
    if u.payload is not None:
        details["Input"] = payload(u.payload)
    meta = resolution.meta
    if meta is not None:
        details["ExecutedVersion"] = meta["version"]
        if meta.get("child"):
            details["DurableExecutionArn"] = meta["child"]
    return details


# ---------------------------------------------------------------------- CONTEXT, EXECUTION


def _apply_context(batch: Batch, u: OperationUpdate, cur: Operation | None, where: str) -> None:
    if u.action is _A.START:
        if cur is not None:
            raise invalid(f"{where}: Invalid status transition: the context already exists")
        op = _new_op(u, batch.now_dt, _S.STARTED)
        batch.put(op)
        batch.event("ContextStarted", op, {})
        return
    if cur is not None and cur.status is not _S.STARTED:
        raise invalid(
            f"{where}: Invalid status transition: {u.action.value} needs a STARTED or new "
            f"context, this one is {cur.status.value}"
        )
    base = cur if cur is not None else _new_op(u, batch.now_dt, _S.STARTED)
    if u.action is _A.SUCCEED:
        no_error(u, where)
        replay = u.context_options.replay_children if u.context_options else False
        details = ContextDetails(replay_children=replay, result=u.payload)
        op = finish(base, _S.SUCCEEDED, batch.now_dt, context_details=details)
        batch.put(op)
        batch.event("ContextSucceeded", op, {"Result": payload(u.payload)})
    else:
        no_payload(u, where)
        op = finish(base, _S.FAILED, batch.now_dt, context_details=ContextDetails(error=u.error))
        batch.put(op)
        batch.event("ContextFailed", op, {"Error": error_payload(u.error)})


def _apply_execution(batch: Batch, u: OperationUpdate, where: str) -> None:
    if u.action is _A.SUCCEED:
        no_error(u, where)
        batch.completion = Completion("SUCCEEDED", u.payload, None)
    else:
        no_payload(u, where)
        batch.completion = Completion("FAILED", None, u.error)


_Apply = Callable[[Batch, OperationUpdate, "Operation | None", str], None]

_APPLY: dict[OperationType, _Apply] = {
    _T.STEP: _apply_step,
    _T.WAIT: _apply_wait,
    _T.CALLBACK: _apply_callback,
    _T.CHAINED_INVOKE: _apply_chained_invoke,
    _T.CONTEXT: _apply_context,
}
