"""The local service's data: errors, executions, timers and the per-execution record.

``ExecutionView`` is what callers read (``service.execution(arn)``); ``Record`` is the service's
own bookkeeping around it (token, timers, delta, history, per-operation metadata) plus what the
persistence layer needs to write only what changed (``dirty_ops``, ``saved_events``...).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from adurable._wire import Operation

__all__ = (
    "CALLBACK_HEARTBEAT",
    "CALLBACK_TIMEOUT",
    "DEFAULT_EXECUTION_TIMEOUT",
    "EXECUTION_TIMEOUT",
    "INVOCATION_RETRY",
    "STEP_RETRY",
    "TERMINAL",
    "WAIT",
    "ChainedInvokeRequest",
    "ExecutionStatus",
    "ExecutionView",
    "RecordedCall",
    "Record",
    "ServiceError",
    "Timer",
    "invalid",
    "not_found",
)

ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"]
TERMINAL: frozenset[str] = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})

#: ``ExecutionTimeout`` of a function registered without one: the maximum (366 days).
DEFAULT_EXECUTION_TIMEOUT = 31_622_400

# Timer kinds. Each (kind, operation id) has at most one timer.
WAIT = "wait"
STEP_RETRY = "step-retry"
CALLBACK_TIMEOUT = "callback-timeout"
CALLBACK_HEARTBEAT = "callback-heartbeat"
INVOCATION_RETRY = "invocation-retry"
EXECUTION_TIMEOUT = "execution-timeout"

#: How many ``(ClientToken, CheckpointToken)`` answers an execution remembers for replays
#: (a client retries its latest call; older answers are never asked for again).
CLIENT_TOKEN_CACHE = 4


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


def invalid(message: str) -> ServiceError:
    """400 ``InvalidParameterValueException``."""
    return ServiceError("InvalidParameterValueException", message, 400)


def not_found(message: str) -> ServiceError:
    """404 ``ResourceNotFoundException``."""
    return ServiceError("ResourceNotFoundException", message, 404)


@dataclass
class RecordedCall:
    """One API call as the service saw it (faulted and rejected calls included)."""

    api: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    error: ServiceError | None


@dataclass(eq=False)
class ExecutionView:
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
    #: The ``TenantId`` it was started with (Invoke or chained invoke), if any.
    tenant_id: str | None = None
    function_name: str = "fn"
    #: The version it runs (``$LATEST``, ``$LATEST.PUBLISHED`` or a number), as in its ARN.
    qualifier: str = "$LATEST"
    #: Epoch seconds.
    start_time: float = 0.0
    end_time: float | None = None
    #: ``ExecutionTimeout`` in seconds.
    timeout: int = DEFAULT_EXECUTION_TIMEOUT


@dataclass(frozen=True)
class ChainedInvokeRequest:
    """A chained invoke the service resolved to a registered function.

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
class Timer:
    """A service timer: ``kind`` fires for operation ``op_id`` at epoch second ``due``."""

    due: float
    seq: int
    kind: str
    op_id: str


@dataclass(eq=False)
class Record:
    """Service-side bookkeeping of one execution (never shown to callers).

    ``op_meta`` keeps what the service knows about an operation beyond the Operation model:
    a WAIT's ``wait_seconds``, a CALLBACK's ``timeout``/``heartbeat``, a CHAINED_INVOKE's
    resolved target (``function``, ``qualifier``, ``version``, ``payload``, ``tenant``,
    ``child``, ``plain``).
    """

    view: ExecutionView
    execution_op_id: str
    #: Creation order among all executions of the service.
    order: int = 0
    token: str | None = None
    token_seq: int = 0
    invocation_started: float | None = None
    client_tokens: OrderedDict[tuple[str, str], dict[str, Any]] = field(default_factory=OrderedDict)
    delta_pending: dict[str, None] = field(default_factory=dict)
    updated: dict[str, None] = field(default_factory=dict)
    timers: dict[tuple[str, str], Timer] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    delta_seq: int = 0
    delta_snapshot: tuple[int, list[str]] | None = None
    retry_due: bool = False
    #: Forced replay: the token was withdrawn after a checkpoint; re-invoke at once.
    reinvoke: bool = False
    op_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Creation position of every operation (its row's ``position``).
    positions: dict[str, int] = field(default_factory=dict)
    # --- persistence bookkeeping (what changed since the last write)
    dirty: bool = True
    dirty_ops: dict[str, None] = field(default_factory=dict)
    saved_events: int = 0
    timers_dirty: bool = True
    new_callbacks: list[tuple[str, str]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.view.status == "RUNNING"

    @property
    def in_flight(self) -> bool:
        """An invocation was started and has not reported back."""
        return self.invocation_started is not None

    def put_op(self, op: Operation) -> None:
        """Store ``op`` (new or replacing the model with the same id) and mark it dirty."""
        self.positions.setdefault(op.id, len(self.positions))
        self.view.operations[op.id] = op
        self.dirty_ops[op.id] = None
        self.dirty = True

    def set_timer(self, timer: Timer) -> None:
        self.timers[(timer.kind, timer.op_id)] = timer
        self.timers_dirty = True

    def drop_timer(self, kind: str, op_id: str) -> None:
        if self.timers.pop((kind, op_id), None) is not None:
            self.timers_dirty = True

    def clear_timers(self, *, keep: str | None = None) -> None:
        """Disarm every timer (but those of kind ``keep``)."""
        self.timers = {k: t for k, t in self.timers.items() if t.kind == keep}
        self.timers_dirty = True

    def remember_response(self, key: tuple[str, str], response: dict[str, Any]) -> None:
        """Cache a checkpoint answer for ``(ClientToken, CheckpointToken)`` replays."""
        self.client_tokens[key] = response
        while len(self.client_tokens) > CLIENT_TOKEN_CACHE:
            self.client_tokens.popitem(last=False)
        self.dirty = True
