"""What a local run hands back: the execution's outcome, its operations and history, and the
stand-in for Lambda's context object.

``ExecutionResult.status`` and the ``status`` of every operation view are members of one
enum, ``InvocationStatus``, so tests compare both with ``is``::

    assert result.status is InvocationStatus.SUCCEEDED
    assert result.get_step("fetch-user").status is InvocationStatus.SUCCEEDED

It is a ``StrEnum``: ``result.status == "SUCCEEDED"`` keeps working too.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterable, Sequence
from typing import Any

from adurable._errors import RetryableSerDesError, SerDesError
from adurable._serde import EXTENDED_TYPES_SERDES
from adurable._wire import (
    CallbackDetails,
    ChainedInvokeDetails,
    ContextDetails,
    ErrorObject,
    ExecutionDetails,
    Operation,
    OperationType,
    StepDetails,
    WaitDetails,
)
from adurable.local._context import LambdaContext  # re-exported: one stand-in for both

__all__ = ("ExecutionResult", "InvocationStatus", "LambdaContext", "OperationView")


class InvocationStatus(enum.StrEnum):
    """Status of an execution (RUNNING and the terminal ones) or of one of its operations.

    One enum for both, so ``result.status`` and ``result.get_step(...).status`` compare with
    ``is``. ``RUNNING`` means the execution still waits on something only the outside world
    delivers (a callback, a chained invoke nobody serves); ``STARTED``/``PENDING``/``READY``
    only occur on operations (PROTOCOL §4.1).
    """

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    RUNNING = "RUNNING"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"
    PENDING = "PENDING"
    STARTED = "STARTED"
    READY = "READY"
    CANCELLED = "CANCELLED"


# ---------------------------------------------------------------------------- operations


class OperationView:
    """Read-only view of one recorded operation, as returned by ``get_step`` and friends.

    ``status`` is an ``InvocationStatus`` member; ``result`` is the decoded payload, ``error``
    the recorded ``ErrorObject``; ``attempt`` and ``callback_id`` are there for steps and
    callbacks. A context lists its ``children`` and finds operations inside it by name
    (``get_step`` etc. search everything nested below it). Any other attribute is read from
    the wire ``Operation`` (``step_details``, ``wait_details``, ``start_timestamp``, ...).
    """

    __slots__ = ("_all", "_op")

    def __init__(self, operation: Operation, operations: Sequence[Operation] = ()) -> None:
        self._op = operation
        #: Every operation of the execution, to resolve children (creation order).
        self._all: tuple[Operation, ...] = tuple(operations)

    # -- identity -------------------------------------------------------------------------------

    @property
    def operation(self) -> Operation:
        """The wire ``Operation`` this view reads."""
        return self._op

    @property
    def id(self) -> str:
        return self._op.id

    @property
    def name(self) -> str | None:
        return self._op.name

    @property
    def type(self) -> OperationType:
        return self._op.type

    @property
    def sub_type(self) -> str | None:
        return self._op.sub_type

    @property
    def parent_id(self) -> str | None:
        return self._op.parent_id

    @property
    def status(self) -> InvocationStatus:
        """The operation's status as an ``InvocationStatus`` member."""
        return InvocationStatus(self._op.status.value)

    # -- outcome --------------------------------------------------------------------------------

    @property
    def raw_result(self) -> str | None:
        """The result payload exactly as recorded (None when there is none)."""
        details = _outcome_details(self._op)
        return details.result if details is not None else None

    @property
    def result(self) -> Any:
        """The recorded result, decoded.

        Tried in order: the SDK's default step format (PROTOCOL §10.2), plain JSON, and
        finally the raw string (a callback answered with non-JSON text, a custom serdes).
        For a step still waiting to retry this is the payload of its last RETRY (the polling
        state of ``wait_for_condition``).
        """
        return decode_payload(self.raw_result)

    @property
    def error(self) -> ErrorObject | None:
        """The recorded error (a failed step, callback, invoke or context), else None."""
        details = _outcome_details(self._op)
        return details.error if details is not None else None

    @property
    def attempt(self) -> int | None:
        """For steps: the number of attempts the service has counted (PROTOCOL §4.7)."""
        details = self._op.step_details
        return details.attempt if details is not None else None

    @property
    def callback_id(self) -> str | None:
        """For callbacks: the id to complete it with."""
        details = self._op.callback_details
        return details.callback_id if details is not None else None

    # -- the wire fields, typed -----------------------------------------------------------------

    @property
    def start_timestamp(self) -> dt.datetime | None:
        return self._op.start_timestamp

    @property
    def end_timestamp(self) -> dt.datetime | None:
        return self._op.end_timestamp

    @property
    def execution_details(self) -> ExecutionDetails | None:
        return self._op.execution_details

    @property
    def context_details(self) -> ContextDetails | None:
        return self._op.context_details

    @property
    def step_details(self) -> StepDetails | None:
        return self._op.step_details

    @property
    def wait_details(self) -> WaitDetails | None:
        return self._op.wait_details

    @property
    def callback_details(self) -> CallbackDetails | None:
        return self._op.callback_details

    @property
    def chained_invoke_details(self) -> ChainedInvokeDetails | None:
        return self._op.chained_invoke_details

    def __getattr__(self, attribute: str) -> Any:
        # Only reached for names this class does not define: fall through to the wire model.
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self._op, attribute)

    # -- nesting --------------------------------------------------------------------------------

    @property
    def children(self) -> list[OperationView]:
        """The operations directly inside this one (a context's), in creation order."""
        return [OperationView(op, self._all) for op in self._all if op.parent_id == self._op.id]

    def descendants(self) -> list[OperationView]:
        """Every operation nested below this one, at any depth, in creation order."""
        return [OperationView(op, self._all) for op in _below(self._op.id, self._all)]

    def get_operation(self, name: str) -> OperationView:
        """The first operation named ``name`` nested below this one (any type)."""
        return self._find(name, None)

    def get_step(self, name: str) -> OperationView:
        """The first STEP named ``name`` nested below this one."""
        return self._find(name, OperationType.STEP)

    def get_wait(self, name: str) -> OperationView:
        """The first WAIT named ``name`` nested below this one."""
        return self._find(name, OperationType.WAIT)

    def get_callback(self, name: str) -> OperationView:
        """The first CALLBACK named ``name`` nested below this one."""
        return self._find(name, OperationType.CALLBACK)

    def get_context(self, name: str) -> OperationView:
        """The first CONTEXT (child context, map, parallel, branch) named ``name`` below this."""
        return self._find(name, OperationType.CONTEXT)

    def get_invoke(self, name: str) -> OperationView:
        """The first CHAINED_INVOKE named ``name`` nested below this one."""
        return self._find(name, OperationType.CHAINED_INVOKE)

    def _find(self, name: str, kind: OperationType | None) -> OperationView:
        where = f" inside {self._op.type.value} {self._op.name or self._op.id!r}"
        return _find(_below(self._op.id, self._all), self._all, name, kind, where)

    # -- dunder ---------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OperationView):
            return self._op == other._op
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._op.id)

    def __repr__(self) -> str:
        op = self._op
        label = f"{op.type.value}({op.sub_type})" if op.sub_type else op.type.value
        name = f" {op.name!r}" if op.name else ""
        return f"<OperationView {label}{name} {op.status.value} id={op.id}>"


