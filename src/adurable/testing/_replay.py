"""Replay a recorded execution against new code: the determinism check to run before deploying.

    recording = RecordedExecution.load("history.json")   # from the real service
    report = await replay_execution(handler, recording)  # raises ReplayCheckError on a problem

A *recording* is what the service kept of a real execution, in any of the shapes users can
capture: the JSON of ``GetDurableExecutionState`` (``{"Operations": [...]}``), the Lambda
invocation event of a durable function, or the output of ``GetDurableExecutionHistory``
(``{"Events": [...]}``, fetched with ``IncludeExecutionData=true``), from which the operations
are rebuilt (PROTOCOL §14). Timestamps may be epoch seconds, ISO-8601 strings or datetimes
(invocation events: epoch milliseconds).

How the check runs
------------------
The handler gets one invocation whose initial state is every recorded operation (the
EXECUTION one reset to STARTED), against a read-only service. The code replays: each durable
operation finds its recorded twin by id and the SDK verifies type, subtype, name and parent
(§6.2). The run ends at the *first new work* — an operation with no recorded twin, or a
recorded step that would run user code again (STARTED/READY) — **before** any of its code
runs or anything is checkpointed, so replaying in CI has no side effects. Concurrent branches
keep replaying until they too block, suspend or reach new work. A checkpoint the code still
tries to write (e.g. completing a recorded STARTED context) is refused and also ends the run.

Problems (``ReplayReport.problems``; ``check=True`` raises ``ReplayCheckError`` listing them):

* non-determinism: an operation whose recorded identity differs from what the code asks for
  now (renamed, reordered, inserted in the middle, type changed...), named with its recorded
  and current identity and its position;
* for a recording of a *finished* execution: recorded operations the new code never reached
  (removed code, or code that now takes another path); operations inside a completed child
  context count as reached with it, since replay does not re-run such a context's body;
* the new code failing (or raising) while replaying recorded results, when the recorded
  execution did not fail the same way.

Code appended after the recorded point is compatible: the run reaches new work only after
every recorded operation (or suspends on a recorded pending one), and passes.

What it cannot see: changes inside step bodies (their results are replayed, not recomputed)
and, for histories, ``ReplayChildren`` flags (not part of the history): they are inferred —
a Map/Parallel result that is a completion record, or an empty context result.
"""

from __future__ import annotations

import contextvars
import copy
import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError as PydanticValidationError

from adurable._errors import NonDeterministicExecutionError, SuspendExecution
from adurable._execution import DurableHandler
from adurable._ids import branch_id, operation_id
from adurable._journal import Identity, Journal
from adurable._wire import (
    CallbackDetails,
    ChainedInvokeDetails,
    ContextDetails,
    ErrorObject,
    ExecutionDetails,
    Operation,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
    StepDetails,
    WaitDetails,
)
from adurable.testing._fake import ServiceError
from adurable.testing._result import ExecutionResult, LambdaContext

__all__ = (
    "NewWork",
    "RecordedExecution",
    "ReplayCheckError",
    "ReplayMismatch",
    "ReplayReport",
    "operations_from_history",
    "replay_execution",
)

_S = OperationStatus
_T = OperationType

RecordingSource = Literal["state", "event", "history", "operations", "result"]
ReplayOutcome = Literal["completed", "failed", "suspended", "new work", "raised"]

_FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED")
_DEFAULT_ARN = (
    "arn:aws:lambda:us-east-1:123456789012:function:replay:$LATEST/durable-execution/replay"
)
_NONDETERMINISM = "NonDeterministicExecutionError"


# ---------------------------------------------------------------------------- recordings


