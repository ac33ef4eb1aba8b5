"""``LocalService``: the durable-execution service of the local engine (PROTOCOL §2 to §4, §14).

It plays Lambda *and* the durable-execution control plane: it starts executions, builds
invocation events, accepts checkpoints and state reads (``_checkpoints``), runs the
service-side state machines (``_state``), fires timers from its clock (``_lifecycle``),
records the execution history (``_history``) and writes every change to its store
(``_store``). The SDK talks to it through the calls it makes to the real service
(``checkpoint_durable_execution`` / ``get_durable_execution_state``) with the same
botocore-shaped requests and responses.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import ValidationError

from adurable._wire import (
    CallbackDetails,
    ChainedInvokeDetails,
    ErrorObject,
    Operation,
    OperationStatus,
    OperationType,
)
from adurable.local._checkpoints import CheckpointApi
from adurable.local._core import FunctionConfig, error_from_exception
from adurable.local._history import error_payload, payload
from adurable.local._model import (
    CALLBACK_HEARTBEAT,
    DEFAULT_EXECUTION_TIMEOUT,
    EXECUTION_TIMEOUT,
    INVOCATION_RETRY,
    ChainedInvokeRequest,
    ExecutionView,
    Record,
    Timer,
    invalid,
    not_found,
)
from adurable.local._state import Completion
from adurable.local._validate import (
    CALLBACK_RESULT_LIMIT,
    EXECUTION_NAME_RE,
    FUNCTION_RE,
    QUALIFIER_RE,
    check_output,
)
from adurable.local._views import dump_op, to_millis

__all__ = ("LocalService",)

_S = OperationStatus
_T = OperationType
_WAITING = {
    _T.WAIT: (_S.STARTED,),
    _T.STEP: (_S.PENDING, _S.READY),
    _T.CALLBACK: (_S.STARTED,),
    _T.CHAINED_INVOKE: (_S.STARTED,),
}


class LocalService(CheckpointApi):
    """The local durable-execution service (state in a ``Store``, time from a ``Clock``).

    Synchronous and thread-safe at its core (an HTTP front end may call it from threads);
    ``checkpoint_durable_execution`` / ``get_durable_execution_state`` are the awaitable
    versions the SDK uses when the service object is handed over as its Lambda client.
    """

    # ------------------------------------------------------------------ executions

    def start_execution(
        self,
        input_payload: str | None = None,
        *,
        function_name: str = "fn",
        qualifier: str = "$LATEST",
        execution_name: str | None = None,
        tenant_id: str | None = None,
    ) -> str:
        """Create an execution (EXECUTION op STARTED) and return its DurableExecutionArn.

        A given ``execution_name`` is an idempotency key: starting the same name of the same
        function and qualifier again returns the existing execution's ARN.
        """
        if not FUNCTION_RE.fullmatch(function_name):
            raise ValueError(f"function_name must match [a-zA-Z0-9_-]{{1,64}}: {function_name!r}")
        if not QUALIFIER_RE.fullmatch(qualifier):
            raise ValueError(
                f"qualifier must be $LATEST, $LATEST.PUBLISHED or a version: {qualifier!r}"
            )
        if execution_name is not None and not EXECUTION_NAME_RE.fullmatch(execution_name):
            raise ValueError(f"execution_name must match [a-zA-Z0-9_-]{{1,64}}: {execution_name!r}")
        with self._tx():
            return self._create_execution(
                input_payload, function_name, qualifier, execution_name, tenant_id=tenant_id
            )

    def find_execution(self, function_name: str, qualifier: str, name: str) -> str | None:
        """The ARN of execution ``name`` of ``function_name:qualifier``, if it exists."""
        with self._lock:
            return self._names.get((function_name, qualifier, name))

    def invocation_event(self, arn: str) -> dict[str, Any]:
        """Start an invocation: fire due timers, issue a fresh token, build the §2.1 envelope.

        Every older token of the execution becomes stale. Timestamps in the event are integer
        epoch milliseconds.
        """
        with self._tx():
            record = self._record(arn)
            self._fire_due(record)
            if not record.running:
                raise RuntimeError(
                    f"execution {arn} is {record.view.status}; there is nothing left to invoke"
                )
            self._begin_invocation(record)
            ops = list(record.view.operations.values())
            updated = list(record.updated)
            record.updated.clear()
            return {
                "DurableExecutionArn": arn,
                "CheckpointToken": record.token,
                "InitialExecutionState": {
                    "Operations": [dump_op(op, to_millis) for op in ops[: self.page_size]],
                    "NextMarker": f"ops:{self.page_size}" if len(ops) > self.page_size else "",
                },
                "UpdatedOperationIds": updated,
            }

    def _begin_invocation(self, record: Record) -> None:
        view = record.view
        view.invocations += 1
        view.request_id = str(uuid.uuid4())
        record.token = self._new_token(record)
        record.invocation_started = self.clock.now()
        record.retry_due = record.reinvoke = False
        record.drop_timer(INVOCATION_RETRY, "")
        record.dirty = True

    def finish_invocation(self, arn: str, output: Mapping[str, Any]) -> None:
        """Apply the handler's §2.5 output.

        SUCCEEDED/FAILED end the execution (unless an EXECUTION checkpoint already did);
        PENDING keeps it running. An output the service would reject (FAILED with a Result,
        SUCCEEDED with an Error, PENDING with nothing pending, a malformed object) counts as a
        failed invocation, like a function error (see ``fail_invocation``).
        """
        with self._tx():
            record = self._record(arn)
            self._fire_due(record)
            can_pend = not record.running or record.reinvoke or bool(record.updated)
            problem, status, error = check_output(output, can_pend=can_pend or _pending(record))
            if problem is not None:
                error = ErrorObject(
                    error_type="InvalidParameterValueException", error_message=problem
                )
                self._invocation_failed(record, error)
                return
            record.view.consecutive_failures = 0
            self._invocation_completed(record, None)
            if status == "PENDING" or not record.running:
                return
            result = output.get("Result") if status == "SUCCEEDED" else None
            completion = Completion(
                "SUCCEEDED" if status == "SUCCEEDED" else "FAILED", result, error
            )
            self._complete(record, completion, self.clock.now())

    def fail_invocation(self, arn: str, error: BaseException) -> None:
        """The handler raised (a Lambda function error).

        The service retries the invocation after ``invocation_retry_delay`` seconds (a timer,
        see ``next_timer``); after ``max_invocation_attempts`` consecutive failures the
        execution FAILS with the last error.
        """
        with self._tx():
            record = self._record(arn)
            self._fire_due(record)
            self._invocation_failed(record, error_from_exception(error))

    def abandon_invocation(self, arn: str, message: str) -> None:
        """The invocation in flight will never report back (its runner stopped): record it as
        crashed (``InvocationCompleted`` with a ``Runtime.ExitError``) and make the execution
        ready to be re-invoked at once. Not counted as a failed attempt."""
        with self._tx():
            record = self._record(arn)
            if record.in_flight:
                self._abandon(record, message)

    def request_invocation(self, arn: str) -> None:
        """Make a RUNNING execution due for an invocation now. An invocation that started and
        never reported back (its runner went away) is first recorded as crashed."""
        with self._tx():
            record = self._record(arn)
            if not record.running:
                return
            if record.in_flight:
                self._abandon(record, "The invocation never reported back")
            else:
                record.reinvoke = True
                record.dirty = True

    def stop_execution(self, arn: str, error: Mapping[str, Any] | None = None) -> float:
        """``StopDurableExecution``: end a RUNNING execution STOPPED; returns the stop time.

        A chained invoke waiting on it completes STOPPED with the same error.
        """
        err = _error_object(error) if error is not None else None
        with self._tx():
            record = self._records.get(arn)
            if record is None:
                raise not_found(f"Durable execution not found: {arn}")
            self._fire_due(record)
            if not record.running:
                raise invalid(f"Durable execution {arn} is not running ({record.view.status})")
            now = self.clock.now()
            self._complete(record, Completion("STOPPED", None, err), now)
            return now

    # ------------------------------------------------------------------ reading

    def execution(self, arn: str) -> ExecutionView:
        """The live ``ExecutionView`` of ``arn`` (KeyError when unknown)."""
        with self._lock:
            return self._record(arn).view

    def has_execution(self, arn: str) -> bool:
        with self._lock:
            return arn in self._records

    def executions(self) -> list[ExecutionView]:
        """Every execution, in creation order."""
        with self._lock:
            return [r.view for r in self._records.values()]

    def operations(self, arn: str) -> list[Operation]:
        """All operations of ``arn`` in creation order."""
        with self._lock:
            return list(self._record(arn).view.operations.values())

    def history(self, arn: str) -> list[dict[str, Any]]:
        """History events (PROTOCOL §14) of ``arn`` in order, shaped as botocore parses them.

        ``ExecutionSucceeded`` caused by an EXECUTION checkpoint precedes that invocation's
        ``InvocationCompleted``; one caused by the handler's answer follows it.
        """
        with self._lock:
            return copy.deepcopy(self._record(arn).history)

    def next_timer(
        self, arn: str, *, callbacks: bool = True, deadline: bool = False
    ) -> float | None:
        """Epoch seconds of the earliest pending timer of ``arn`` (None when there is none).

        ``callbacks=False`` ignores callback timeout and heartbeat timers (the execution is
        then waiting on the outside world rather than on time); the execution timeout counts
        only with ``deadline=True``.
        """
        with self._lock:
            record = self._record(arn)
            if not record.running:
                return None
            dues = [
                t.due
                for t in record.timers.values()
                if (callbacks or not t.kind.startswith("callback"))
                and (deadline or t.kind != EXECUTION_TIMEOUT)
            ]
            return min(dues, default=None)

    def fire_due_timers(self) -> None:
        """Apply every timer due at ``clock.now()`` in every execution.

        WAIT STARTED → SUCCEEDED, STEP PENDING → READY, CALLBACK STARTED → TIMED_OUT, a
        failed invocation becomes ready to be retried, an execution past its timeout TIMES
        OUT. Changed ids become ``UpdatedOperationIds`` of the next invocation and part of the
        next checkpoint response's delta.
        """
        with self._tx():
            now = self.clock.now()
            for record in list(self._records.values()):
                if record.running and any(t.due <= now for t in record.timers.values()):
                    self._fire_due(record)

    def has_ready_work(self, arn: str) -> bool:
        """Whether something changed since the last invocation that warrants re-invoking."""
        with self._tx():
            record = self._record(arn)
            self._fire_due(record)
            return record.running and (bool(record.updated) or record.retry_due or record.reinvoke)

    def needs_invocation(self, arn: str) -> bool:
        """RUNNING, no invocation in flight, and never invoked or something to react to."""
        with self._lock:
            return _needs_invocation(self._record(arn))

    def ready_executions(self, functions: Collection[str]) -> list[str]:
        """ARNs of the executions of ``functions`` that need an invocation, oldest first."""
        with self._lock:
            return [
                arn
                for arn, record in self._records.items()
                if record.view.function_name in functions and _needs_invocation(record)
            ]

    def next_due(
        self, *, kinds: Collection[str] | None = None, functions: Collection[str] | None = None
    ) -> float | None:
        """The earliest timer of a RUNNING execution (of ``functions``; of ``kinds``)."""
        with self._lock:
            return min(
                (
                    timer.due
                    for record in self._records.values()
                    if record.running
                    and (functions is None or record.view.function_name in functions)
                    for timer in record.timers.values()
                    if kinds is None or timer.kind in kinds
                ),
                default=None,
            )

    def in_flight(self, arn: str) -> bool:
        """An invocation of ``arn`` has started and not reported back."""
        with self._lock:
            return self._record(arn).in_flight

    def child_executions(self, arn: str) -> list[str]:
        """ARNs of the RUNNING durable targets of ``arn``'s STARTED chained invokes."""
        with self._lock:
            record = self._record(arn)
            children = []
            for op_id, meta in record.op_meta.items():
                child = meta.get("child")
                if child and record.view.operations[op_id].status is _S.STARTED:
                    children.append(child)
            return children

    # ------------------------------------------------------------------ callbacks

    def send_callback_success(self, callback_id: str, result: bytes | str = b"") -> None:
        """``SendDurableExecutionCallbackSuccess``: the callback SUCCEEDS with ``result``.

        The body is stored as UTF-8 text; an empty body leaves no Result.
        """
        body = result.encode("utf-8") if isinstance(result, str) else bytes(result)
        if len(body) > CALLBACK_RESULT_LIMIT:
            raise invalid(f"Callback result is {len(body)} bytes; the limit is 1 MiB")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise invalid("Callback result must be UTF-8") from exc
        with self._tx():
            record, op = self._callback_target(callback_id)
            details = CallbackDetails(callback_id=callback_id, result=text or None)
            event_details = {"Result": payload(text or None)}
            fields = {"callback_details": details}
            self._service_change(
                record, op, _S.SUCCEEDED, fields, "CallbackSucceeded", event_details
            )
            self._clear_callback_timers(record, op.id)

    def send_callback_failure(self, callback_id: str, error: Mapping[str, Any]) -> None:
        """``SendDurableExecutionCallbackFailure``: the callback FAILS with ``error``."""
        err = _error_object(error)
        with self._tx():
            record, op = self._callback_target(callback_id)
            fields = {"callback_details": CallbackDetails(callback_id=callback_id, error=err)}
            event_details = {"Error": error_payload(err)}
            self._service_change(record, op, _S.FAILED, fields, "CallbackFailed", event_details)
            self._clear_callback_timers(record, op.id)

    def send_callback_heartbeat(self, callback_id: str) -> None:
        """``SendDurableExecutionCallbackHeartbeat``: restart the heartbeat timeout, if any."""
        with self._tx():
            record, op = self._callback_target(callback_id)
            heartbeat = record.op_meta.get(op.id, {}).get("heartbeat", 0)
            if heartbeat > 0:
                due = self.clock.now() + heartbeat
                record.set_timer(Timer(due, self._next_seq(), CALLBACK_HEARTBEAT, op.id))

    # ------------------------------------------------------------------ chained invokes

    def register_function(
        self,
        function_name: str,
        *,
        durable: bool = True,
        execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT,
    ) -> None:
        """Declare a function chained invokes may target (the engine registers its functions).

        Until the first function is registered the service does not resolve targets at all:
        every chained invoke stays STARTED until ``complete_chained_invoke``. From then on a
        START naming an unknown function (or another account/region, or a durable function
        without a qualifier) comes back FAILED in the same checkpoint response (§4.7). A
        resolved START of a durable function starts a child execution whose outcome completes
        the CHAINED_INVOKE; every resolved START is queued for ``take_chained_invokes``.
        ``execution_timeout`` (seconds) applies to executions of a durable function.
        """
        if not FUNCTION_RE.fullmatch(function_name):
            raise ValueError(f"function_name must match [a-zA-Z0-9_-]{{1,64}}: {function_name!r}")
        if not 1 <= execution_timeout <= DEFAULT_EXECUTION_TIMEOUT:
            raise ValueError(f"execution_timeout must be within 1..{DEFAULT_EXECUTION_TIMEOUT}")
        with self._lock:
            self._functions[function_name] = FunctionConfig(durable, execution_timeout)

    def function_config(self, function_name: str) -> FunctionConfig | None:
        with self._lock:
            return self._functions.get(function_name)

    def take_chained_invokes(self) -> list[ChainedInvokeRequest]:
        """The chained invokes resolved since the last call, in checkpoint order."""
        with self._lock:
            requests, self._invoke_requests = self._invoke_requests, []
            return requests

    def pending_plain_invokes(self) -> list[ChainedInvokeRequest]:
        """Every chained invoke of a plain registered function still waiting for its result
        (survives restarts: the runner of the new process calls them again)."""
        with self._lock:
            return self._plain_invokes()

    def complete_chained_invoke(
        self,
        arn: str,
        operation_id: str,
        *,
        result: str | None = None,
        error: Mapping[str, Any] | None = None,
        status: Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"] | None = None,
    ) -> None:
        """Finish a STARTED chained invoke as its target would (plain targets, tests).

        ``status`` defaults to SUCCEEDED without ``error`` and FAILED with it.
        """
        final = status or ("FAILED" if error is not None else "SUCCEEDED")
        err = _error_object(error) if error is not None else None
        with self._tx():
            record = self._record(arn)
            self._fire_due(record)
            op = record.view.operations.get(operation_id)
            if op is None or op.type is not _T.CHAINED_INVOKE or op.status is not _S.STARTED:
                raise not_found(f"No started chained invoke {operation_id!r} in {arn}")
            succeeded = final == "SUCCEEDED"
            details = ChainedInvokeDetails(
                result=result if succeeded else None, error=None if succeeded else err
            )
            event_details = (
                {"Result": payload(result)} if succeeded else {"Error": error_payload(err)}
            )
            event_type = "ChainedInvoke" + {"TIMED_OUT": "TimedOut"}.get(final, final.title())
            fields = {"chained_invoke_details": details}
            self._service_change(record, op, _S(final), fields, event_type, event_details)


# ---------------------------------------------------------------------- helpers


def _pending(record: Record) -> bool:
    """Whether some operation is waiting for the service (so PENDING is a valid answer)."""
    return any(op.status in _WAITING.get(op.type, ()) for op in record.view.operations.values())


def _needs_invocation(record: Record) -> bool:
    if not record.running or record.in_flight:
        return False
    fresh = record.view.invocations == 0 and (INVOCATION_RETRY, "") not in record.timers
    return fresh or bool(record.updated) or record.retry_due or record.reinvoke


def _error_object(error: Mapping[str, Any]) -> ErrorObject:
    try:
        return ErrorObject.model_validate(dict(error))
    except (ValidationError, TypeError, ValueError) as exc:
        raise invalid(f"Malformed error object: {exc}") from exc