def decode_payload(raw: str | None) -> Any:
    """A recorded payload as a value: the SDK's default format, else JSON, else the string."""
    if raw is None:
        return None
    try:
        return EXTENDED_TYPES_SERDES.deserialize(raw)
    except (SerDesError, RetryableSerDesError, ValueError, TypeError):
        pass
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _outcome_details(
    op: Operation,
) -> StepDetails | CallbackDetails | ChainedInvokeDetails | ContextDetails | None:
    """The details structure holding ``Result``/``Error`` for the operation's type (§4.2)."""
    if op.type is OperationType.STEP:
        return op.step_details
    if op.type is OperationType.CALLBACK:
        return op.callback_details
    if op.type is OperationType.CHAINED_INVOKE:
        return op.chained_invoke_details
    if op.type is OperationType.CONTEXT:
        return op.context_details
    return None


def _below(op_id: str, operations: Sequence[Operation]) -> list[Operation]:
    """Operations nested (at any depth) below ``op_id``, in creation order."""
    inside = {op_id}
    found: list[Operation] = []
    # Creation order puts a parent before its children, but be robust to any order.
    remaining = list(operations)
    changed = True
    while changed:
        changed = False
        rest: list[Operation] = []
        for op in remaining:
            if op.parent_id is not None and op.parent_id in inside and op.id not in inside:
                inside.add(op.id)
                found.append(op)
                changed = True
            else:
                rest.append(op)
        remaining = rest
    order = {op.id: i for i, op in enumerate(operations)}
    return sorted(found, key=lambda op: order[op.id])


