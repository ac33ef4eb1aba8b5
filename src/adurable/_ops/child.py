"""``run_in_child_context``: a CONTEXT operation around a child scope (PROTOCOL §7.5).

id → lookup → SUCCEEDED: return the recorded result (or re-run the body when the result was
too large to record, ReplayChildren); FAILED: raise ChildContextError; otherwise START (async)
and run the body in a child scope, then checkpoint SUCCEED or FAIL.

``resume_context`` and ``execute_context`` are the reusable halves: map/parallel run their
container and their NESTED branches (and, unrecorded, their FLAT branches) through them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from adurable._config import ChildConfig
from adurable._enums import OperationAction, OperationStatus, OperationSubType, OperationType
from adurable._errors import (
    ChildContextError,
    ExecutionError,
    InvocationError,
    NonDeterministicExecutionError,
)
from adurable._failures import error_object_from_exception, rebuild_error
from adurable._fastwire import NO_REPLAY_CHILDREN, REPLAY_CHILDREN, Update
from adurable._journal import Identity
from adurable._ops.step import call_user
from adurable._scope import Scope
from adurable._serde import READ_BACK_SERDES, SerDes, deserialize, round_trip, serialize_within

if TYPE_CHECKING:
    from adurable._wire import Operation

#: Results longer than this (characters) are not recorded; the child re-runs on replay (§6.5).
REPLAY_CHILDREN_THRESHOLD = 262_144

#: Builds the public context object for a scope (handed down by the façade).
ContextFactory = Callable[[Scope], Any]

#: The body of a CONTEXT operation, given the child scope it runs in.
Body = Callable[[Scope], Awaitable[Any]]


class ContextOp(NamedTuple):
    """One CONTEXT operation: its id and identity, and how its result is recorded."""

    op_id: str
    wanted: Identity
    serdes: SerDes[Any] | None = None
    #: Produces the recorded payload when the result is too large (else ``""``).
    summary_generator: Callable[[Any], str] | None = None
    #: Marks a map/parallel item: told the outcome as soon as SUCCEED or FAIL is queued:
    #: ``(True, result)`` or ``(False, ErrorObject)``; the item then frees its concurrency slot
    #: and does not wait for durability (see ``_record_item``).
    on_recorded: Callable[[bool, Any], None] | None = None


async def run_child(
    scope: Scope,
    op_id: str,
    func: Callable[[Any], Any],
    name: str | None,
    config: ChildConfig | None,
    make_context: ContextFactory,
) -> Any:
    config = config or ChildConfig()
    sub_type = config.sub_type or OperationSubType.RUN_IN_CHILD_CONTEXT
    op = ContextOp(
        op_id,
        scope.identity(OperationType.CONTEXT, sub_type, name),
        config.serdes,
        config.summary_generator,
    )

    def body(child: Scope) -> Awaitable[Any]:
        return call_user(func, make_context(child))

    if config.is_virtual:
        ensure_unrecorded(scope, op_id)
        child = scope.child(op_id, virtual=True)
        return await execute_context(scope, op, child, body, record=False)
    stored = scope.lookup(op_id, op.wanted)
    flip = scope.before_operation(stored)
    try:
        return await resume_context(scope, op, stored, lambda: scope.child(op_id), body)
    finally:
        scope.after_operation(flip)


def ensure_unrecorded(scope: Scope, op_id: str) -> None:
    """A virtual context must have no checkpoint of its own (§6.2); else non-determinism."""
    if op_id in scope.journal:
        raise NonDeterministicExecutionError(
            f"checkpoint contains a non-virtual child context at id={op_id!r} but current "
            "child context is virtual",
            op_id,
        )


async def resume_context(
    scope: Scope,
    op: ContextOp,
    stored: Operation | None,
    open_child: Callable[[], Scope],
    body: Body,
    *,
    replay_children: Callable[[str | None], Awaitable[Any]] | None = None,
) -> Any:
    """Steps 2-6 of §7.5 for a recorded CONTEXT op already looked up (and validated) as ``stored``.

    SUCCEEDED: the recorded result; with ReplayChildren, ``replay_children(payload)`` if given,
    else the body re-runs unrecorded. FAILED: raises the rebuilt ChildContextError (SerDesError
    for a serdes failure). Otherwise START (async, only when new) and ``execute_context``.
    """
    details = stored.context_details if stored else None
    if stored is not None and stored.status is OperationStatus.SUCCEEDED:
        payload = details.result if details else None
        if not (details and details.replay_children):
            if payload is None:
                return None
            ids = {"operation_id": op.op_id, "execution_arn": scope.execution_arn}
            return deserialize(op.serdes, payload, **ids)
        if replay_children is not None:
            return await replay_children(payload)
        return await execute_context(scope, op, open_child(), body, record=False)
    if stored is not None and stored.status is OperationStatus.FAILED:
        raise rebuild_error(ChildContextError, details.error if details else None)
    if stored is None:
        await scope.checkpoint(
            scope.update(op.op_id, op.wanted, action=OperationAction.START), sync=False
        )
    return await execute_context(scope, op, open_child(), body, record=True)


async def execute_context(
    scope: Scope, op: ContextOp, child: Scope, body: Body, *, record: bool
) -> Any:
    """Run ``body(child)``, round-trip its value through ``op.serdes`` and, if ``record``,
    checkpoint SUCCEED (sync; ReplayChildren with the summary when too large) or FAIL.

    Returns the round-tripped value. ExecutionError, retryable InvocationError and every
    BaseException (suspension, cancellation) propagate unrecorded; any other exception is
    recorded as FAIL with its own ErrorType and raised as ChildContextError (SerDesError for a
    serdes failure).
    """
    try:
        if scope.invocation.plugins:
            existed = op.op_id in scope.journal
            with scope.user_function(
                op.op_id,
                op.wanted,
                attempt=None if existed else 1,
                is_replay_children=existed and not record,
            ):
                value = await body(child)
        else:
            value = await body(child)
        if op.serdes is READ_BACK_SERDES and record:
            # A map/parallel result under the default codec: it reads back equal (no decode),
            # and a payload over the threshold is never recorded, so stop writing it there.
            payload = serialize_within(
                value,
                REPLAY_CHILDREN_THRESHOLD,
                operation_id=op.op_id,
                execution_arn=scope.execution_arn,
            )
            result, large = value, payload is None
        else:
            payload, result = round_trip(
                op.serdes, value, operation_id=op.op_id, execution_arn=scope.execution_arn
            )
            large = payload is not None and len(payload) > REPLAY_CHILDREN_THRESHOLD
    except ExecutionError:
        raise
    except InvocationError as exc:
        if exc.is_retryable():
            raise
        return await _fail(scope, op, exc, record=record)
    except Exception as exc:
        return await _fail(scope, op, exc, record=record)
    if not record:
        return result
    if large:
        payload = op.summary_generator(value) if op.summary_generator else ""
    succeed = scope.update(
        op.op_id,
        op.wanted,
        OperationAction.SUCCEED,
        payload=payload,
        context_options=REPLAY_CHILDREN if large else NO_REPLAY_CHILDREN,
    )
    if op.on_recorded is None:
        await scope.checkpoint(succeed, sync=True)
    else:
        await _record_item(scope, succeed, op.on_recorded, True, result)
    return result


async def _record_item(
    scope: Scope, update: Update, on_recorded: Callable[[bool, Any], None], ok: bool, value: Any
) -> None:
    """Queue a map/parallel item's SUCCEED or FAIL and report it at once.

    The item does not wait for it to be durable: its outcome counts once queued, and the
    container's own SUCCEED/FAIL, queued after it, is awaited before the operation returns
    (a suspension flushes the queue first). A plugin observing operation ends is told once the
    update is durable, so with plugins the item waits as other operations do.
    """
    durable = scope.checkpoint(update, sync=bool(scope.invocation.plugins))
    on_recorded(ok, value)
    await durable


async def _fail(scope: Scope, op: ContextOp, exc: Exception, *, record: bool) -> Any:
    error = error_object_from_exception(exc)
    if record:
        fail = scope.update(op.op_id, op.wanted, action=OperationAction.FAIL, error=error)
        if op.on_recorded is None:
            await scope.checkpoint(fail, sync=True)
        else:
            await _record_item(scope, fail, op.on_recorded, False, error)
    raise rebuild_error(ChildContextError, error)
