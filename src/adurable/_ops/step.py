"""``step``: run a function once and record its result (PROTOCOL §7.1).

id → lookup → replay (return / raise / suspend) or run → checkpoint SUCCEED, or RETRY and
suspend, or FAIL and raise StepError.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from inspect import CO_COROUTINE
from types import FunctionType
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from adurable._config import StepConfig, StepSemantics
from adurable._enums import OperationAction, OperationStatus, OperationSubType, OperationType
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
from adurable._scope import Scope
from adurable._serde import deserialize, round_trip

if TYPE_CHECKING:
    pass

_log = logging.getLogger("adurable")
_DEFAULT_CONFIG = StepConfig()


class StepContext:
    """Passed to a step function: a logger bound to the step, and the 1-based attempt number.

    ``logger`` may be given as a zero-argument factory: it is then made on first use (most
    steps never log).
    """

    __slots__ = ("_logger", "attempt")

    def __init__(
        self, logger: DurableLogger | Callable[[], DurableLogger], attempt: int = 1
    ) -> None:
        self._logger = logger
        self.attempt = attempt

    @property
    def logger(self) -> DurableLogger:
        logger = self._logger
        if not isinstance(logger, DurableLogger):
            logger = self._logger = logger()
        return logger

    def __repr__(self) -> str:
        return f"StepContext(attempt={self.attempt})"


def is_async_callable(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    if func.__class__ is FunctionType and func.__code__.co_flags & CO_COROUTINE:
        return True  # the common case, without inspect's unwrapping
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


def call_user(func: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """``func(*args)`` as an awaitable: an async callable's own coroutine (no extra frame on
    the hot path), or a sync one run in a worker thread when awaited (it may block)."""
    if is_async_callable(func):
        return func(*args)  # type: ignore[no-any-return]
    return _call_sync(func, args)


async def _call_sync(func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
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
    config = config or _DEFAULT_CONFIG
    wanted = scope.identity(OperationType.STEP, config.sub_type or OperationSubType.STEP, name)
    stored = scope.lookup(op_id, wanted)
    flip = scope.before_operation(stored)
    try:
        at_most_once = config.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY
        if stored is None:
            previous = 0
        else:
            details = stored.step_details
            previous = details.attempt if details else 0
            match stored.status:
                case OperationStatus.SUCCEEDED:
                    result = details.result if details else None
                    if result is None:
                        return None
                    return deserialize(
                        config.serdes, result, operation_id=op_id, execution_arn=scope.execution_arn
                    )
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
            scope.update(op_id, wanted, OperationAction.START), sync=at_most_once
        )
        if at_most_once:
            current = scope.journal.get(op_id)
            if current is None or current.status is not OperationStatus.STARTED:
                raise InvalidStateError(f"step {op_id} did not read STARTED after its START")
        return await _attempt(scope, op_id, wanted, func, config, previous + 1)
    finally:
        scope.after_operation(flip)


def _step_logger(scope: Scope, op_id: str, name: str | None, attempt: int) -> DurableLogger:
    return scope.logger.with_extra(operationId=op_id, operationName=name, attempt=attempt)


async def _attempt(
    scope: Scope,
    op_id: str,
    wanted: Identity,
    func: Callable[[StepContext], Any],
    config: StepConfig,
    attempt: int,
) -> Any:
    logger = functools.partial(_step_logger, scope, op_id, wanted.name, attempt)
    try:
        if scope.invocation.plugins:
            with scope.user_function(op_id, wanted, attempt=attempt):
                value = await call_user(func, StepContext(logger, attempt))
        else:
            value = await call_user(func, StepContext(logger, attempt))
        payload, result = round_trip(
            config.serdes, value, operation_id=op_id, execution_arn=scope.execution_arn
        )
    except (ExecutionError, RetryableSerDesError):
        raise
    except SerDesError as exc:
        error = error_object_from_exception(exc)
        await scope.checkpoint(
            scope.update(op_id, wanted, OperationAction.FAIL, error=error), sync=True
        )
        raise
    except Exception as exc:
        return await _failed_attempt(scope, op_id, wanted, config, exc, attempt)
    await scope.checkpoint(
        scope.update(op_id, wanted, OperationAction.SUCCEED, payload=payload), sync=True
    )
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
    if config.retry_strategy is not None:
        strategy = config.retry_strategy
    else:
        from adurable._retry import RetryPresets

        strategy = RetryPresets.default()
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
        step_options={"NextAttemptDelaySeconds": int(delay)},
    )
    await scope.checkpoint(retry, sync=True)
    await scope.suspend_for(f"step {wanted.name or op_id!r} retries in {delay} s", delay)
