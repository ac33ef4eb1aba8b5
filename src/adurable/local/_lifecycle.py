"""Service-driven changes: completing executions, failed invocations, timers, callbacks and
chained invokes (PROTOCOL §4.7, §9.2, §9.3).

``ServiceLifecycle`` adds to ``ServiceCore`` everything the service does on its own account
rather than because a checkpoint asked for it. Callers hold the lock (``_tx``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from adurable._wire import (
    CallbackDetails,
    ChainedInvokeDetails,
    ChainedInvokeOptions,
    ErrorObject,
    Operation,
    OperationStatus,
    OperationUpdate,
)
from adurable.local._core import ServiceCore, executed_version
from adurable.local._history import append_events, error_payload, event, payload
from adurable.local._model import (
    CALLBACK_HEARTBEAT,
    CALLBACK_TIMEOUT,
    EXECUTION_TIMEOUT,
    INVOCATION_RETRY,
    STEP_RETRY,
    WAIT,
    ChainedInvokeRequest,
    Record,
    ServiceError,
    Timer,
    not_found,
)
from adurable.local._state import Completion, Resolution, finish, to_datetime
from adurable.local._validate import parse_target

__all__ = ("ServiceLifecycle",)

_S = OperationStatus

_OP_STATUS = {
    "SUCCEEDED": _S.SUCCEEDED,
    "FAILED": _S.FAILED,
    "TIMED_OUT": _S.TIMED_OUT,
    "STOPPED": _S.STOPPED,
}
_EXECUTION_EVENT = {
    "SUCCEEDED": "ExecutionSucceeded",
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "STOPPED": "ExecutionStopped",
}
_INVOKE_EVENT = {
    "SUCCEEDED": "ChainedInvokeSucceeded",
    "FAILED": "ChainedInvokeFailed",
    "TIMED_OUT": "ChainedInvokeTimedOut",
    "STOPPED": "ChainedInvokeStopped",
}


class ServiceLifecycle(ServiceCore):
    """What the service changes by itself (see the module docstring)."""

    # ------------------------------------------------------------------ completion

    def _complete(self, record: Record, completion: Completion, now: float) -> None:
        """End a RUNNING execution: status, outcome, EXECUTION op, history, no token."""
        view = record.view
        when = to_datetime(now)
        view.status = completion.status
        view.result = completion.result
        view.error = completion.error.to_wire() if completion.error is not None else None
        view.end_time = now
        op = finish(view.operations[record.execution_op_id], _OP_STATUS[completion.status], when)
        record.put_op(op)
        if completion.status == "SUCCEEDED":
            details = {"Result": payload(completion.result)}
        else:
            details = {"Error": error_payload(completion.error)}
        append_events(record, [event(_EXECUTION_EVENT[completion.status], op, when, details)])
        record.token = None
        record.clear_timers()
        record.retry_due = record.reinvoke = False
        record.dirty = True
        if view.invoked_by is not None:
            self._complete_caller(view.invoked_by, completion, when)

    def _complete_caller(
        self, link: tuple[str, str], completion: Completion, when: dt.datetime
    ) -> None:
        """A chained-invoke target execution ended: its outcome completes the caller's op."""
        record = self._records.get(link[0])
        op = record.view.operations.get(link[1]) if record is not None else None
        if record is None or op is None or not record.running or op.status is not _S.STARTED:
            return
        status = completion.status
        if status == "SUCCEEDED":
            details = ChainedInvokeDetails(result=completion.result)
            event_details = {"Result": payload(completion.result)}
        else:
            error = completion.error
            if status == "TIMED_OUT":
                error = ErrorObject(
                    error_type="ChainedInvoke.Timeout",
                    error_message="The invoked durable execution timed out",
                )
            details = ChainedInvokeDetails(error=error)
            event_details = {"Error": error_payload(error)}
        fields = {"chained_invoke_details": details}
        self._service_change(
            record, op, _OP_STATUS[status], fields, _INVOKE_EVENT[status], event_details, when
        )

    # ------------------------------------------------------------------ invocations

    def _invocation_failed(self, record: Record, error: ErrorObject) -> None:
        view = record.view
        self._invocation_completed(record, error)
        if not record.running:
            return
        view.consecutive_failures += 1
        if view.consecutive_failures >= self.max_invocation_attempts:
            self._complete(record, Completion("FAILED", None, error), self.clock.now())
            return
        due = self.clock.now() + self.invocation_retry_delay
        record.set_timer(Timer(due, self._next_seq(), INVOCATION_RETRY, ""))

    # ------------------------------------------------------------------ timers

    def _fire_due(self, record: Record) -> None:
        now = self.clock.now()
        while record.running:
            due = [t for t in record.timers.values() if t.due <= now]
            if not due:
                return
            timer = min(due, key=lambda t: (t.due, t.seq))
            record.drop_timer(timer.kind, timer.op_id)
            self._fire(record, timer)

    def _fire(self, record: Record, timer: Timer) -> None:
        if timer.kind == INVOCATION_RETRY:
            record.retry_due = True
            record.dirty = True
            return
        if timer.kind == EXECUTION_TIMEOUT:
            error = ErrorObject(
                error_type="Execution.Timeout",
                error_message=f"Execution timed out after {record.view.timeout} seconds",
            )
            self._complete(record, Completion("TIMED_OUT", None, error), timer.due)
            return
        op = record.view.operations.get(timer.op_id)
        if op is None:
            return
        when = to_datetime(timer.due)
        if timer.kind == WAIT and op.status is _S.STARTED:
            seconds = record.op_meta.get(op.id, {}).get("wait_seconds")
            details = {"Duration": seconds} if seconds is not None else {}
            self._service_change(record, op, _S.SUCCEEDED, {}, "WaitSucceeded", details, when)
        elif timer.kind == STEP_RETRY and op.status is _S.PENDING:
            self._service_change(record, op, _S.READY, {}, None, {}, when)
        elif timer.kind in (CALLBACK_TIMEOUT, CALLBACK_HEARTBEAT) and op.status is _S.STARTED:
            self._time_out_callback(record, op, timer.kind == CALLBACK_HEARTBEAT, when)

    def _time_out_callback(
        self, record: Record, op: Operation, heartbeat: bool, when: dt.datetime
    ) -> None:
        if heartbeat:
            error = ErrorObject(
                error_type="Callback.Heartbeat", error_message="Callback timed out on heartbeat"
            )
        else:
            error = ErrorObject(error_type="Callback.Timeout", error_message="Callback timed out")
        callback_id = op.callback_details.callback_id if op.callback_details else None
        fields = {"callback_details": CallbackDetails(callback_id=callback_id, error=error)}
        self._service_change(
            record,
            op,
            _S.TIMED_OUT,
            fields,
            "CallbackTimedOut",
            {"Error": error_payload(error)},
            when,
        )
        self._clear_callback_timers(record, op.id)

    def _clear_callback_timers(self, record: Record, op_id: str) -> None:
        record.drop_timer(CALLBACK_TIMEOUT, op_id)
        record.drop_timer(CALLBACK_HEARTBEAT, op_id)

    def _service_change(
        self,
        record: Record,
        op: Operation,
        status: OperationStatus,
        fields: dict[str, Any],
        event_type: str | None,
        event_details: dict[str, Any],
        when: dt.datetime | None = None,
    ) -> None:
        """Record a change made by the service itself (timer, callback, invoke completion)."""
        when = when or self.clock.now_datetime()
        if status.is_terminal:
            new = finish(op, status, when, **fields)
        else:
            new = op.model_copy(update={"status": status, **fields})
        record.put_op(new)
        record.delta_pending[op.id] = None
        record.updated[op.id] = None
        if event_type is not None:
            append_events(record, [event(event_type, new, when, event_details)])

    # ------------------------------------------------------------------ callbacks

    def _callback_target(self, callback_id: str) -> tuple[Record, Operation]:
        target = self._callbacks.get(callback_id)
        if target is None:
            raise not_found(f"Unknown callback id {callback_id!r}")
        record = self._records[target[0]]
        self._fire_due(record)
        op = record.view.operations[target[1]]
        if op.status is _S.TIMED_OUT:
            raise ServiceError(
                "CallbackTimeoutException", f"Callback {callback_id!r} timed out", 400
            )
        if op.status is not _S.STARTED or not record.running:
            raise not_found(
                f"Callback {callback_id!r} is not waiting (operation {op.status.value}, "
                f"execution {record.view.status})"
            )
        return record, op

    # ------------------------------------------------------------------ chained invokes

    def _resolve_chained_invoke(
        self, arn: str, update: OperationUpdate, options: ChainedInvokeOptions
    ) -> ErrorObject | None:
        """Hook: resolve a chained-invoke target when its START is checkpointed.

        Return an ErrorObject to fail the operation immediately (visible in the same
        checkpoint response, PROTOCOL §4.7), None to leave it STARTED. The default fails
        targets ``register_function`` does not know (no check while nothing is registered).
        """
        if not self._functions:
            return None
        target = parse_target(options.function_name, self.region, self.account)
        if target is None or target[0] not in self._functions:
            return ErrorObject(
                error_type="ResourceNotFoundException",
                error_message=f"Function not found: {options.function_name}",
            )
        name, qualifier = target
        if qualifier is None and self._functions[name].durable:
            return ErrorObject(
                error_type="InvalidParameterValueException",
                error_message=(
                    f"Durable function {name} must be invoked with a qualified name or ARN "
                    f"(version, alias or $LATEST): {options.function_name}"
                ),
            )
        return None

    def _resolve(
        self, record: Record, update: OperationUpdate, options: ChainedInvokeOptions
    ) -> Resolution:
        """Where a CHAINED_INVOKE START goes (see ``Resolution``); durable targets get an ARN."""
        error = self._resolve_chained_invoke(record.view.arn, update, options)
        if error is not None:
            return Resolution(error=error)
        target = parse_target(options.function_name, self.region, self.account)
        if target is None or target[0] not in self._functions:
            return Resolution()
        name, qualifier = target
        version = executed_version(qualifier)
        config = self._functions[name]
        meta: dict[str, Any] = {
            "function": name,
            "qualifier": qualifier,
            "version": version,
            "payload": update.payload,
            "tenant": options.tenant_id,
            "plain": not config.durable,
            "child": self._new_arn(name, version) if config.durable else None,
        }
        return Resolution(meta=meta)

    def _start_target(self, record: Record, op_id: str) -> None:
        """Queue a resolved chained invoke; a durable target gets its child execution now."""
        meta = record.op_meta[op_id]
        child = meta.get("child")
        if child:
            self._create_execution(
                meta["payload"],
                meta["function"],
                meta["version"],
                None,
                arn=child,
                invoked_by=(record.view.arn, op_id),
                tenant_id=meta["tenant"],
            )
        self._invoke_requests.append(_request(record.view.arn, op_id, meta))

    def _plain_invokes(self) -> list[ChainedInvokeRequest]:
        """Every STARTED chained invoke of a plain registered function, in creation order."""
        requests = []
        for record in self._records.values():
            if not record.running:
                continue
            for op_id, meta in record.op_meta.items():
                op = record.view.operations[op_id]
                if meta.get("plain") and op.status is _S.STARTED:
                    requests.append(_request(record.view.arn, op_id, meta))
        return requests


def _request(arn: str, op_id: str, meta: dict[str, Any]) -> ChainedInvokeRequest:
    return ChainedInvokeRequest(
        arn,
        op_id,
        meta["function"],
        meta["qualifier"],
        meta["payload"],
        meta["tenant"],
        meta.get("child"),
    )
