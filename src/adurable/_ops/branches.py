"""One run of one map item / parallel branch, and what came of it (PROTOCOL §7.9.6).

A branch is a CONTEXT operation ``h(M-i)`` under the container ``M`` (NESTED), or an
unrecorded (virtual) context whose operations name ``M`` as their parent (FLAT). Each run
happens inside its own cancel scope with its own suspender and fence: when the branch
suspends, the suspender records when it may resume, fences the run off (nothing more is
recorded) and cancels whatever else the run started; the run then ends with that suspension
as its outcome instead of ending the invocation.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import anyio

from adurable._config import NestingType
from adurable._errors import (
    CheckpointFailed,
    ChildContextError,
    ExecutionError,
    InvocationError,
    OrphanedChildException,
    SuspendExecution,
    TimedSuspendExecution,
)
from adurable._failures import error_object_from_exception
from adurable._ids import branch_id
from adurable._ops.child import ContextOp, ensure_unrecorded, execute_context, resume_context
from adurable._scope import Fence, Scope
from adurable._serde import SerDes
from adurable._wire import ErrorObject, OperationSubType, OperationType

__all__ = ("BatchSpec", "Outcome", "OutcomeKind", "run_branch")


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """What a map/parallel runs: ``call(context, index)`` runs the user code of item ``index``."""

    op_id: str
    count: int
    branch_sub_type: OperationSubType
    name_of: Callable[[int], str | None]
    call: Callable[[Any, int], Awaitable[Any]]
    make_context: Callable[[Scope], Any]
    item_serdes: SerDes[Any] | None
    nesting: NestingType

    @property
    def nested(self) -> bool:
        return self.nesting is NestingType.NESTED


class OutcomeKind(enum.Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SUSPENDED = "SUSPENDED"
    RETRYABLE = "RETRYABLE"  # a retryable InvocationError: counts as failed, re-raised later
    FATAL = "FATAL"  # ExecutionError, checkpoint failure, foreign BaseException
    STOPPED = "STOPPED"  # fenced off: the container completed while it ran


@dataclass(slots=True)
class Outcome:
    """How a run ended. ``resume_at`` (epoch seconds) / ``deadline`` (anyio clock) are set
    for a timed suspension; ``error`` for FAILED; ``exception`` for RETRYABLE and FATAL."""

    kind: OutcomeKind
    value: Any = None
    error: ErrorObject | None = None
    exception: BaseException | None = None
    resume_at: float | None = None
    deadline: float | None = None


class _Run:
    """The suspender, fence and cancel scope of one run of a branch."""

    __slots__ = ("cancel_scope", "deadline", "fence", "resume_at", "suspended")

    def __init__(self, container_fence: Fence | None) -> None:
        self.fence = Fence(container_fence)
        self.cancel_scope = anyio.CancelScope()
        self.suspended = False
        self.resume_at: float | None = None
        self.deadline: float | None = None

    async def suspend(self, message: str, resume_at: float | None) -> NoReturn:
        """The branch cannot progress: remember the earliest resume time, stop the run."""
        if resume_at is not None and (self.resume_at is None or resume_at < self.resume_at):
            self.resume_at = resume_at
            self.deadline = anyio.current_time() + max(0.0, resume_at - time.time())
        self.suspended = True
        self.fence.close()
        self.cancel_scope.cancel()
        if resume_at is None:
            raise SuspendExecution(message)
        raise TimedSuspendExecution(message, resume_at)


async def run_branch(spec: BatchSpec, container: Scope, index: int) -> Outcome:
    """Run item ``index`` once (replaying what is recorded) and classify how it ended.

    Never raises, except a cancellation coming from outside the run (which propagates).
    """
    run = _Run(container.fence)
    try:
        with run.cancel_scope:
            value = await _branch(spec, container, index, run)
    except BaseException as exc:
        return _classify(exc, run)
    if run.suspended:
        return Outcome(OutcomeKind.SUSPENDED, resume_at=run.resume_at, deadline=run.deadline)
    return Outcome(OutcomeKind.SUCCEEDED, value)


async def _branch(spec: BatchSpec, container: Scope, index: int, run: _Run) -> Any:
    bid = branch_id(spec.op_id, index)
    op = ContextOp(
        bid,
        container.identity(OperationType.CONTEXT, spec.branch_sub_type, spec.name_of(index)),
        spec.item_serdes,
    )

    def body(child: Scope) -> Awaitable[Any]:
        return spec.call(spec.make_context(child), index)

    def open_child(replaying: bool) -> Scope:
        return container.branch(
            bid, nested=spec.nested, replaying=replaying, suspender=run.suspend, fence=run.fence
        )

    if not spec.nested:
        ensure_unrecorded(container, bid)
        return await execute_context(
            container, op, open_child(container.replaying), body, record=False
        )
    stored = container.lookup(bid, op.wanted)
    # §6.4: a branch without a checkpoint starts NEW; a recorded one replays.
    replaying = container.replaying and stored is not None
    return await resume_context(container, op, stored, lambda: open_child(replaying), body)


def _classify(exc: BaseException, run: _Run) -> Outcome:
    """§7.9.6, most severe first: fatal, suspended, cancelled from outside (re-raised),
    fenced off, retryable, suspended by the batcher, failed."""
    leaves = list(_leaves(exc))
    cancelled = anyio.get_cancelled_exc_class()
    for leaf in leaves:
        if _is_fatal(leaf, cancelled):
            return Outcome(OutcomeKind.FATAL, exception=leaf)
    if run.suspended:
        return Outcome(OutcomeKind.SUSPENDED, resume_at=run.resume_at, deadline=run.deadline)
    if any(isinstance(leaf, cancelled) for leaf in leaves):
        raise exc
    if any(isinstance(leaf, OrphanedChildException) for leaf in leaves):
        return Outcome(OutcomeKind.STOPPED)
    for leaf in leaves:
        if isinstance(leaf, InvocationError) and leaf.is_retryable():
            return Outcome(OutcomeKind.RETRYABLE, exception=leaf)
    if any(isinstance(leaf, SuspendExecution) for leaf in leaves):
        return Outcome(OutcomeKind.SUSPENDED)  # checkpointing stopped under us
    if isinstance(exc, Exception):
        return Outcome(OutcomeKind.FAILED, error=item_error(exc))
    raise exc  # pragma: no cover - every BaseException leaf is handled above


def item_error(exc: Exception) -> ErrorObject:
    """The ErrorObject of a failed item: the type that escaped the branch (§7.9.6)."""
    if isinstance(exc, ChildContextError):  # the branch's wrapper carries the inner type
        return ErrorObject(
            error_message=exc.message,
            error_type=exc.error_type,
            error_data=exc.data,
            stack_trace=exc.stack_trace,
        )
    return error_object_from_exception(exc)


def _is_fatal(leaf: BaseException, cancelled: type[BaseException]) -> bool:
    if isinstance(leaf, (ExecutionError, CheckpointFailed)):
        return True
    benign = (Exception, SuspendExecution, OrphanedChildException, cancelled)
    return not isinstance(leaf, benign)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
