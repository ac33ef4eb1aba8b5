"""In-process fake of the durable-execution service (PROTOCOL §2 to §4, §9.2, §14).

``FakeService`` plays the part of Lambda *and* of the durable-execution control plane for one
process: it starts executions, builds invocation events, accepts checkpoints and state reads,
runs the service-side state machines, fires timers from a ``VirtualClock`` and records an
execution history. The SDK talks to it through the same two calls it makes to the real
service (``checkpoint_durable_execution`` / ``get_durable_execution_state``), with the same
botocore-shaped requests and responses, so a test exercises the SDK's real wire path.

How a checkpoint is processed
-----------------------------
1. fault injection (``inject_fault``) — a faulted call is recorded and changes nothing;
2. ``ClientToken`` replay — the same ``(ClientToken, CheckpointToken)`` pair returns the cached
   response without looking at the (by now consumed) token again;
3. the token must be the execution's current one (single use, chained);
4. due timers are applied (the service completes due waits / readies due retries whenever it
   processes a checkpoint, PROTOCOL §8.6);
5. every update is parsed and validated against §3.7 / §4.4 / §4.7 on an overlay; the first
   violation rejects the whole call with 400 ``InvalidParameterValueException`` and no state
   change; otherwise the overlay is committed atomically;
6. the response carries a new token (none when an EXECUTION update ended the execution) and
   the **delta** (see below).

The delta
---------
Each execution keeps an ordered set of operation ids the *service* changed (timers, callbacks,
chained invokes) that no checkpoint response has delivered yet. A checkpoint response returns
those ids first, then the ids touched by the call in update order (each once, current state),
and empties the set. A new invocation does not empty it: as observed on the emulator (PROTOCOL
Appendix A.2) a wait completed while suspended shows up both in the next event and in the first
checkpoint response of that invocation. A separate set feeds ``UpdatedOperationIds`` and is
emptied by ``invocation_event``.

Markers
-------
``get_state`` pages two lists, named in the marker: ``"ops:<offset>"`` pages the full operation
list in creation order (initial load, §2.2; a marker-less call starts there) and
``"delta:<n>:<offset>"`` pages the remainder of checkpoint response number ``<n>`` whose delta was
larger than ``page_size``. Only the latest delta stays pageable; creation order is append-only,
so ``ops`` offsets stay valid while operations are added.

Chained invokes
---------------
With no function registered (``register_function``), a CHAINED_INVOKE START just stays
STARTED until a test calls ``complete_chained_invoke``. Once functions are registered the fake
resolves targets at START: unknown ones fail in the same response; a durable target gets a
child execution (``FakeExecution.invoked_by``) whose end completes the caller's operation; every
resolved START is queued for whoever runs the targets (``take_chained_invokes``, used by
``LocalRunner``).

Storage
-------
``FakeExecution.operations`` maps operation id to an ``adurable._wire.Operation`` model
(frozen; replaced on every change) in creation order. Responses are built from those models:
timestamps become aware ``datetime`` objects in API responses and integer epoch milliseconds
in invocation events; absent fields are omitted.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import enum
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio.lowlevel
from pydantic import ValidationError

from adurable._wire import (
    CallbackDetails,
    ChainedInvokeDetails,
    ChainedInvokeOptions,
    ContextDetails,
    ErrorObject,
    ExecutionDetails,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StepDetails,
    WaitDetails,
)
from adurable.testing._clock import VirtualClock

__all__ = ("ChainedInvokeRequest", "FakeExecution", "FakeService", "RecordedCall", "ServiceError")

ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"]

_A = OperationAction
_S = OperationStatus
_T = OperationType

# Limits (PROTOCOL §3.5).
_PAYLOAD_LIMIT = 6 * 1024 * 1024
_ERROR_JSON_LIMIT = 32_768
_INVOKE_PAYLOAD_LIMIT = 1024 * 1024
_CALLBACK_RESULT_LIMIT = 1024 * 1024
_MAX_DURATION_SECONDS = 31_622_400
_MAX_CALLBACK_TIMEOUT = 99_999_999
_MAX_PAGE = 1000

_ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_NAME_RE = re.compile(r"[\x20-\x7E]{1,256}")
_SUBTYPE_RE = re.compile(r"[a-zA-Z0-9_-]{1,32}")
_CLIENT_TOKEN_RE = re.compile(r"[\x21-\x7E]{1,64}")
_TENANT_RE = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")
_FUNCTION_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_QUALIFIER_RE = re.compile(r"\$LATEST|\$LATEST\.PUBLISHED|[0-9]+")
#: A chained-invoke target: name, partial ARN or full ARN, each with an optional qualifier.
_TARGET_RE = re.compile(
    r"(?:(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):)?(?P<account>\d{12}):function:)?"
    r"(?P<name>[a-zA-Z0-9_-]{1,64})"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]{1,128}))?"
)

_VALID_ACTIONS: dict[OperationType, frozenset[OperationAction]] = {
    _T.STEP: frozenset({_A.START, _A.SUCCEED, _A.FAIL, _A.RETRY}),
    _T.CONTEXT: frozenset({_A.START, _A.SUCCEED, _A.FAIL}),
    _T.WAIT: frozenset({_A.START, _A.CANCEL}),
    _T.CALLBACK: frozenset({_A.START}),
    _T.CHAINED_INVOKE: frozenset({_A.START}),
    _T.EXECUTION: frozenset({_A.SUCCEED, _A.FAIL}),
}

# Timer kinds.
_WAIT = "wait"
_RETRY = "step-retry"
_CB_TIMEOUT = "callback-timeout"
_CB_HEARTBEAT = "callback-heartbeat"
_INVOKE_RETRY = "invocation-retry"


class ServiceError(Exception):
    """An error answer of the service, shaped like botocore's ``ClientError``.

    Code that duck-types botocore (``exc.response["Error"]["Code"]``,
    ``exc.response["ResponseMetadata"]["HTTPStatusCode"]``) handles it unchanged.
    """

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"An error occurred ({code}): {message}")
        self.code = code
        self.message = message
        self.status = status
        self.response: dict[str, Any] = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message, 400)


@dataclass
class RecordedCall:
    """One API call as the fake saw it (faulted and rejected calls included)."""

    api: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    error: ServiceError | None


@dataclass(eq=False)
class FakeExecution:
    """Live view of one execution (mutated by the service; read it, do not write it).

    ``operations`` maps operation id to an ``adurable._wire.Operation`` model, in creation
    order; a changed operation is replaced by a new model at the same position.
    """

    arn: str
    execution_name: str
    status: ExecutionStatus = "RUNNING"
    result: str | None = None
    error: dict[str, Any] | None = None
    operations: dict[str, Operation] = field(default_factory=dict)
    invocations: int = 0
    consecutive_failures: int = 0
    #: ``aws_request_id`` of the current (or last) invocation.
    request_id: str | None = None
    #: For an execution started by a chained invoke: (caller's ARN, CHAINED_INVOKE op id).
    invoked_by: tuple[str, str] | None = None
    #: The ``TenantId`` of the chained invoke that started this execution, if any.
    tenant_id: str | None = None


@dataclass(frozen=True)
class ChainedInvokeRequest:
    """A chained invoke the fake resolved to a registered function (see ``register_function``).

    ``function_name``/``qualifier`` are the resolved bare name and qualifier (None when the
    caller gave none). For a durable target the service has already started ``execution_arn``;
    its outcome completes the caller's CHAINED_INVOKE. A plain target has no execution: whoever
    runs it reports back with ``complete_chained_invoke``.
    """

    caller_arn: str
    operation_id: str
    function_name: str
    qualifier: str | None
    payload: str | None
    tenant_id: str | None
    execution_arn: str | None


@dataclass(eq=False)
class _Timer:
    due: float
    seq: int
    kind: str
    op_id: str


@dataclass(eq=False)
class _Fault:
    api: str
    error: ServiceError
    after: int
    times: int
    seen: int = 0


@dataclass(eq=False)
class _Book:
    """Service-side bookkeeping of one execution (never shown to callers)."""

    view: FakeExecution
    execution_op_id: str
    token: str | None = None
    token_seq: int = 0
    invocation_started: float | None = None
    client_tokens: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    delta_pending: dict[str, None] = field(default_factory=dict)
    updated: dict[str, None] = field(default_factory=dict)
    timers: dict[tuple[str, str], _Timer] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    delta_seq: int = 0
    delta_snapshot: tuple[int, list[str]] | None = None
    retry_due: bool = False
    wait_seconds: dict[str, int] = field(default_factory=dict)
    callback_timeouts: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.view.status == "RUNNING"


@dataclass(eq=False)
class _Completion:
    status: ExecutionStatus
    result: str | None
    error: ErrorObject | None


class _Batch:
    """The effects of one checkpoint call, computed on an overlay and committed atomically."""

    def __init__(self, book: _Book, now: float) -> None:
        self.book = book
        self.now = now
        self.now_dt = _to_datetime(now)
        self.ops: dict[str, Operation] = {}
        self.seen: dict[str, list[OperationAction]] = {}
        self.touched: dict[str, None] = {}
        self.events: list[dict[str, Any]] = []
        self.timers: list[tuple[tuple[str, str], _Timer | None]] = []
        self.callbacks: dict[str, str] = {}
        self.invokes: list[tuple[OperationUpdate, str, str | None]] = []
        self.completion: _Completion | None = None

    def current(self, op_id: str) -> Operation | None:
        return self.ops.get(op_id) or self.book.view.operations.get(op_id)

    def put(self, op: Operation) -> None:
        self.ops[op.id] = op
        self.touched[op.id] = None

    def event(self, event_type: str, op: Operation | None, details: dict[str, Any]) -> None:
        self.events.append(_event(event_type, op, self.now_dt, details))

    def set_timer(self, kind: str, op_id: str, due: float, seq: int) -> None:
        self.timers.append(((kind, op_id), _Timer(due, seq, kind, op_id)))

    def clear_timer(self, kind: str, op_id: str) -> None:
        self.timers.append(((kind, op_id), None))


class FakeService:
    """An in-memory durable-execution service driven by a ``VirtualClock``.

    Synchronous and thread-safe at its core (an HTTP front end may call it from a thread);
    ``checkpoint_durable_execution`` / ``get_durable_execution_state`` are the awaitable
    versions the SDK uses when the service object is handed over as its Lambda client.
    """

    #: Consecutive failed invocations after which the execution FAILS (PROTOCOL §9.2, EMU).
    max_invocation_attempts: int = 5
    #: Backoff before a failed invocation is retried, seconds (EMU).
    invocation_retry_delay: float = 5.0
    #: Reported in ``ExecutionStarted``; not enforced yet (TODO: execution timeout → TIMED_OUT).
    execution_timeout_seconds: int = 86_400

    def __init__(
        self,
        *,
        clock: VirtualClock | None = None,
        page_size: int = 1000,
        region: str = "us-east-1",
        account: str = "123456789012",
    ) -> None:
        if not 1 <= page_size <= _MAX_PAGE:
            raise ValueError(f"page_size must be within 1..{_MAX_PAGE}, got {page_size}")
        self.clock = clock if clock is not None else VirtualClock()
        self.page_size = page_size
        self.region = region
        self.account = account
        self.calls: list[RecordedCall] = []
        self._lock = threading.RLock()
        self._books: dict[str, _Book] = {}
        self._names: dict[tuple[str, str, str], str] = {}
        self._callbacks: dict[str, tuple[str, str]] = {}
        self._faults: list[_Fault] = []
        self._seq = 0
        self._functions: dict[str, bool] = {}
        self._invoke_requests: list[ChainedInvokeRequest] = []
        self._invoke_links: dict[str, tuple[str, str]] = {}

    # ------------------------------------------------------------------ botocore-shaped API

    def checkpoint(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Updates: list[dict[str, Any]] | None = None,
        ClientToken: str | None = None,
    ) -> dict[str, Any]:
        """``CheckpointDurableExecution`` (PROTOCOL §3.3)."""
        request: dict[str, Any] = {
            "DurableExecutionArn": DurableExecutionArn,
            "CheckpointToken": CheckpointToken,
        }
        if Updates is not None:
            request["Updates"] = copy.deepcopy(Updates)
        if ClientToken is not None:
            request["ClientToken"] = ClientToken
        with self._lock:
            return self._call(
                "checkpoint",
                request,
                lambda: self._checkpoint(
                    DurableExecutionArn, CheckpointToken, Updates, ClientToken
                ),
            )

    def get_state(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Marker: str | None = None,
        MaxItems: int | None = None,
    ) -> dict[str, Any]:
        """``GetDurableExecutionState`` (PROTOCOL §3.4)."""
        request: dict[str, Any] = {
            "DurableExecutionArn": DurableExecutionArn,
            "CheckpointToken": CheckpointToken,
        }
        if Marker is not None:
            request["Marker"] = Marker
        if MaxItems is not None:
            request["MaxItems"] = MaxItems
        with self._lock:
            return self._call(
                "get_state",
                request,
                lambda: self._get_state(DurableExecutionArn, CheckpointToken, Marker, MaxItems),
            )

    async def checkpoint_durable_execution(self, **kwargs: Any) -> dict[str, Any]:
        """Awaitable ``checkpoint`` (the aiobotocore client method name)."""
        await anyio.lowlevel.checkpoint()
        return self.checkpoint(**kwargs)

    async def get_durable_execution_state(self, **kwargs: Any) -> dict[str, Any]:
        """Awaitable ``get_state`` (the aiobotocore client method name)."""
        await anyio.lowlevel.checkpoint()
        return self.get_state(**kwargs)

    def inject_fault(
        self, api: str, error: ServiceError, *, times: int = 1, after: int = 0
    ) -> None:
        """Make calls ``after + 1`` … ``after + times`` of ``api`` (counted from now) fail.

        Each of them raises ``error``.

        ``api`` is ``"checkpoint"`` or ``"get_state"``. A faulted call is recorded in ``calls``
        and changes nothing (the token stays valid). Faults injected separately count their
        windows independently; when two windows cover the same call the older one wins.
        """
        if api not in ("checkpoint", "get_state"):
            raise ValueError(f"api must be 'checkpoint' or 'get_state', not {api!r}")
        if times < 1 or after < 0:
            raise ValueError("need times >= 1 and after >= 0")
        with self._lock:
            self._faults.append(_Fault(api, error, after, times))

    # ------------------------------------------------------------------ executions

    def start_execution(
        self,
        input_payload: str | None = None,
        *,
        function_name: str = "fn",
        qualifier: str = "$LATEST",
        execution_name: str | None = None,
    ) -> str:
        """Create an execution (EXECUTION op STARTED) and return its DurableExecutionArn.

        A given ``execution_name`` is an idempotency key: starting the same name of the same
        function and qualifier again returns the existing execution's ARN.
        """
        if not _FUNCTION_RE.fullmatch(function_name):
            raise ValueError(f"function_name must match [a-zA-Z0-9_-]{{1,64}}: {function_name!r}")
        if not _QUALIFIER_RE.fullmatch(qualifier):
            raise ValueError(
                f"qualifier must be $LATEST, $LATEST.PUBLISHED or a version: {qualifier!r}"
            )
        if execution_name is not None and not _ID_RE.fullmatch(execution_name):
            raise ValueError(f"execution_name must match [a-zA-Z0-9_-]{{1,64}}: {execution_name!r}")
        return self._create_execution(input_payload, function_name, qualifier, execution_name)

    def _create_execution(
        self,
        input_payload: str | None,
        function_name: str,
        qualifier: str,
        execution_name: str | None,
    ) -> str:
        with self._lock:
            if execution_name is not None:
                existing = self._names.get((function_name, qualifier, execution_name))
                if existing is not None:
                    return existing
            name = execution_name or uuid.uuid4().hex
            invocation_id = str(uuid.uuid4())
            arn = (
                f"arn:aws:lambda:{self.region}:{self.account}:function:{function_name}:"
                f"{qualifier}/durable-execution/{name}/{invocation_id}"
            )
            now = self.clock.now_datetime()
            op = Operation(
                id=invocation_id,
                type=_T.EXECUTION,
                status=_S.STARTED,
                start_timestamp=now,
                execution_details=ExecutionDetails(input_payload=input_payload),
            )
            view = FakeExecution(arn=arn, execution_name=name, operations={op.id: op})
            book = _Book(view=view, execution_op_id=invocation_id)
            self._books[arn] = book
            self._names[(function_name, qualifier, name)] = arn
            self._append_events(
                book,
                [
                    _event(
                        "ExecutionStarted",
                        op,
                        now,
                        {
                            "Input": _payload(input_payload),
                            "ExecutionTimeout": self.execution_timeout_seconds,
                        },
                    )
                ],
            )
            return arn

    def invocation_event(self, arn: str) -> dict[str, Any]:
        """Start an invocation: fire due timers, issue a fresh token, build the §2.1 envelope.

        Every older token of the execution becomes stale. Timestamps in the event are integer
        epoch milliseconds.
        """
        with self._lock:
            book = self._book(arn)
            self._fire_due(book)
            if not book.running:
                raise RuntimeError(
                    f"execution {arn} is {book.view.status}; there is nothing left to invoke"
                )
            view = book.view
            view.invocations += 1
            view.request_id = str(uuid.uuid4())
            book.token = self._new_token(book)
            book.invocation_started = self.clock.now()
            book.retry_due = False
            book.timers.pop((_INVOKE_RETRY, ""), None)
            ops = list(view.operations.values())
            first = ops[: self.page_size]
            updated = list(book.updated)
            book.updated.clear()
            return {
                "DurableExecutionArn": arn,
                "CheckpointToken": book.token,
                "InitialExecutionState": {
                    "Operations": [_dump(op, _to_millis) for op in first],
                    "NextMarker": f"ops:{self.page_size}" if len(ops) > self.page_size else "",
                },
                "UpdatedOperationIds": updated,
            }

    def finish_invocation(self, arn: str, output: Mapping[str, Any]) -> None:
        """Apply the handler's §2.5 output.

        SUCCEEDED/FAILED end the execution (unless an EXECUTION checkpoint already did);
        PENDING keeps it running. An output the service would reject (FAILED with a Result,
        SUCCEEDED with an Error, PENDING with nothing pending, a malformed object) counts as a
        failed invocation, like a function error (see ``fail_invocation``).
        """
        with self._lock:
            book = self._book(arn)
            self._fire_due(book)
            problem, status, error = self._check_output(book, output)
            if problem is not None:
                self._invocation_failed(
                    book,
                    ErrorObject(error_type="InvalidParameterValueException", error_message=problem),
                )
                return
            book.view.consecutive_failures = 0
            self._invocation_completed(book, None)
            if status == "PENDING" or not book.running:
                return
            now = self.clock.now()
            if status == "SUCCEEDED":
                result = output.get("Result")
                self._complete(book, _Completion("SUCCEEDED", result, None), now)
            else:
                self._complete(book, _Completion("FAILED", None, error), now)

    def fail_invocation(self, arn: str, error: BaseException) -> None:
        """The handler raised (a Lambda function error).

        The service retries the invocation after ``invocation_retry_delay`` seconds (a timer,
        see ``next_timer``); after ``max_invocation_attempts`` consecutive failures the
        execution FAILS with the last error.
        """
        with self._lock:
            book = self._book(arn)
            self._fire_due(book)
            self._invocation_failed(book, _error_from_exception(error))

    def execution(self, arn: str) -> FakeExecution:
        """The live ``FakeExecution`` of ``arn``."""
        with self._lock:
            return self._book(arn).view

    def operations(self, arn: str) -> list[Operation]:
        """All operations of ``arn`` in creation order."""
        with self._lock:
            return list(self._book(arn).view.operations.values())

    def history(self, arn: str) -> list[dict[str, Any]]:
        """History events (PROTOCOL §14) of ``arn`` in order, shaped as botocore parses them.

        Events are appended as things happen: ``ExecutionSucceeded`` caused by an EXECUTION
        checkpoint therefore precedes that invocation's ``InvocationCompleted``.
        """
        with self._lock:
            return copy.deepcopy(self._book(arn).history)

    def next_timer(self, arn: str, *, callbacks: bool = True) -> float | None:
        """Epoch seconds of the earliest pending timer of ``arn`` (None when there is none).

        ``callbacks=False`` ignores callback timeout and heartbeat timers: the execution is
        then waiting on the outside world rather than on time.
        """
        with self._lock:
            book = self._book(arn)
            dues = [
                t.due
                for t in book.timers.values()
                if callbacks or not t.kind.startswith("callback")
            ]
            if not book.running or not dues:
                return None
            return min(dues)

    def fire_due_timers(self) -> None:
        """Apply every timer due at ``clock.now()`` in every execution.

        WAIT STARTED → SUCCEEDED, STEP PENDING → READY, CALLBACK STARTED → TIMED_OUT, and a
        failed invocation becomes ready to be retried. Changed ids become ``UpdatedOperationIds``
        of the next invocation and part of the next checkpoint response's delta.
        """
        with self._lock:
            for book in self._books.values():
                self._fire_due(book)

    def has_ready_work(self, arn: str) -> bool:
        """Whether something changed since the last invocation that warrants re-invoking."""
        with self._lock:
            book = self._book(arn)
            self._fire_due(book)
            return book.running and (bool(book.updated) or book.retry_due)

    # ------------------------------------------------------------------ callbacks

    def send_callback_success(self, callback_id: str, result: bytes | str = b"") -> None:
        """``SendDurableExecutionCallbackSuccess``: the callback SUCCEEDS with ``result``.

        The body is stored as UTF-8 text; an empty body leaves no Result.
        """
        body = result.encode("utf-8") if isinstance(result, str) else bytes(result)
        if len(body) > _CALLBACK_RESULT_LIMIT:
            raise _invalid(f"Callback result is {len(body)} bytes; the limit is 1 MiB")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _invalid("Callback result must be UTF-8") from exc
        with self._lock:
            book, op = self._callback_target(callback_id)
            details = CallbackDetails(callback_id=callback_id, result=text or None)
            self._service_change(
                book,
                op,
                _S.SUCCEEDED,
                {"callback_details": details},
                "CallbackSucceeded",
                {"Result": _payload(text or None)},
            )
            self._clear_callback_timers(book, op.id)

    def send_callback_failure(self, callback_id: str, error: Mapping[str, Any]) -> None:
        """``SendDurableExecutionCallbackFailure``: the callback FAILS with ``error``."""
        try:
            err = ErrorObject.model_validate(dict(error))
        except ValidationError as exc:
            raise _invalid(f"Malformed error object: {exc}") from exc
        with self._lock:
            book, op = self._callback_target(callback_id)
            details = CallbackDetails(callback_id=callback_id, error=err)
            self._service_change(
                book,
                op,
                _S.FAILED,
                {"callback_details": details},
                "CallbackFailed",
                {"Error": _error_payload(err)},
            )
            self._clear_callback_timers(book, op.id)

    def send_callback_heartbeat(self, callback_id: str) -> None:
        """``SendDurableExecutionCallbackHeartbeat``: restart the heartbeat timeout, if any."""
        with self._lock:
            book, op = self._callback_target(callback_id)
            _, heartbeat = book.callback_timeouts.get(op.id, (0, 0))
            if heartbeat > 0:
                due = self.clock.now() + heartbeat
                book.timers[(_CB_HEARTBEAT, op.id)] = _Timer(
                    due, self._next_seq(), _CB_HEARTBEAT, op.id
                )

    # ------------------------------------------------------------------ chained invokes

    def register_function(self, function_name: str, *, durable: bool = True) -> None:
        """Declare a function chained invokes may target (``LocalRunner.register`` calls this).

        Until the first function is registered the fake does not resolve targets at all: every
        chained invoke stays STARTED until ``complete_chained_invoke``. From then on a START
        naming an unknown function (or another account/region, or a durable function without
        a qualifier) comes back FAILED in the same checkpoint response (PROTOCOL §4.7). A
        resolved START of a durable function starts a child execution whose outcome completes
        the CHAINED_INVOKE; every resolved START is queued for ``take_chained_invokes``.
        """
        if not _FUNCTION_RE.fullmatch(function_name):
            raise ValueError(f"function_name must match [a-zA-Z0-9_-]{{1,64}}: {function_name!r}")
        with self._lock:
            self._functions[function_name] = durable

    def take_chained_invokes(self) -> list[ChainedInvokeRequest]:
        """The chained invokes resolved since the last call, in checkpoint order."""
        with self._lock:
            requests, self._invoke_requests = self._invoke_requests, []
            return requests

    def complete_chained_invoke(
        self,
        arn: str,
        operation_id: str,
        *,
        result: str | None = None,
        error: Mapping[str, Any] | None = None,
        status: Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"] | None = None,
    ) -> None:
        """Finish a STARTED chained invoke as its target would (test hook).

        ``status`` defaults to SUCCEEDED without ``error`` and FAILED with it. (Registered
        durable targets complete their caller by themselves, see ``register_function``.)
        """
        final = status or ("FAILED" if error is not None else "SUCCEEDED")
        err = ErrorObject.model_validate(dict(error)) if error is not None else None
        with self._lock:
            book = self._book(arn)
            self._fire_due(book)
            op = book.view.operations.get(operation_id)
            if op is None or op.type is not _T.CHAINED_INVOKE or op.status is not _S.STARTED:
                raise ServiceError(
                    "ResourceNotFoundException",
                    f"No started chained invoke {operation_id!r} in {arn}",
                    404,
                )
            details = ChainedInvokeDetails(
                result=result if final == "SUCCEEDED" else None,
                error=err if final != "SUCCEEDED" else None,
            )
            event_type = {
                "SUCCEEDED": "ChainedInvokeSucceeded",
                "FAILED": "ChainedInvokeFailed",
                "TIMED_OUT": "ChainedInvokeTimedOut",
                "STOPPED": "ChainedInvokeStopped",
            }[final]
            event_details = (
                {"Result": _payload(result)}
                if final == "SUCCEEDED"
                else {"Error": _error_payload(err)}
            )
            self._service_change(
                book, op, _S(final), {"chained_invoke_details": details}, event_type, event_details
            )

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
        target = self._parse_target(options.function_name)
        if target is None or target[0] not in self._functions:
            return ErrorObject(
                error_type="ResourceNotFoundException",
                error_message=f"Function not found: {options.function_name}",
            )
        name, qualifier = target
        if qualifier is None and self._functions[name]:
            return ErrorObject(
                error_type="InvalidParameterValueException",
                error_message=(
                    f"Durable function {name} must be invoked with a qualified name or ARN "
                    f"(version, alias or $LATEST): {options.function_name}"
                ),
            )
        return None

    def _parse_target(self, function_name: str) -> tuple[str, str | None] | None:
        """(bare name, qualifier or None) of a function name or ARN in this account/region."""
        match = _TARGET_RE.fullmatch(function_name)
        if match is None:
            return None
        region, account = match["region"], match["account"]
        if (region is not None and region != self.region) or (
            account is not None and account != self.account
        ):
            return None
        return match["name"], match["qualifier"]

    # ------------------------------------------------------------------ internals: calls

    def _call(
        self, api: str, request: dict[str, Any], run: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        fault = self._take_fault(api)
        if fault is not None:
            self.calls.append(RecordedCall(api, request, None, fault))
            raise fault
        try:
            response = run()
        except ServiceError as exc:
            self.calls.append(RecordedCall(api, request, None, exc))
            raise
        self.calls.append(RecordedCall(api, request, copy.deepcopy(response), None))
        return response

    def _take_fault(self, api: str) -> ServiceError | None:
        hit: ServiceError | None = None
        for fault in self._faults:
            if fault.api != api:
                continue
            fault.seen += 1
            if hit is None and fault.after < fault.seen <= fault.after + fault.times:
                hit = fault.error
        self._faults = [f for f in self._faults if f.seen < f.after + f.times]
        return hit

    def _book(self, arn: str) -> _Book:
        try:
            return self._books[arn]
        except KeyError:
            known = ", ".join(self._books) or "none"
            raise KeyError(f"no execution {arn!r} in this FakeService (known: {known})") from None

    def _api_book(self, arn: str, token: str) -> _Book:
        book = self._books.get(arn)
        if book is None:
            raise _invalid(f"Unknown durable execution ARN {arn!r}")
        if not token or book.token is None or token != book.token:
            raise _invalid(
                "Invalid checkpoint token: it was already used, belongs to an earlier invocation, "
                "or the execution has ended"
            )
        return book

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _new_token(self, book: _Book) -> str:
        book.token_seq += 1
        raw = f"{book.execution_op_id}:{book.token_seq}:{self._next_seq()}"
        return base64.b64encode(raw.encode("ascii")).decode("ascii")

    # ------------------------------------------------------------------ internals: get_state

    def _get_state(
        self, arn: str, token: str, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        book = self._api_book(arn, token)
        if max_items is not None and not 0 <= max_items <= _MAX_PAGE:
            raise _invalid(f"MaxItems must be within 0..{_MAX_PAGE}, got {max_items}")
        limit = min(max_items, self.page_size) if max_items else self.page_size
        kind, seq, offset = _parse_marker(marker or "ops:0")
        if kind == "ops":
            ids = list(book.view.operations)
        else:
            snapshot = book.delta_snapshot
            if snapshot is None or snapshot[0] != seq:
                raise _invalid(f"Marker {marker!r} has expired")
            ids = snapshot[1]
        if offset > len(ids):
            raise _invalid(f"Marker {marker!r} is past the end of the list")
        page = ids[offset : offset + limit]
        response: dict[str, Any] = {
            "Operations": [_dump(book.view.operations[i], _identity) for i in page]
        }
        end = offset + len(page)
        if end < len(ids):
            response["NextMarker"] = f"ops:{end}" if kind == "ops" else f"delta:{seq}:{end}"
        return response

    # ------------------------------------------------------------------ internals: checkpoint

    def _checkpoint(
        self, arn: str, token: str, updates: Any, client_token: str | None
    ) -> dict[str, Any]:
        book = self._books.get(arn)
        if client_token is not None and book is not None:
            cached = book.client_tokens.get((client_token, token))
            if cached is not None:
                return copy.deepcopy(cached)
        book = self._api_book(arn, token)
        if client_token is not None and not _CLIENT_TOKEN_RE.fullmatch(client_token):
            raise _invalid("ClientToken must be 1-64 printable ASCII characters")
        if updates is not None and not isinstance(updates, list):
            raise _invalid("Updates must be a list")
        self._fire_due(book)
        batch = self._validate(book, updates or [])
        self._commit(book, batch)

        ids = list(dict.fromkeys([*book.delta_pending, *batch.touched]))
        book.delta_pending.clear()
        state: dict[str, Any] = {}
        response: dict[str, Any] = {}
        if book.running:
            book.token = self._new_token(book)
            response["CheckpointToken"] = book.token
            if len(ids) > self.page_size:
                book.delta_seq += 1
                book.delta_snapshot = (book.delta_seq, ids)
                state["NextMarker"] = f"delta:{book.delta_seq}:{self.page_size}"
                ids = ids[: self.page_size]
        else:
            book.token = None  # execution over: the token is spent, nothing to page with
        ops = book.view.operations
        state = {"Operations": [_dump(ops[i], _identity) for i in ids], **state}
        response["NewExecutionState"] = state
        if client_token is not None:
            book.client_tokens[(client_token, token)] = copy.deepcopy(response)
        return response

    def _validate(self, book: _Book, raw_updates: list[Any]) -> _Batch:
        parsed: list[OperationUpdate] = []
        for index, raw in enumerate(raw_updates):
            parsed.append(_parse_update(index, raw))
        executions = [i for i, u in enumerate(parsed) if u.type is _T.EXECUTION]
        if len(executions) > 1:
            raise _invalid("At most one EXECUTION update is allowed per checkpoint")
        if executions and executions[0] != len(parsed) - 1:
            raise _invalid("An EXECUTION update must be the last update of its checkpoint")

        batch = _Batch(book, self.clock.now())
        for index, update in enumerate(parsed):
            where = f"Updates[{index}] ({update.type.value} {update.id} {update.action.value})"
            if update.action not in _VALID_ACTIONS[update.type]:
                allowed = ", ".join(sorted(a.value for a in _VALID_ACTIONS[update.type]))
                raise _invalid(
                    f"{where}: invalid action for {update.type.value}; allowed: {allowed}"
                )
            if update.type is _T.EXECUTION:
                self._apply_execution(batch, update, where)
                continue
            previous = batch.seen.setdefault(update.id, [])
            if previous and not (
                update.type in (_T.STEP, _T.CONTEXT)
                and previous == [_A.START]
                and update.action is not _A.START
            ):
                raise _invalid(f"{where}: duplicate operation id in one checkpoint")
            previous.append(update.action)
            if update.parent_id is not None:
                parent = batch.current(update.parent_id)
                if parent is None or parent.type is not _T.CONTEXT:
                    raise _invalid(f"{where}: Invalid parent operation id {update.parent_id!r}")
            current = batch.current(update.id)
            if current is not None:
                _check_consistent(where, update, current)
            apply = {
                _T.STEP: self._apply_step,
                _T.WAIT: self._apply_wait,
                _T.CALLBACK: self._apply_callback,
                _T.CHAINED_INVOKE: self._apply_chained_invoke,
                _T.CONTEXT: self._apply_context,
            }[update.type]
            apply(batch, update, current, where)
        return batch

    def _commit(self, book: _Book, batch: _Batch) -> None:
        ops = book.view.operations
        for op_id, op in batch.ops.items():
            ops[op_id] = op
        for key, timer in batch.timers:
            if timer is None:
                book.timers.pop(key, None)
            else:
                book.timers[key] = timer
        for callback_id, op_id in batch.callbacks.items():
            self._callbacks[callback_id] = (book.view.arn, op_id)
        self._append_events(book, batch.events)
        for update, function_name, qualifier in batch.invokes:
            self._start_target(book, update, function_name, qualifier)
        if batch.completion is not None:
            self._complete(book, batch.completion, batch.now)
            batch.touched[book.execution_op_id] = None

    def _start_target(
        self, book: _Book, u: OperationUpdate, function_name: str, qualifier: str | None
    ) -> None:
        """Queue a resolved chained invoke; a durable target gets its child execution now."""
        caller = (book.view.arn, u.id)
        tenant_id = u.chained_invoke_options.tenant_id if u.chained_invoke_options else None
        child_arn: str | None = None
        if self._functions[function_name]:
            child_arn = self._create_execution(
                u.payload, function_name, qualifier or "$LATEST", None
            )
            child = self._books[child_arn].view
            child.invoked_by, child.tenant_id = caller, tenant_id
            self._invoke_links[child_arn] = caller
        self._invoke_requests.append(
            ChainedInvokeRequest(*caller, function_name, qualifier, u.payload, tenant_id, child_arn)
        )

    # One function per operation type: compute the new Operation on the overlay, or reject.

    def _apply_step(
        self, batch: _Batch, u: OperationUpdate, cur: Operation | None, where: str
    ) -> None:
        if u.action is _A.START:
            if cur is None:
                op = _new_op(u, batch.now_dt, _S.STARTED, step_details=StepDetails(attempt=0))
            elif cur.status is _S.READY:
                op = cur.model_copy(update={"status": _S.STARTED})
            else:
                raise _invalid(
                    f"{where}: Invalid status transition: START needs a new or READY step, "
                    f"this one is {cur.status.value}"
                )
            batch.put(op)
            batch.event("StepStarted", op, {})
            return
        if cur is None:
            raise _invalid(f"{where}: Invalid status transition: the step was never started")
        if cur.status not in (_S.STARTED, _S.READY):
            raise _invalid(
                f"{where}: Invalid status transition: {u.action.value} needs a STARTED or READY "
                f"step, this one is {cur.status.value}"
            )
        attempt = (cur.step_details.attempt if cur.step_details else 0) + 1
        batch.clear_timer(_RETRY, u.id)
        retry = {"CurrentAttempt": attempt}
        if u.action is _A.SUCCEED:
            _no_error(u, where)
            op = _finish(
                cur,
                _S.SUCCEEDED,
                batch.now_dt,
                step_details=StepDetails(attempt=attempt, result=u.payload),
            )
            batch.put(op)
            batch.event("StepSucceeded", op, {"Result": _payload(u.payload), "RetryDetails": retry})
        elif u.action is _A.FAIL:
            _no_payload(u, where)
            op = _finish(
                cur,
                _S.FAILED,
                batch.now_dt,
                step_details=StepDetails(attempt=attempt, error=u.error),
            )
            batch.put(op)
            batch.event("StepFailed", op, {"Error": _error_payload(u.error), "RetryDetails": retry})
        else:  # RETRY
            if u.step_options is None:
                raise _invalid(f"{where}: RETRY requires StepOptions")
            if u.error is not None and u.payload is not None:
                raise _invalid(f"{where}: RETRY must not carry both Error and Payload")
            delay = u.step_options.next_attempt_delay_seconds
            _check_range(where, "NextAttemptDelaySeconds", delay, 1, _MAX_DURATION_SECONDS)
            due = batch.now + delay
            details = StepDetails(
                attempt=attempt,
                next_attempt_timestamp=_to_datetime(due),
                result=u.payload,
                error=u.error,
            )
            op = cur.model_copy(update={"status": _S.PENDING, "step_details": details})
            batch.put(op)
            batch.set_timer(_RETRY, u.id, due, self._next_seq())
            retry = {"CurrentAttempt": attempt, "NextAttemptDelaySeconds": delay}
            if u.error is not None:
                batch.event(
                    "StepFailed", op, {"Error": _error_payload(u.error), "RetryDetails": retry}
                )
            else:
                batch.event(
                    "StepSucceeded", op, {"Result": _payload(u.payload), "RetryDetails": retry}
                )

    def _apply_wait(
        self, batch: _Batch, u: OperationUpdate, cur: Operation | None, where: str
    ) -> None:
        if u.action is _A.START:
            if cur is not None:
                raise _invalid(f"{where}: Invalid status transition: the wait already exists")
            if u.wait_options is None:
                raise _invalid(f"{where}: START of a WAIT requires WaitOptions")
            seconds = u.wait_options.wait_seconds
            _check_range(where, "WaitSeconds", seconds, 1, _MAX_DURATION_SECONDS)
            due = batch.now + seconds
            end = _to_datetime(due)
            op = _new_op(
                u, batch.now_dt, _S.STARTED, wait_details=WaitDetails(scheduled_end_timestamp=end)
            )
            batch.put(op)
            batch.set_timer(_WAIT, u.id, due, self._next_seq())
            batch.book.wait_seconds[u.id] = seconds
            batch.event("WaitStarted", op, {"Duration": seconds, "ScheduledEndTimestamp": end})
        else:  # CANCEL
            if cur is None or cur.status is not _S.STARTED:
                state = "missing" if cur is None else cur.status.value
                raise _invalid(
                    f"{where}: Invalid status transition: CANCEL needs a STARTED wait ({state})"
                )
            op = _finish(cur, _S.CANCELLED, batch.now_dt)
            batch.put(op)
            batch.clear_timer(_WAIT, u.id)
            batch.event("WaitCancelled", op, {})

    def _apply_callback(
        self, batch: _Batch, u: OperationUpdate, cur: Operation | None, where: str
    ) -> None:
        if cur is not None:
            raise _invalid(f"{where}: Invalid status transition: the callback already exists")
        timeout = u.callback_options.timeout_seconds if u.callback_options else 0
        heartbeat = u.callback_options.heartbeat_timeout_seconds if u.callback_options else 0
        _check_range(where, "TimeoutSeconds", timeout, 0, _MAX_CALLBACK_TIMEOUT)
        _check_range(where, "HeartbeatTimeoutSeconds", heartbeat, 0, _MAX_CALLBACK_TIMEOUT)
        raw = f"{batch.book.execution_op_id}:{u.id}:{self._next_seq()}"
        callback_id = base64.b64encode(raw.encode("ascii")).decode("ascii")
        op = _new_op(
            u, batch.now_dt, _S.STARTED, callback_details=CallbackDetails(callback_id=callback_id)
        )
        batch.put(op)
        batch.callbacks[callback_id] = u.id
        batch.book.callback_timeouts[u.id] = (timeout, heartbeat)
        if timeout > 0:
            batch.set_timer(_CB_TIMEOUT, u.id, batch.now + timeout, self._next_seq())
        if heartbeat > 0:
            batch.set_timer(_CB_HEARTBEAT, u.id, batch.now + heartbeat, self._next_seq())
        details: dict[str, Any] = {"CallbackId": callback_id}
        if heartbeat > 0:
            details["HeartbeatTimeout"] = heartbeat
        if timeout > 0:
            details["Timeout"] = timeout
        batch.event("CallbackStarted", op, details)

    def _apply_chained_invoke(
        self, batch: _Batch, u: OperationUpdate, cur: Operation | None, where: str
    ) -> None:
        if cur is not None:
            raise _invalid(f"{where}: Invalid status transition: the chained invoke already exists")
        options = u.chained_invoke_options
        if options is None:
            raise _invalid(f"{where}: START of a CHAINED_INVOKE requires ChainedInvokeOptions")
        if not 1 <= len(options.function_name) <= 256:
            raise _invalid(f"{where}: FunctionName must be 1-256 characters")
        if options.tenant_id is not None and not _TENANT_RE.fullmatch(options.tenant_id):
            raise _invalid(f"{where}: invalid TenantId {options.tenant_id!r}")
        if u.payload is not None and len(u.payload.encode("utf-8")) > _INVOKE_PAYLOAD_LIMIT:
            raise _invalid(f"{where}: chained invoke payload exceeds 1 MiB")
        op = _new_op(u, batch.now_dt, _S.STARTED)
        batch.put(op)
        details: dict[str, Any] = {"FunctionName": options.function_name}
        if options.tenant_id is not None:
            details["TenantId"] = options.tenant_id
        if u.payload is not None:
            details["Input"] = _payload(u.payload)
        batch.event("ChainedInvokeStarted", op, details)
        error = self._resolve_chained_invoke(batch.book.view.arn, u, options)
        if error is not None:
            failed = _finish(
                op,
                _S.FAILED,
                batch.now_dt,
                chained_invoke_details=ChainedInvokeDetails(error=error),
            )
            batch.put(failed)
            batch.event("ChainedInvokeFailed", failed, {"Error": _error_payload(error)})
            return
        target = self._parse_target(options.function_name)
        if target is not None and target[0] in self._functions:
            batch.invokes.append((u, *target))

    def _apply_context(
        self, batch: _Batch, u: OperationUpdate, cur: Operation | None, where: str
    ) -> None:
        if u.action is _A.START:
            if cur is not None:
                raise _invalid(f"{where}: Invalid status transition: the context already exists")
            op = _new_op(u, batch.now_dt, _S.STARTED)
            batch.put(op)
            batch.event("ContextStarted", op, {})
            return
        if cur is not None and cur.status is not _S.STARTED:
            raise _invalid(
                f"{where}: Invalid status transition: {u.action.value} needs a STARTED or new "
                f"context, this one is {cur.status.value}"
            )
        base = cur if cur is not None else _new_op(u, batch.now_dt, _S.STARTED)
        if u.action is _A.SUCCEED:
            _no_error(u, where)
            replay = u.context_options.replay_children if u.context_options else False
            details = ContextDetails(replay_children=replay, result=u.payload)
            op = _finish(base, _S.SUCCEEDED, batch.now_dt, context_details=details)
            batch.put(op)
            batch.event("ContextSucceeded", op, {"Result": _payload(u.payload)})
        else:  # FAIL
            _no_payload(u, where)
            op = _finish(
                base, _S.FAILED, batch.now_dt, context_details=ContextDetails(error=u.error)
            )
            batch.put(op)
            batch.event("ContextFailed", op, {"Error": _error_payload(u.error)})

    def _apply_execution(self, batch: _Batch, u: OperationUpdate, where: str) -> None:
        if u.action is _A.SUCCEED:
            _no_error(u, where)
            batch.completion = _Completion("SUCCEEDED", u.payload, None)
        else:
            _no_payload(u, where)
            batch.completion = _Completion("FAILED", None, u.error)

    # ------------------------------------------------------------------ internals: lifecycle

    def _complete(self, book: _Book, completion: _Completion, now: float) -> None:
        """End a RUNNING execution: status, result/error, EXECUTION op, history, no token."""
        view = book.view
        when = _to_datetime(now)
        view.status = completion.status
        view.result = completion.result
        view.error = completion.error.to_wire() if completion.error is not None else None
        op_status = _S.SUCCEEDED if completion.status == "SUCCEEDED" else _S.FAILED
        op = _finish(view.operations[book.execution_op_id], op_status, when)
        view.operations[op.id] = op
        if completion.status == "SUCCEEDED":
            event = _event("ExecutionSucceeded", op, when, {"Result": _payload(completion.result)})
        else:
            event = _event("ExecutionFailed", op, when, {"Error": _error_payload(completion.error)})
        self._append_events(book, [event])
        book.token = None
        book.timers.clear()
        book.retry_due = False
        link = self._invoke_links.pop(view.arn, None)
        if link is not None:
            self._complete_caller(link, completion)

    def _complete_caller(self, link: tuple[str, str], completion: _Completion) -> None:
        """A chained-invoke target execution ended: its outcome completes the caller's op."""
        book = self._books[link[0]]
        op = book.view.operations.get(link[1])
        if not book.running or op is None or op.status is not _S.STARTED:
            return
        if completion.status == "SUCCEEDED":
            details = ChainedInvokeDetails(result=completion.result)
            event = ("ChainedInvokeSucceeded", {"Result": _payload(completion.result)})
        else:
            details = ChainedInvokeDetails(error=completion.error)
            event = ("ChainedInvokeFailed", {"Error": _error_payload(completion.error)})
        status = _S.SUCCEEDED if completion.status == "SUCCEEDED" else _S.FAILED
        self._service_change(book, op, status, {"chained_invoke_details": details}, *event)

    def _check_output(
        self, book: _Book, output: Mapping[str, Any]
    ) -> tuple[str | None, str, ErrorObject | None]:
        if not isinstance(output, Mapping):
            return f"Handler output must be an object, got {type(output).__name__}", "", None
        status = output.get("Status")
        if status not in ("SUCCEEDED", "FAILED", "PENDING"):
            return f"Invalid invocation Status {status!r}", "", None
        error: ErrorObject | None = None
        if output.get("Error") is not None:
            try:
                error = ErrorObject.model_validate(output["Error"])
            except ValidationError as exc:
                return f"Malformed Error in handler output: {exc}", status, None
        result = output.get("Result")
        if result is not None and not isinstance(result, str):
            return "Result must be a string", status, None
        if status == "FAILED" and result is not None:
            return "Cannot return FAILED status with a Result.", status, None
        if status == "SUCCEEDED" and error is not None:
            return "Cannot return SUCCEEDED status with an Error.", status, None
        if status == "PENDING":
            if result is not None or error is not None:
                return "Cannot return PENDING status with a Result or an Error.", status, None
            if book.running and not book.updated and not _has_pending(book):
                return "Cannot return PENDING status with no pending operations.", status, None
        return None, status, error

    def _invocation_completed(self, book: _Book, error: ErrorObject | None) -> None:
        now = self.clock.now()
        started = book.invocation_started if book.invocation_started is not None else now
        details: dict[str, Any] = {
            "StartTimestamp": _to_datetime(started),
            "EndTimestamp": _to_datetime(now),
            "RequestId": book.view.request_id or "",
        }
        if error is not None:
            details["Error"] = _error_payload(error)
        self._append_events(book, [_event("InvocationCompleted", None, _to_datetime(now), details)])
        book.invocation_started = None
        if book.running:
            book.token = None  # the invocation is over; its token dies with it

    def _invocation_failed(self, book: _Book, error: ErrorObject) -> None:
        view = book.view
        self._invocation_completed(book, error)
        if not book.running:
            return
        view.consecutive_failures += 1
        if view.consecutive_failures >= self.max_invocation_attempts:
            self._complete(book, _Completion("FAILED", None, error), self.clock.now())
            return
        due = self.clock.now() + self.invocation_retry_delay
        book.timers[(_INVOKE_RETRY, "")] = _Timer(due, self._next_seq(), _INVOKE_RETRY, "")

    def _append_events(self, book: _Book, events: list[dict[str, Any]]) -> None:
        for event in events:
            event_id = len(book.history) + 1
            book.history.append({"EventType": event.pop("EventType"), "EventId": event_id, **event})

    # ------------------------------------------------------------------ internals: timers

    def _fire_due(self, book: _Book) -> None:
        if not book.running:
            return
        now = self.clock.now()
        while book.running:
            due = [t for t in book.timers.values() if t.due <= now]
            if not due:
                return
            timer = min(due, key=lambda t: (t.due, t.seq))
            del book.timers[(timer.kind, timer.op_id)]
            self._fire(book, timer)

    def _fire(self, book: _Book, timer: _Timer) -> None:
        if timer.kind == _INVOKE_RETRY:
            book.retry_due = True
            return
        op = book.view.operations.get(timer.op_id)
        if op is None:
            return
        when = _to_datetime(timer.due)
        if timer.kind == _WAIT and op.status is _S.STARTED:
            seconds = book.wait_seconds.get(op.id)
            details = {"Duration": seconds} if seconds is not None else {}
            self._service_change(book, op, _S.SUCCEEDED, {}, "WaitSucceeded", details, when)
        elif timer.kind == _RETRY and op.status is _S.PENDING:
            self._service_change(book, op, _S.READY, {}, None, {}, when)
        elif timer.kind in (_CB_TIMEOUT, _CB_HEARTBEAT) and op.status is _S.STARTED:
            if timer.kind == _CB_TIMEOUT:
                error = ErrorObject(
                    error_type="Callback.Timeout", error_message="Callback timed out"
                )
            else:
                error = ErrorObject(
                    error_type="Callback.Heartbeat", error_message="Callback timed out on heartbeat"
                )
            callback_id = op.callback_details.callback_id if op.callback_details else None
            timed_out = CallbackDetails(callback_id=callback_id, error=error)
            self._service_change(
                book,
                op,
                _S.TIMED_OUT,
                {"callback_details": timed_out},
                "CallbackTimedOut",
                {"Error": _error_payload(error)},
                when,
            )
            self._clear_callback_timers(book, op.id)

    def _service_change(
        self,
        book: _Book,
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
            new = _finish(op, status, when, **fields)
        else:
            new = op.model_copy(update={"status": status, **fields})
        book.view.operations[op.id] = new
        book.delta_pending[op.id] = None
        book.updated[op.id] = None
        if event_type is not None:
            self._append_events(book, [_event(event_type, new, when, event_details)])

    def _callback_target(self, callback_id: str) -> tuple[_Book, Operation]:
        target = self._callbacks.get(callback_id)
        if target is None:
            raise ServiceError(
                "ResourceNotFoundException", f"Unknown callback id {callback_id!r}", 404
            )
        book = self._books[target[0]]
        self._fire_due(book)
        op = book.view.operations[target[1]]
        if op.status is _S.TIMED_OUT:
            raise ServiceError(
                "CallbackTimeoutException", f"Callback {callback_id!r} timed out", 400
            )
        if op.status is not _S.STARTED or not book.running:
            raise ServiceError(
                "ResourceNotFoundException",
                f"Callback {callback_id!r} is not waiting (operation {op.status.value}, "
                f"execution {book.view.status})",
                404,
            )
        return book, op

    def _clear_callback_timers(self, book: _Book, op_id: str) -> None:
        book.timers.pop((_CB_TIMEOUT, op_id), None)
        book.timers.pop((_CB_HEARTBEAT, op_id), None)


# ---------------------------------------------------------------------- module helpers


def _parse_update(index: int, raw: Any) -> OperationUpdate:
    if not isinstance(raw, dict):
        raise _invalid(f"Updates[{index}] must be an object")
    try:
        update = OperationUpdate.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise _invalid(
            f"Updates[{index}]: malformed operation update ({loc}: {first['msg']})"
        ) from exc
    where = f"Updates[{index}]"
    if not _ID_RE.fullmatch(update.id):
        raise _invalid(f"{where}: Id must match [a-zA-Z0-9_-]{{1,64}}: {update.id!r}")
    if update.parent_id is not None and not _ID_RE.fullmatch(update.parent_id):
        raise _invalid(f"{where}: ParentId must match [a-zA-Z0-9_-]{{1,64}}")
    if update.name is not None and not _NAME_RE.fullmatch(update.name):
        raise _invalid(f"{where}: Name must be 1-256 printable ASCII characters")
    if update.sub_type is not None and not _SUBTYPE_RE.fullmatch(update.sub_type):
        raise _invalid(f"{where}: SubType must match [a-zA-Z0-9_-]{{1,32}}")
    if update.payload is not None and len(update.payload) > _PAYLOAD_LIMIT:
        raise _invalid(f"{where}: Payload exceeds {_PAYLOAD_LIMIT} characters")
    if raw.get("Error") is not None:
        size = len(json.dumps(raw["Error"]))
        if size > _ERROR_JSON_LIMIT:
            raise _invalid(
                f"{where}: error object is {size} characters as JSON; "
                f"the limit is {_ERROR_JSON_LIMIT}"
            )
    return update


def _check_consistent(where: str, update: OperationUpdate, current: Operation) -> None:
    pairs = (
        ("Type", update.type, current.type),
        ("SubType", update.sub_type or None, current.sub_type),
        ("Name", update.name or None, current.name),
        ("ParentId", update.parent_id or None, current.parent_id),
    )
    for label, sent, stored in pairs:
        if sent != stored:
            raise _invalid(
                f"{where}: Inconsistent operation {label}: "
                f"recorded {stored!r}, update says {sent!r}"
            )


def _check_range(where: str, label: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise _invalid(f"{where}: {label} must be within {low}..{high}, got {value}")


def _no_error(u: OperationUpdate, where: str) -> None:
    if u.error is not None:
        raise _invalid(f"{where}: SUCCEED must not carry an Error")


def _no_payload(u: OperationUpdate, where: str) -> None:
    if u.payload is not None:
        raise _invalid(f"{where}: FAIL must not carry a Payload")


def _has_pending(book: _Book) -> bool:
    """Whether some operation is waiting for the service (so PENDING is a valid answer)."""
    waiting = {
        _T.WAIT: (_S.STARTED,),
        _T.STEP: (_S.PENDING, _S.READY),
        _T.CALLBACK: (_S.STARTED,),
        _T.CHAINED_INVOKE: (_S.STARTED,),
    }
    return any(op.status in waiting.get(op.type, ()) for op in book.view.operations.values())


def _parse_marker(marker: str) -> tuple[str, int, int]:
    parts = marker.split(":")
    try:
        if parts[0] == "ops" and len(parts) == 2:
            kind, seq, offset = "ops", 0, int(parts[1])
        elif parts[0] == "delta" and len(parts) == 3:
            kind, seq, offset = "delta", int(parts[1]), int(parts[2])
        else:
            raise ValueError(marker)
    except ValueError:
        raise _invalid(f"Invalid marker {marker!r}") from None
    if offset < 0:
        raise _invalid(f"Invalid marker {marker!r}")
    return kind, seq, offset


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


def _finish(op: Operation, status: OperationStatus, when: dt.datetime, **fields: Any) -> Operation:
    return op.model_copy(update={"status": status, "end_timestamp": when, **fields})


def _event(
    event_type: str, op: Operation | None, when: dt.datetime, details: dict[str, Any]
) -> dict[str, Any]:
    event: dict[str, Any] = {"EventType": event_type, "EventTimestamp": when}
    if op is not None:
        event["Id"] = op.id
        if op.parent_id:
            event["ParentId"] = op.parent_id
        if op.name:
            event["Name"] = op.name
        if op.sub_type:
            event["SubType"] = op.sub_type
    event[f"{event_type}Details"] = details
    return event


def _payload(value: str | None) -> dict[str, Any]:
    return {} if value is None else {"Payload": value}


def _error_payload(error: ErrorObject | None) -> dict[str, Any]:
    return {} if error is None else {"Payload": error.to_wire()}


def _error_from_exception(exc: BaseException) -> ErrorObject:
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    return ErrorObject(error_type=name, error_message=str(exc))


def _to_datetime(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def _to_millis(value: dt.datetime) -> int:
    return round(value.timestamp() * 1000)


def _identity(value: dt.datetime) -> dt.datetime:
    return value


def _dump(op: Operation, timestamp: Callable[[dt.datetime], Any]) -> dict[str, Any]:
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