@dataclass(frozen=True)
class RecordedExecution:
    """The operations a real execution recorded, plus what is known of how it ended.

    ``status`` is the execution's status when it was captured: ``RUNNING`` or one of the
    terminal ones (a state or an invocation event of a running execution is ``RUNNING``).
    ``result``/``error`` are known for histories of finished executions.
    """

    arn: str
    operations: tuple[Operation, ...]
    status: str = "RUNNING"
    result: str | None = None
    error: ErrorObject | None = None
    source: RecordingSource = "operations"

    @property
    def finished(self) -> bool:
        """Whether the recorded execution had ended (then every operation must be reached)."""
        return self.status in _FINISHED

    @property
    def execution_operation(self) -> Operation | None:
        """The EXECUTION operation (it carries the input), if the recording has one."""
        return next((op for op in self.operations if op.type is _T.EXECUTION), None)

    @classmethod
    def load(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any] | Sequence[Any] | ExecutionResult,
        *,
        arn: str | None = None,
    ) -> RecordedExecution:
        """A recording from a file path, JSON text, parsed JSON, or a local ``ExecutionResult``.

        Parsed JSON may be a ``GetDurableExecutionState`` response, a durable invocation event,
        a ``GetDurableExecutionHistory`` response, or a bare list of operations or of history
        events. ``arn`` names the execution when the recording does not (states, histories);
        otherwise a placeholder ARN ending in the EXECUTION operation's id is used.
        """
        if isinstance(source, ExecutionResult):
            return cls(
                arn=arn or source.arn,
                operations=tuple(source.operations),
                status=source.status.value,
                error=ErrorObject.model_validate(source.error) if source.error else None,
                source="result",
            )
        if isinstance(source, os.PathLike) or (
            isinstance(source, str) and source.lstrip()[:1] not in ("{", "[")
        ):
            path = Path(source)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot read the recording {str(path)!r}: {exc}") from exc
            return cls.load(_parse_json(text, str(path)), arn=arn)
        if isinstance(source, str):
            return cls.load(_parse_json(source, "the recording"), arn=arn)
        if isinstance(source, Mapping):
            return cls._from_mapping(source, arn)
        if isinstance(source, Sequence):
            items = list(source)
            if items and all(isinstance(i, Mapping) and "EventType" in i for i in items):
                return cls._from_history(items, arn)
            return cls._from_operations(items, arn, "operations")
        raise TypeError(
            f"cannot read a recording from {type(source).__name__}: pass a path, JSON text, "
            "a GetDurableExecutionState / GetDurableExecutionHistory response, an invocation "
            "event, or an ExecutionResult"
        )

    @classmethod
    def _from_mapping(cls, data: Mapping[str, Any], arn: str | None) -> RecordedExecution:
        if "Events" in data:
            if data.get("NextMarker"):
                raise ValueError(
                    "the history has more pages (NextMarker is set): fetch every page and pass "
                    "all the events"
                )
            return cls._from_history(list(data["Events"]), arn)
        if "DurableExecutionArn" in data and (
            "InitialExecutionState" in data or "CheckpointToken" in data
        ):
            state = data.get("InitialExecutionState") or {}
            if state.get("NextMarker"):
                raise ValueError(
                    "the invocation event holds only the first page of operations (NextMarker "
                    "is set): capture GetDurableExecutionState instead"
                )
            ops = _operations(state.get("Operations") or [], epoch="ms")
            return cls(
                arn=arn or str(data["DurableExecutionArn"]),
                operations=tuple(ops),
                status="RUNNING",
                source="event",
            )
        if "Operations" in data:
            if data.get("NextMarker"):
                raise ValueError(
                    "the state has more pages (NextMarker is set): fetch every page and pass "
                    "all the operations"
                )
            return cls._from_operations(list(data["Operations"]), arn, "state")
        raise ValueError(
            "not a recording: expected 'Operations' (GetDurableExecutionState), 'Events' "
            "(GetDurableExecutionHistory) or an invocation event with 'DurableExecutionArn'; "
            f"got keys {sorted(data)}"
        )

    @classmethod
    def _from_operations(
        cls, items: list[Any], arn: str | None, source: RecordingSource
    ) -> RecordedExecution:
        ops = _operations(items, epoch="s")
        execution = next((op for op in ops if op.type is _T.EXECUTION), None)
        status = "RUNNING"
        if execution is not None and execution.status.is_terminal:
            status = execution.status.value
        return cls(
            arn=arn or _placeholder_arn(execution.id if execution else None),
            operations=tuple(ops),
            status=status,
            source=source,
        )

    @classmethod
    def _from_history(cls, events: list[Any], arn: str | None) -> RecordedExecution:
        rebuilt = _HistoryRebuild(events)
        return cls(
            arn=arn or _placeholder_arn(rebuilt.execution_id),
            operations=tuple(rebuilt.operations),
            status=rebuilt.status,
            result=rebuilt.result,
            error=rebuilt.error,
            source="history",
        )


