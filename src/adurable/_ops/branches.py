"""One run of one map item / parallel branch, and what came of it (PROTOCOL §7.9.6).

A branch is a CONTEXT operation ``h(M-i)`` under the container ``M`` (NESTED), or an
unrecorded (virtual) context whose operations name ``M`` as their parent (FLAT). Each run
happens inside its own cancel scope with its own suspender and fence: when the branch
suspends, the suspender records when it may resume, fences the run off (nothing more is
recorded) and cancels whatever else the run started; the run then ends with that suspension
as its outcome instead of ending the invocation.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from adurable._config import NestingType
from adurable._enums import OperationSubType, OperationType
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

if TYPE_CHECKING:
    from adurable._wire import ErrorObject

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
    """One run of one branch: its id, scope factory and body, and its suspender, fence and
    cancel scope."""

    __slots__ = (
        "bid",
        "cancel_scope",
        "container",
        "deadline",
        "fence",
        "index",
        "replaying",
        "resume_at",
        "spec",
        "suspended",
    )

    def __init__(
        self,
        spec: BatchSpec,
        container: Scope,
        index: int,
        cancel_scope: anyio.CancelScope | None = None,
    ) -> None:
        self.spec = spec
        self.container = container
        self.index = index
        self.bid = branch_id(spec.op_id, index)
        self.replaying = container.replaying
        self.fence = Fence(container.fence)
        self.cancel_scope = cancel_scope or container.invocation.cancel_scope()
        self.suspended = False
        self.resume_at: float | None = None
        self.deadline: float | None = None

    def open_child(self) -> Scope:
        return self.container.branch(
            self.bid,
            nested=self.spec.nested,
            replaying=self.replaying,
            suspender=self.suspend,
            fence=self.fence,
        )

    def body(self, child: Scope) -> Awaitable[Any]:
        return self.spec.call(self.spec.make_context(child), self.index)

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


#: Stands in for the run's own cancel scope when the caller entered one (reusable).
_CALLER_SCOPE: contextlib.nullcontext[None] = contextlib.nullcontext()


async def run_branch(
    spec: BatchSpec,
    container: Scope,
    index: int,
    on_recorded: Callable[[int, bool, Any], None] | None = None,
    cancel_scope: anyio.CancelScope | None = None,
) -> Outcome:
    """Run item ``index`` once (replaying what is recorded) and classify how it ended.

    ``cancel_scope``: a scope the caller has entered around this run alone (a worker's, reused
    across the runs it makes until one suspends); else the run enters a fresh one. Suspending
    cancels it, so whatever the run started stops.

    ``on_recorded(index, succeeded, value_or_error)`` is called when a NESTED branch's SUCCEED
    or FAIL is queued, before it is durable (see ``child._record_item``). Never raises, except
    a cancellation coming from outside the run (which propagates).
    """
    run = _Run(spec, container, index, cancel_scope)
    own_scope = run.cancel_scope if cancel_scope is None else _CALLER_SCOPE
    try:
        with own_scope:
            wanted = container.identity(
                OperationType.CONTEXT, spec.branch_sub_type, spec.name_of(index)
            )
            recorded = None if on_recorded is None else functools.partial(on_recorded, index)
            op = ContextOp(run.bid, wanted, spec.item_serdes, None, recorded)
            if spec.nested:
                stored = container.lookup(run.bid, wanted)
                # §6.4: a branch without a checkpoint starts NEW; a recorded one replays.
                run.replaying = container.replaying and stored is not None
                value = await resume_context(container, op, stored, run.open_child, run.body)
            else:
                ensure_unrecorded(container, run.bid)
                value = await execute_context(
                    container, op, run.open_child(), run.body, record=False
                )
    except BaseException as exc:
        return _classify(exc, run)
    if run.suspended:
        return Outcome(OutcomeKind.SUSPENDED, resume_at=run.resume_at, deadline=run.deadline)
    return Outcome(OutcomeKind.SUCCEEDED, value)


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
        from adurable._wire import ErrorObject

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
