"""``step``: run a function once and record its result (PROTOCOL §7.1).

id → lookup → replay (return / raise / suspend) or run → checkpoint SUCCEED, or RETRY and
suspend, or FAIL and raise StepError.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from adurable._config import StepConfig, StepSemantics
from adurable._errors import (
    ExecutionError,
    InvalidStateError,
    RetryableSerDesError,
    SerDesError,
    StepError,
    StepInterruptedError,
)
from adurable._failures import error_object_from_exception, rebuild_error
from adurable._journal import Identity
from adurable._logger import DurableLogger
from adurable._retry import RetryPresets
from adurable._scope import Scope
from adurable._serde import deserialize, serialize
from adurable._wire import (
    Operation,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    StepOptions,
)

_log = logging.getLogger("adurable")


@dataclass(frozen=True)
class StepContext:
    """Passed to a step function: a logger bound to the step, and the 1-based attempt number."""

    logger: DurableLogger
    attempt: int = 1


def is_async_callable(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


async def call_user(func: Callable[..., Any], *args: Any) -> Any:
    """Await an async callable; run a sync one in a worker thread (it may block)."""
    if is_async_callable(func):
        return await func(*args)
    # The value travels in a box: trio refuses a worker function that returns a coroutine,
    # and `lambda ctx: some_coroutine(ctx)` is a legitimate way to write an async body.
    box: list[Any] = []
    await anyio.to_thread.run_sync(lambda: box.append(func(*args)))
    result = box[0]
    if inspect.isawaitable(result):
        result = await result
    return result


async def run_step(
    scope: Scope,
    op_id: str,
    func: Callable[[StepContext], Any],
    name: str | None,
    config: StepConfig | None,
) -> Any:
    config = config or StepConfig()
    wanted = scope.identity(OperationType.STEP, config.sub_type or OperationSubType.STEP, name)
    stored = scope.lookup(op_id, wanted)
    flip = scope.before_operation(stored)
    try:
        return await _step(scope, op_id, wanted, func, config, stored)
    finally:
        scope.after_operation(flip)


async def _step(
    scope: Scope,
    op_id: str,
    wanted: Identity,
    func: Callable[[StepContext], Any],
    config: StepConfig,
    stored: Operation | None,
) -> Any:
    ids = {"operation_id": op_id, "execution_arn": scope.execution_arn}
    at_most_once = config.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY
    previous = stored.step_details.attempt if stored and stored.step_details else 0
    if stored is not None:
        details = stored.step_details
        match stored.status:
            case OperationStatus.SUCCEEDED:
                result = details.result if details else None
                return None if result is None else deserialize(config.serdes, result, **ids)
            case OperationStatus.FAILED:
                raise rebuild_error(StepError, details.error if details else None)
            case OperationStatus.PENDING:
                resume = details.next_attempt_timestamp if details else None
                await scope.suspend(
                    f"step {wanted.name or op_id!r} waits for its next attempt",
                    resume.timestamp() if resume else None,
                )
            case OperationStatus.STARTED if at_most_once:
                interrupted = StepInterruptedError(
                    f"Step operation_id={op_id} name={wanted.name} was previously interrupted",
                    op_id,
                )
                return await _failed_attempt(
                    scope, op_id, wanted, config, interrupted, previous + 1
                )
            case OperationStatus.STARTED:
                return await _attempt(scope, op_id, wanted, func, config, previous + 1)
            case _:
                pass  # READY: start the next attempt
    await scope.checkpoint(
        scope.update(op_id, wanted, action=OperationAction.START), sync=at_most_once
    )
    if at_most_once:
        current = scope.journal.get(op_id)
        if current is None or current.status is not OperationStatus.STARTED:
            raise InvalidStateError(f"step {op_id} did not read STARTED after its START")
    return await _attempt(scope, op_id, wanted, func, config, previous + 1)


async def _attempt(
    scope: Scope,
    op_id: str,
    wanted: Identity,
    func: Callable[[StepContext], Any],
    config: StepConfig,
    attempt: int,
) -> Any:
    ids = {"operation_id": op_id, "execution_arn": scope.execution_arn}
    logger = scope.logger.with_extra(operationId=op_id, operationName=wanted.name, attempt=attempt)
    try:
        with scope.user_function(op_id, wanted, attempt=attempt):
            value = await call_user(func, StepContext(logger, attempt))
        payload = serialize(config.serdes, value, **ids)
        result = None if payload is None else deserialize(config.serdes, payload, **ids)
    except (ExecutionError, RetryableSerDesError):
        raise
    except SerDesError as exc:
        error = error_object_from_exception(exc)
        await scope.checkpoint(
            scope.update(op_id, wanted, action=OperationAction.FAIL, error=error), sync=True
        )
        raise
    except Exception as exc:
        return await _failed_attempt(scope, op_id, wanted, config, exc, attempt)
    update = scope.update(op_id, wanted, action=OperationAction.SUCCEED, payload=payload)
    await scope.checkpoint(update, sync=True)
    return result


async def _failed_attempt(
    scope: Scope,
    op_id: str,
    wanted: Identity,
    config: StepConfig,
    exc: Exception,
    attempts_made: int,
) -> Any:
    error = error_object_from_exception(exc)
    strategy = config.retry_strategy or RetryPresets.default()
    decision = strategy(exc, attempts_made)
    if not decision.should_retry:
        await scope.checkpoint(
            scope.update(op_id, wanted, action=OperationAction.FAIL, error=error), sync=True
        )
        raise rebuild_error(StepError, error)
    delay = decision.delay.to_seconds()
    if delay < 1:
        _log.warning("retry delay %ss of step %s is below 1 s; using 1 s", delay, op_id)
        delay = 1
    retry = scope.update(
        op_id,
        wanted,
        action=OperationAction.RETRY,
        error=error,
        step_options=StepOptions(next_attempt_delay_seconds=delay),
    )
    await scope.checkpoint(retry, sync=True)
    await scope.suspend_for(f"step {wanted.name or op_id!r} retries in {delay} s", delay)