def operations_from_history(events: Iterable[Mapping[str, Any]]) -> list[Operation]:
    """Rebuild the operations of an execution from its history events (PROTOCOL §14).

    The inverse of the service's event rendering: each event moves its operation to the state
    it records (``StepFailed`` with a retry delay → PENDING, ``WaitSucceeded`` → SUCCEEDED, ...).
    Needs the execution data (``IncludeExecutionData=true``): a truncated payload is an error.
    """
    return _HistoryRebuild(list(events)).operations


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from exc


def _placeholder_arn(execution_id: str | None) -> str:
    return f"{_DEFAULT_ARN}/{execution_id or 'replay'}"


def _operations(items: Iterable[Any], *, epoch: str) -> list[Operation]:
    ops: list[Operation] = []
    for index, item in enumerate(items):
        if isinstance(item, Operation):
            ops.append(item)
            continue
        try:
            ops.append(Operation.model_validate(item, context={"epoch": epoch}))
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(
                f"operation {index} of the recording is malformed ({where}: {first['msg']})"
            ) from exc
    return ops


class _HistoryRebuild:
    """Fold history events into operations (the state each operation had after them)."""

    def __init__(self, events: list[Any]) -> None:
        self.ops: dict[str, Operation] = {}
        self.execution_id: str | None = None
        self.status = "RUNNING"
        self.result: str | None = None
        self.error: ErrorObject | None = None
        ordered = sorted(
            (e for e in events if isinstance(e, Mapping)),
            key=lambda e: int(e.get("EventId") or 0),
        )
        for event in ordered:
            self._apply(event)

    @property
    def operations(self) -> list[Operation]:
        return list(self.ops.values())

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("EventType", ""))
        if kind in ("InvocationCompleted", "ExecutionPaused", "ExecutionResumed"):
            return
        op_id = event.get("Id")
        if not op_id:
            raise ValueError(f"history event {event.get('EventId')} ({kind}) has no operation Id")
        details: Mapping[str, Any] = event.get(f"{kind}Details") or {}
        when = _timestamp(event.get("EventTimestamp"))
        prefix = next((p for p in _PREFIXES if kind.startswith(p)), None)
        if prefix is None:
            raise ValueError(f"history event {event.get('EventId')} has unknown type {kind!r}")
        transition = kind[len(prefix) :]
        current = self.ops.get(op_id)
        if current is None:
            current = Operation(
                id=op_id,
                parent_id=event.get("ParentId"),
                name=event.get("Name"),
                type=_PREFIXES[prefix],
                sub_type=event.get("SubType"),
                start_timestamp=when,
                status=_S.STARTED,
            )
        where = f"history event {event.get('EventId')} ({kind})"
        self.ops[op_id] = self._transition(current, prefix, transition, details, when, where)

    def _transition(
        self,
        op: Operation,
        prefix: str,
        transition: str,
        details: Mapping[str, Any],
        when: dt.datetime | None,
        where: str,
    ) -> Operation:
        if prefix == "Execution":
            return self._execution(op, transition, details, when, where)
        if transition == "Started":
            return self._started(op, prefix, details, when, where)
        status = _EVENT_STATUS.get(transition)
        if status is None:
            raise ValueError(f"{where}: unknown transition {transition!r}")
        result = _data(details.get("Result"), where) if "Result" in details else None
        error = _error(details.get("Error"), where) if "Error" in details else None
        end: dict[str, Any] = {"end_timestamp": when} if status.is_terminal else {}
        if prefix == "Step":
            return self._step(op, status, details, result, error, when)
        if prefix == "Wait":
            return op.model_copy(update={"status": status, **end})
        if prefix == "Callback":
            callback_id = op.callback_details.callback_id if op.callback_details else None
            callback = CallbackDetails(callback_id=callback_id, result=result, error=error)
            return op.model_copy(update={"status": status, "callback_details": callback, **end})
        if prefix == "ChainedInvoke":
            invoke = ChainedInvokeDetails(result=result, error=error)
            return op.model_copy(update={"status": status, "chained_invoke_details": invoke, **end})
        replay_children = status is _S.SUCCEEDED and _looks_like_replay_children(op, result)
        context = ContextDetails(replay_children=replay_children, result=result, error=error)
        return op.model_copy(update={"status": status, "context_details": context, **end})

    def _execution(
        self,
        op: Operation,
        transition: str,
        details: Mapping[str, Any],
        when: dt.datetime | None,
        where: str,
    ) -> Operation:
        if transition == "Started":
            self.execution_id = op.id
            payload = _data(details.get("Input"), where) if "Input" in details else None
            return op.model_copy(
                update={"execution_details": ExecutionDetails(input_payload=payload)}
            )
        status = _EXECUTION_END.get(transition)
        if status is None:
            raise ValueError(f"{where}: unknown transition {transition!r}")
        self.status = status.value
        if "Result" in details:
            self.result = _data(details.get("Result"), where)
        if "Error" in details:
            self.error = _error(details.get("Error"), where)
        return op.model_copy(update={"status": status, "end_timestamp": when})

    @staticmethod
    def _started(
        op: Operation,
        prefix: str,
        details: Mapping[str, Any],
        when: dt.datetime | None,
        where: str,
    ) -> Operation:
        update: dict[str, Any] = {"status": _S.STARTED}
        if prefix == "Step":
            previous = op.step_details or StepDetails()
            update["step_details"] = previous.model_copy(update={"next_attempt_timestamp": None})
        elif prefix == "Wait":
            end = _timestamp(details.get("ScheduledEndTimestamp"))
            if end is None and when is not None and details.get("Duration") is not None:
                end = when + dt.timedelta(seconds=float(details["Duration"]))
            update["wait_details"] = WaitDetails(scheduled_end_timestamp=end)
        elif prefix == "Callback":
            callback_id = details.get("CallbackId")
            if not callback_id:
                raise ValueError(f"{where}: CallbackStarted without a CallbackId")
            update["callback_details"] = CallbackDetails(callback_id=str(callback_id))
        elif prefix == "ChainedInvoke":
            update["chained_invoke_details"] = ChainedInvokeDetails()
        return op.model_copy(update=update)

    @staticmethod
    def _step(
        op: Operation,
        status: OperationStatus,
        details: Mapping[str, Any],
        result: str | None,
        error: ErrorObject | None,
        when: dt.datetime | None,
    ) -> Operation:
        retry: Mapping[str, Any] = details.get("RetryDetails") or {}
        previous = op.step_details.attempt if op.step_details else 0
        attempt = int(retry.get("CurrentAttempt") or previous + 1)
        delay = retry.get("NextAttemptDelaySeconds")
        if delay is not None:  # a RETRY: waiting for its next attempt (§14.3)
            next_at = when + dt.timedelta(seconds=float(delay)) if when else None
            step = StepDetails(
                attempt=attempt, next_attempt_timestamp=next_at, result=result, error=error
            )
            return op.model_copy(update={"status": _S.PENDING, "step_details": step})
        step = StepDetails(attempt=attempt, result=result, error=error)
        return op.model_copy(update={"status": status, "step_details": step, "end_timestamp": when})


