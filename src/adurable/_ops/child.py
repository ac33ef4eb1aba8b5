"""``run_in_child_context``: a CONTEXT operation around a child scope (PROTOCOL §7.5).

id → lookup → SUCCEEDED: return the recorded result (or re-run the body when the result was
too large to record, ReplayChildren); FAILED: raise ChildContextError; otherwise START (async)
and run the body in a child scope, then checkpoint SUCCEED or FAIL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adurable._config import ChildConfig
from adurable._errors import (
    ChildContextError,
    ExecutionError,
    InvocationError,
    NonDeterministicExecutionError,
)
from adurable._failures import error_object_from_exception, rebuild_error
from adurable._journal import Identity
from adurable._ops.step import call_user
from adurable._scope import Scope
from adurable._serde import deserialize, serialize
from adurable._wire import (
    ContextOptions,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
)

#: Results longer than this (characters) are not recorded; the child re-runs on replay (§6.5).
REPLAY_CHILDREN_THRESHOLD = 262_144

#: Builds the public context object for a scope (handed down by the façade).
ContextFactory = Callable[[Scope], Any]


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
    wanted = scope.identity(OperationType.CONTEXT, sub_type, name)
    if config.is_virtual:
        if op_id in scope.journal:
            raise NonDeterministicExecutionError(
                f"checkpoint contains a non-virtual child context at id={op_id!r} but current "
                "child context is virtual",
                op_id,
            )
        return await _execute(scope, op_id, wanted, func, config, make_context, record=False)
    stored = scope.lookup(op_id, wanted)
    flip = scope.before_operation(stored)
    try:
        ids = {"operation_id": op_id, "execution_arn": scope.execution_arn}
        details = stored.context_details if stored else None
        if stored is not None and stored.status is OperationStatus.SUCCEEDED:
            if not (details and details.replay_children):
                result = details.result if details else None
                return None if result is None else deserialize(config.serdes, result, **ids)
            return await _execute(scope, op_id, wanted, func, config, make_context, record=False)
        if stored is not None and stored.status is OperationStatus.FAILED:
            raise rebuild_error(ChildContextError, details.error if details else None)
        if stored is None:
            await scope.checkpoint(
                scope.update(op_id, wanted, action=OperationAction.START), sync=False
            )
        return await _execute(scope, op_id, wanted, func, config, make_context, record=True)
    finally:
        scope.after_operation(flip)


async def _execute(
    scope: Scope,
    op_id: str,
    wanted: Identity,
    func: Callable[[Any], Any],
    config: ChildConfig,
    make_context: ContextFactory,
    *,
    record: bool,
) -> Any:
    ids = {"operation_id": op_id, "execution_arn": scope.execution_arn}
    child = scope.child(op_id, virtual=config.is_virtual)
    try:
        value = await call_user(func, make_context(child))
        payload = serialize(config.serdes, value, **ids)
        result = None if payload is None else deserialize(config.serdes, payload, **ids)
    except ExecutionError:
        raise
    except InvocationError as exc:
        if exc.is_retryable():
            raise
        return await _fail(scope, op_id, wanted, exc, record=record)
    except Exception as exc:
        return await _fail(scope, op_id, wanted, exc, record=record)
    if not record:
        return result
    large = payload is not None and len(payload) > REPLAY_CHILDREN_THRESHOLD
    if large:
        payload = config.summary_generator(value) if config.summary_generator else ""
    succeed = scope.update(
        op_id,
        wanted,
        action=OperationAction.SUCCEED,
        payload=payload,
        context_options=ContextOptions(replay_children=large),
    )
    await scope.checkpoint(succeed, sync=True)
    return result


async def _fail(scope: Scope, op_id: str, wanted: Identity, exc: Exception, *, record: bool) -> Any:
    error = error_object_from_exception(exc)
    if record:
        await scope.checkpoint(
            scope.update(op_id, wanted, action=OperationAction.FAIL, error=error), sync=True
        )
    raise rebuild_error(ChildContextError, error)