def _find(
    candidates: Iterable[Operation],
    everything: Sequence[Operation],
    name: str,
    kind: OperationType | None,
    where: str = "",
) -> OperationView:
    candidates = list(candidates)
    for op in candidates:
        if op.name == name and (kind is None or op.type is kind):
            return OperationView(op, everything)
    what = "operation" if kind is None else f"{kind.value} operation"
    known = ", ".join(f"{op.name!r} ({op.type.value})" for op in candidates if op.name is not None)
    raise KeyError(f"no {what} named {name!r}{where}; named operations: {known or 'none'}")


# ---------------------------------------------------------------------------- the execution


class ExecutionResult:
    """Outcome of a local run (``LocalRunner.run`` / ``resume``, the ``durable_runner`` fixture).

    ``status`` is an ``InvocationStatus``: a terminal status, or ``RUNNING`` when the execution
    still waits on something only the outside world can deliver (a callback, a chained invoke).
    ``result`` is ``json.loads`` of the execution's result string (None when absent), ``error``
    the execution's ErrorObject as a wire dict. ``operations`` are the raw wire operations in
    creation order; ``get_step``/``get_wait``/``get_callback``/``get_context``/``get_invoke``
    find one by name and return an ``OperationView``. ``history`` holds the execution's history
    events (PROTOCOL §14) as the service renders them. ``invocation_errors`` are the exceptions
    the handler raised (each a failed invocation the service retried).
    """

    __slots__ = (
        "arn",
        "error",
        "history",
        "invocation_errors",
        "invocations",
        "operations",
        "result",
        "status",
    )

    def __init__(
        self,
        arn: str,
        status: str,
        result: Any,
        error: dict[str, Any] | None,
        operations: Sequence[Operation],
        invocations: int,
        invocation_errors: Sequence[BaseException] = (),
        history: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.arn = arn
        self.status = InvocationStatus(status)
        self.result = result
        self.error = error
        self.operations: list[Operation] = list(operations)
        self.invocations = invocations
        self.invocation_errors: list[BaseException] = list(invocation_errors)
        self.history: list[dict[str, Any]] = list(history)

    # -- operations by name ---------------------------------------------------------------------

    def get_operation(self, name: str) -> OperationView:
        """The first operation named ``name`` (any type, any depth); KeyError listing the
        known names otherwise."""
        return _find(self.operations, self.operations, name, None)

    def get_step(self, name: str) -> OperationView:
        """The first STEP named ``name`` (any depth)."""
        return _find(self.operations, self.operations, name, OperationType.STEP)

    def get_wait(self, name: str) -> OperationView:
        """The first WAIT named ``name`` (any depth)."""
        return _find(self.operations, self.operations, name, OperationType.WAIT)

    def get_callback(self, name: str) -> OperationView:
        """The first CALLBACK named ``name`` (any depth)."""
        return _find(self.operations, self.operations, name, OperationType.CALLBACK)

    def get_context(self, name: str) -> OperationView:
        """The first CONTEXT named ``name``: a child context, map, parallel or branch."""
        return _find(self.operations, self.operations, name, OperationType.CONTEXT)

    def get_invoke(self, name: str) -> OperationView:
        """The first CHAINED_INVOKE named ``name`` (any depth)."""
        return _find(self.operations, self.operations, name, OperationType.CHAINED_INVOKE)

    # -- dunder ---------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExecutionResult):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaced

    def __repr__(self) -> str:
        return (
            f"ExecutionResult(arn={self.arn!r}, status={self.status.value}, "
            f"result={self.result!r}, error={self.error!r}, operations={len(self.operations)}, "
            f"invocations={self.invocations})"
        )