_PREFIXES: dict[str, OperationType] = {
    "ChainedInvoke": _T.CHAINED_INVOKE,
    "Execution": _T.EXECUTION,
    "Context": _T.CONTEXT,
    "Callback": _T.CALLBACK,
    "Step": _T.STEP,
    "Wait": _T.WAIT,
}
_EVENT_STATUS = {
    "Succeeded": _S.SUCCEEDED,
    "Failed": _S.FAILED,
    "TimedOut": _S.TIMED_OUT,
    "Stopped": _S.STOPPED,
    "Cancelled": _S.CANCELLED,
}
_EXECUTION_END = {
    "Succeeded": _S.SUCCEEDED,
    "Failed": _S.FAILED,
    "TimedOut": _S.TIMED_OUT,
    "Stopped": _S.STOPPED,
}


def _data(member: Any, where: str) -> Any:
    """The payload of an EventInput/EventResult/EventError (None when absent)."""
    if not isinstance(member, Mapping):
        return None
    if member.get("Truncated"):
        raise ValueError(
            f"{where}: the payload is truncated; fetch the history with "
            "IncludeExecutionData=true (replay needs the recorded results)"
        )
    return member.get("Payload")


def _error(member: Any, where: str) -> ErrorObject | None:
    payload = _data(member, where)
    if payload is None:
        return None
    try:
        return ErrorObject.model_validate(payload)
    except PydanticValidationError as exc:
        raise ValueError(f"{where}: malformed error object") from exc


def _timestamp(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    if isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise ValueError(f"unsupported timestamp {value!r}")


def _looks_like_replay_children(op: Operation, result: str | None) -> bool:
    """Histories omit ReplayChildren: infer it from the result (PROTOCOL §6.5, §7.9.8)."""
    if op.sub_type in (OperationSubType.MAP, OperationSubType.PARALLEL) and result:
        try:
            record = json.loads(result)
        except ValueError:
            return False
        return (
            isinstance(record, dict)
            and record.get("type") in ("MapResult", "ParallelResult")
            and "completionReason" in record
        )
    return result == ""


# ---------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class ReplayMismatch:
    """A recorded operation whose identity differs from what the new code asks for."""

    operation_id: str
    #: The recorded operation (None when only the SDK's error message is known).
    recorded: Operation | None
    #: What the new code asked for, e.g. ``STEP (Step) 'charge'``.
    current: str
    message: str


@dataclass(frozen=True)
class NewWork:
    """The first operation the new code does that the recording does not contain."""

    operation_id: str
    type: OperationType
    sub_type: str | None
    name: str | None
    parent_id: str | None
    #: Set when the new work resumes a recorded operation (a STARTED/READY step whose code
    #: would run again, a STARTED context the code would now complete).
    recorded: Operation | None = None
    #: The checkpoint action the code tried (None when it was stopped before checkpointing).
    action: str | None = None

    def describe(self) -> str:
        """``STEP (Step) 'name'`` and, if recorded, why it counts as new work."""
        text = _describe(self.type, self.sub_type, self.name)
        if self.action is not None:
            state = f"recorded {self.recorded.status.value}" if self.recorded else "not recorded"
            text += f" ({self.action}, {state})"
        elif self.recorded is not None:
            text += f" (recorded {self.recorded.status.value}: its code would run again)"
        return text


@dataclass
class ReplayReport:
    """What replaying a recording against new code found. ``ok`` means: safe to deploy."""

    recording: RecordedExecution
    outcome: ReplayOutcome
    #: The handler's answer for the replay invocation (None when it raised).
    output: dict[str, Any] | None
    #: Recorded operations the new code reached, in the order it reached them.
    reached: list[Operation] = field(default_factory=list)
    #: Recorded operations it did not reach (nor any completed context around them).
    unreached: list[Operation] = field(default_factory=list)
    new_work: list[NewWork] = field(default_factory=list)
    mismatches: list[ReplayMismatch] = field(default_factory=list)
    #: What makes ``ok`` false, one readable line each.
    problems: list[str] = field(default_factory=list)
    #: Observations that are not problems (e.g. a different final result).
    notes: list[str] = field(default_factory=list)
    #: The exception the handler raised, if it raised.
    exception: BaseException | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise ``ReplayCheckError`` (an AssertionError) when there is any problem."""
        if self.problems:
            raise ReplayCheckError(self)

    def __str__(self) -> str:
        rec = self.recording
        lines = [
            f"replay of {rec.arn} ({rec.source}, recorded {rec.status}, "
            f"{sum(op.type is not _T.EXECUTION for op in rec.operations)} operations): "
            f"{'OK' if self.ok else 'NOT DETERMINISTIC / INCOMPATIBLE'} — {self._how_it_ended()}"
        ]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _how_it_ended(self) -> str:
        if self.outcome == "new work" and self.new_work:
            return f"stopped at new work: {self.new_work[0].describe()}"
        reached = f"{len(self.reached)} recorded operations replayed"
        return f"{self.outcome}, {reached}"


class ReplayCheckError(AssertionError):
    """The new code cannot safely replay the recording; ``report`` says why."""

    def __init__(self, report: ReplayReport) -> None:
        super().__init__(str(report))
        self.report = report


# ---------------------------------------------------------------------------- the replay run


@dataclass(eq=False)
class _Tracker:
    """What the observed journal saw during one replay invocation."""

    recorded: dict[str, Operation]
    reached: dict[str, None] = field(default_factory=dict)
    new_work: list[NewWork] = field(default_factory=list)
    mismatches: list[ReplayMismatch] = field(default_factory=list)
    refused: list[OperationUpdate] = field(default_factory=list)
    observing: bool = False


_TRACKER: contextvars.ContextVar[_Tracker | None] = contextvars.ContextVar(
    "adurable_replay_tracker", default=None
)


class _ReachedNewWork(SuspendExecution):
    """Ends (this branch of) the replay invocation like a suspension, before any side effect."""


class _ObservedJournal(Journal):
    """The SDK's journal, reporting every replay lookup to the current ``_Tracker``.

    Installed on one invocation's journal by swapping its class (same layout, no new slots),
    so nothing else in the process is affected.
    """

    __slots__ = ()

    def check(self, op_id: str, wanted: Identity) -> Operation | None:
        tracker = _TRACKER.get()
        if tracker is None:
            return super().check(op_id, wanted)
        try:
            op = super().check(op_id, wanted)
        except NonDeterministicExecutionError as exc:
            recorded = tracker.recorded.get(op_id)
            current = _describe(wanted.type, wanted.sub_type, wanted.name)
            tracker.mismatches.append(ReplayMismatch(op_id, recorded, current, str(exc)))
            raise
        if op is None or (
            op.type is _T.STEP and op.status in (_S.STARTED, _S.READY)
        ):  # new code, or a recorded step whose user code would run again
            tracker.new_work.append(
                NewWork(op_id, wanted.type, wanted.sub_type, wanted.name, wanted.parent_id, op)
            )
            if op is not None:
                tracker.reached[op_id] = None
            raise _ReachedNewWork(f"replay reached new work at operation {op_id}")
        tracker.reached[op_id] = None
        return op


class _ReplayService:
    """A read-only durable-execution service holding a recording.

    Empty checkpoints (refreshes) are answered; any update is refused with a stale-token error
    (the SDK then ends the invocation PENDING) and kept in the tracker, except an EXECUTION
    update, which ends the replay like the handler returning.
    """

    def __init__(self, arn: str, operations: Sequence[Operation], tracker: _Tracker) -> None:
        self.arn = arn
        self.operations = list(operations)
        self.tracker = tracker
        self.execution_update: OperationUpdate | None = None
        self._tokens = 0

    def token(self) -> str:
        self._tokens += 1
        return f"replay-{self._tokens}"

    async def checkpoint_durable_execution(self, **request: Any) -> dict[str, Any]:
        updates = [OperationUpdate.model_validate(u) for u in request.get("Updates") or []]
        if not updates:
            return {"CheckpointToken": self.token(), "NewExecutionState": {"Operations": []}}
        if updates[-1].type is _T.EXECUTION and len(updates) == 1:
            self.execution_update = updates[-1]
            return {"NewExecutionState": {"Operations": []}}
        self.tracker.refused.extend(updates)
        raise ServiceError(
            "InvalidParameterValueException",
            "Invalid checkpoint token: the replay service records nothing (replay reached new "
            "work)",
            400,
        )

    async def get_durable_execution_state(self, **request: Any) -> dict[str, Any]:
        return {"Operations": [op.to_wire() for op in self.operations]}


async def replay_execution(
    handler: Any,
    recording: RecordedExecution
    | str
    | os.PathLike[str]
    | Mapping[str, Any]
    | Sequence[Any]
    | ExecutionResult,
    *,
    check: bool = True,
) -> ReplayReport:
    """Re-run ``handler`` over a recorded execution and report any non-determinism.

    ``handler`` is the (new) ``@durable_execution`` handler or the plain ``async def
    handler(event, context)`` it decorates. ``recording`` is a ``RecordedExecution`` or anything
    ``RecordedExecution.load`` reads. With ``check`` (the default) a problem raises
    ``ReplayCheckError`` carrying the report; otherwise inspect ``report.ok``.
    """
    if not isinstance(recording, RecordedExecution):
        recording = RecordedExecution.load(recording)
    recorded = {op.id: op for op in recording.operations}
    tracker = _Tracker(recorded=recorded)
    service = _ReplayService(recording.arn, recording.operations, tracker)
    observed = _observing(handler, tracker)
    event = _invocation_event(recording, service.token())
    context = LambdaContext(
        aws_request_id=f"replay-{uuid.uuid4()}", invoked_function_arn=recording.arn.split("/")[0]
    )
    output: dict[str, Any] | None = None
    raised: BaseException | None = None
    token = _TRACKER.set(tracker)
    try:
        output = await observed.run(event, context, client=service)
    except Exception as exc:
        raised = exc
    finally:
        _TRACKER.reset(token)
    report = _report(recording, tracker, service, output, raised)
    if check:
        report.raise_for_problems()
    return report


def _observing(handler: Any, tracker: _Tracker) -> Any:
    """A copy of ``handler`` whose invocation journal reports to ``tracker``."""
    if isinstance(handler, DurableHandler):
        observed = copy.copy(handler)
        func = handler.func
    elif callable(getattr(handler, "run", None)):
        return handler  # not an adurable handler: no lookups to observe
    elif callable(handler):
        observed, func = DurableHandler(handler), handler
    else:
        raise TypeError(f"handler must be a durable handler or an async function, got {handler!r}")

    async def run_observed(event: Any, context: Any) -> Any:
        _observe(context, tracker)
        return await func(event, context)

    observed.func = run_observed
    return observed


def _observe(context: Any, tracker: _Tracker) -> None:
    scope = getattr(context, "_scope", None)
    invocation = getattr(scope, "invocation", None)
    journal = getattr(invocation, "journal", None)
    if type(journal) is Journal:
        journal.__class__ = _ObservedJournal
        tracker.observing = True


def _invocation_event(recording: RecordedExecution, token: str) -> dict[str, Any]:
    """The §2.1 envelope of a replay invocation: every recorded operation, EXECUTION reset."""
    ops: list[dict[str, Any]] = []
    for op in recording.operations:
        if op.type is _T.EXECUTION:
            op = op.model_copy(update={"status": _S.STARTED, "end_timestamp": None})
        ops.append(_millis(op.model_dump(by_alias=True, exclude_none=True)))
    return {
        "DurableExecutionArn": recording.arn,
        "CheckpointToken": token,
        "InitialExecutionState": {"Operations": ops, "NextMarker": ""},
        "UpdatedOperationIds": [],
    }


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _millis(value: Any) -> Any:
    """Datetimes as integer epoch milliseconds (§2.1 rule 4), computed exactly."""
    if isinstance(value, dt.datetime):
        delta = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)) - _EPOCH
        return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    if isinstance(value, dict):
        return {k: _millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_millis(v) for v in value]
    return value


# ---------------------------------------------------------------------------- judging the run


def _report(
    recording: RecordedExecution,
    tracker: _Tracker,
    service: _ReplayService,
    output: dict[str, Any] | None,
    raised: BaseException | None,
) -> ReplayReport:
    ops = [op for op in recording.operations if op.type is not _T.EXECUTION]
    by_id = {op.id: op for op in ops}
    reached = [by_id[i] for i in tracker.reached if i in by_id]
    status = (output or {}).get("Status")
    error = (output or {}).get("Error") or {}
    if raised is not None:
        outcome: ReplayOutcome = "raised"
    elif status == "FAILED":
        outcome = "failed"
    elif status == "SUCCEEDED" or service.execution_update is not None:
        outcome = "completed"
    elif tracker.new_work or tracker.refused:
        outcome = "new work"
    else:
        outcome = "suspended"
    report = ReplayReport(
        recording=recording,
        outcome=outcome,
        output=output,
        reached=reached,
        new_work=list(tracker.new_work),
        mismatches=list(tracker.mismatches),
        exception=raised,
    )
    for update in tracker.refused:
        recorded = by_id.get(update.id)
        report.new_work.append(
            NewWork(
                update.id,
                update.type,
                update.sub_type,
                update.name,
                update.parent_id,
                recorded,
                update.action.value,
            )
        )
    if not report.mismatches and str(error.get("ErrorType", "")).endswith(_NONDETERMINISM):
        message = str(error.get("ErrorMessage", ""))
        report.mismatches.append(ReplayMismatch("", None, "", message))
    for mismatch in report.mismatches:
        report.problems.append(_mismatch_problem(mismatch, by_id))
    if recording.execution_operation is None:
        report.notes.append(
            "the recording has no EXECUTION operation: the handler ran with an empty input ({})"
        )
    if not tracker.observing:
        report.notes.append(
            "the replay's lookups could not be observed (not an adurable handler?): only identity "
            "errors and checkpoints were checked, not which recorded operations were reached"
        )
    else:
        report.unreached = _unreached(ops, tracker.reached)
    _judge_outcome(report, error, raised)
    if report.unreached and not report.mismatches:
        listing = "; ".join(_label(op, by_id) for op in report.unreached[:10])
        more = f" (and {len(report.unreached) - 10} more)" if len(report.unreached) > 10 else ""
        if recording.finished:
            report.problems.append(
                f"{len(report.unreached)} recorded operation(s) never reached by the new code "
                f"although the recorded execution {recording.status}: {listing}{more}"
            )
        else:
            report.notes.append(f"recorded operation(s) not reached: {listing}{more}")
    return report


def _judge_outcome(
    report: ReplayReport, error: Mapping[str, Any], raised: BaseException | None
) -> None:
    recording = report.recording
    if raised is not None:
        report.problems.append(
            f"the handler raised {type(raised).__name__}: {raised} while replaying (Lambda would "
            "retry the invocation, and fail the same way)"
        )
        return
    if report.outcome == "failed" and not report.mismatches:
        kind = str(error.get("ErrorType", "?"))
        message = str(error.get("ErrorMessage", ""))
        recorded_kind = recording.error.error_type if recording.error else None
        if recording.status != "FAILED":
            report.problems.append(
                f"the new code fails while replaying the recorded results: {kind}: {message} "
                f"(the recorded execution is {recording.status})"
            )
        elif recorded_kind is not None and recorded_kind != kind:
            report.problems.append(
                f"the new code fails differently: {kind}: {message} (recorded {recorded_kind})"
            )
    elif report.outcome == "completed" and recording.status == "SUCCEEDED":
        result = (report.output or {}).get("Result")
        if recording.result is not None and result not in (None, "", recording.result):
            report.notes.append(
                f"the result differs from the recorded one: {result!r} (recorded "
                f"{recording.result!r})"
            )
    elif report.outcome == "completed" and recording.status == "FAILED":
        report.notes.append("the new code succeeds where the recorded execution FAILED")


def _unreached(ops: list[Operation], reached: Mapping[str, None]) -> list[Operation]:
    """Recorded operations neither reached nor inside a reached context that replay skips."""
    by_id = {op.id: op for op in ops}

    def covered(op: Operation) -> bool:
        if op.id in reached:
            return True
        parent = by_id.get(op.parent_id) if op.parent_id else None
        seen: set[str] = set()
        while parent is not None and parent.id not in seen:
            seen.add(parent.id)
            if parent.id in reached and _skips_children(parent):
                return True
            parent = by_id.get(parent.parent_id) if parent.parent_id else None
        return False

    return [op for op in ops if not covered(op)]


def _skips_children(op: Operation) -> bool:
    """A recorded context whose body replay does not re-run (its result is replayed)."""
    if op.type is not _T.CONTEXT:
        return False
    if op.status is _S.FAILED:
        return True
    details = op.context_details
    return op.status is _S.SUCCEEDED and not (details and details.replay_children)


def _mismatch_problem(mismatch: ReplayMismatch, by_id: Mapping[str, Operation]) -> str:
    recorded = mismatch.recorded
    if recorded is None:
        return f"non-determinism: {mismatch.message}"
    return (
        f"non-determinism at {_position(recorded, by_id)}: the recording has "
        f"{_describe(recorded.type, recorded.sub_type, recorded.name)} there, the new code asks "
        f"for {mismatch.current} (renamed, reordered, inserted or removed code?) "
        f"[id {recorded.id}]"
    )


def _label(op: Operation, by_id: Mapping[str, Operation]) -> str:
    return f"{_describe(op.type, op.sub_type, op.name)} at {_position(op, by_id)}"


def _describe(kind: OperationType, sub_type: str | None, name: str | None) -> str:
    label = f"{kind.value} ({sub_type})" if sub_type else kind.value
    return f"{label} {name!r}" if name else f"unnamed {label}"


def _position(op: Operation, by_id: Mapping[str, Operation]) -> str:
    """``operation #2 of context 'payment'``: where in the code's call order ``op`` sits."""
    parent = by_id.get(op.parent_id) if op.parent_id else None
    where = (
        "the handler"
        if parent is None
        else f"{parent.type.value.lower()} {parent.name or parent.id!r}"
    )
    prefixes = [parent.id] if parent is not None else [None]
    limit = len(by_id) + 2
    for prefix in prefixes:
        for n in range(1, limit + 1):
            if operation_id(prefix, n) == op.id:
                return f"operation #{n} of {where}"
        if prefix is not None:
            for index in range(limit):
                if branch_id(prefix, index) == op.id:
                    return f"branch {index} of {where}"
    return f"an operation of {where}"
