"""``wait_for_condition``: durable polling (PROTOCOL §7.8).

One STEP operation (SubType WaitForCondition) whose attempts are polls: id → lookup →
SUCCEEDED: return the recorded state; FAILED: raise WaitForConditionError; PENDING: suspend
until the next poll is due; otherwise START (async, unless already STARTED), run
``check(state, ctx)`` on the current state and let the wait strategy decide: SUCCEED with the
new state, or RETRY carrying the new state in its payload and suspend for the delay.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adurable._config import WaitForConditionConfig, WaitForConditionDecision, WaitStrategyConfig
from adurable._duration import Duration
from adurable._enums import OperationAction, OperationStatus, OperationSubType, OperationType
from adurable._errors import ExecutionError, InvocationError, ValidationError, WaitForConditionError
from adurable._failures import error_object_from_exception, rebuild_error
from adurable._journal import Identity
from adurable._logger import DurableLogger
from adurable._ops.step import call_user
from adurable._scope import Scope
from adurable._serde import deserialize, serialize

if TYPE_CHECKING:
    from adurable._wire import Operation

#: ``(state, attempts_made) -> WaitForConditionDecision``
WaitStrategy = Callable[[Any, int], WaitForConditionDecision]


@dataclass(frozen=True)
class WaitForConditionCheckContext:
    """Passed to a wait_for_condition check: a logger bound to the poll, the 1-based attempt."""

    logger: DurableLogger
    attempt: int = 1


def create_wait_strategy(config: WaitStrategyConfig) -> WaitStrategy:
    """A wait strategy polling with exponential backoff and jitter.

    Stops as soon as ``config.should_continue_polling(state)`` is false (checked first, so a
    condition met on the last attempt still succeeds). Otherwise, once ``max_attempts`` polls
    were made, raises WaitForConditionError ("wait_for_condition exhausted <N> attempts before
    the condition was met"), which fails the operation; else waits
    ``max(1, ceil(jitter(min(initial_delay * backoff_rate ** (attempt - 1), max_delay))))`` s.
    """
    initial, cap = config.initial_delay.to_seconds(), config.max_delay.to_seconds()

    def base_delay(attempts_made: int) -> float:
        try:
            return min(initial * config.backoff_rate ** (attempts_made - 1), cap)
        except OverflowError:  # astronomically many attempts: the cap applies
            return cap

    def strategy(state: Any, attempts_made: int) -> WaitForConditionDecision:
        if not config.should_continue_polling(state):
            return WaitForConditionDecision.stop_polling()
        if attempts_made >= config.max_attempts:
            raise WaitForConditionError(
                f"wait_for_condition exhausted {config.max_attempts} attempts before the "
                "condition was met"
            )
        jittered = config.jitter_strategy.apply(base_delay(attempts_made))
        return WaitForConditionDecision.continue_waiting(Duration(max(1, math.ceil(jittered))))

    return strategy


def wait_for_condition_operation(
    scope: Scope, check: Callable[..., Any], config: WaitForConditionConfig, name: str | None
) -> Coroutine[Any, Any, Any]:
    """Validate (ValidationError before any id is allocated), allocate the position now and
    return the coroutine that polls."""
    if check is None or not callable(check):
        raise ValidationError(f"wait_for_condition expects a check(state, context), got {check!r}")
    if not isinstance(config, WaitForConditionConfig):
        raise ValidationError(
            f"wait_for_condition expects a WaitForConditionConfig, got {config!r}"
        )
    return _wait_for_condition(scope, scope.next_id(), check, config, name)


async def _wait_for_condition(
    scope: Scope,
    op_id: str,
    check: Callable[..., Any],
    config: WaitForConditionConfig,
    name: str | None,
) -> Any:
    wanted = scope.identity(OperationType.STEP, OperationSubType.WAIT_FOR_CONDITION, name)
    stored = scope.lookup(op_id, wanted)
    flip = scope.before_operation(stored)
    try:
        ids = {"operation_id": op_id, "execution_arn": scope.execution_arn}
        details = stored.step_details if stored else None
        if stored is not None and stored.status is OperationStatus.SUCCEEDED:
            result = details.result if details else None
            return None if result is None else deserialize(config.serdes, result, **ids)
        if stored is not None and stored.status is OperationStatus.FAILED:
            raise rebuild_error(WaitForConditionError, details.error if details else None)
        if stored is not None and stored.status is OperationStatus.PENDING:
            resume = details.next_attempt_timestamp if details else None
            await scope.suspend(
                f"wait_for_condition {name or op_id!r} waits for its next poll",
                resume.timestamp() if resume else None,
            )
        if stored is None or stored.status is not OperationStatus.STARTED:
            start = scope.update(op_id, wanted, action=OperationAction.START)
            await scope.checkpoint(start, sync=False)
        return await _poll(scope, op_id, wanted, check, config, stored)
    finally:
        scope.after_operation(flip)


def _current_state(
    scope: Scope, op_id: str, config: WaitForConditionConfig, stored: Operation | None
) -> Any:
    """The state carried by the last RETRY, else the initial state (round-tripped)."""
    ids = {"operation_id": op_id, "execution_arn": scope.execution_arn}
    details = stored.step_details if stored else None
    if details is not None and details.result:
        return deserialize(config.serdes, details.result, **ids)
    payload = serialize(config.serdes, config.initial_state, **ids)
    return None if payload is None else deserialize(config.serdes, payload, **ids)


async def _poll(
    scope: Scope,
    op_id: str,
    wanted: Identity,
    check: Callable[..., Any],
    config: WaitForConditionConfig,
    stored: Operation | None,
) -> Any:
    ids = {"operation_id": op_id, "execution_arn": scope.execution_arn}
    attempt = (stored.step_details.attempt if stored and stored.step_details else 0) + 1
    logger = scope.logger.with_extra(operationId=op_id, operationName=wanted.name, attempt=attempt)
    try:
        state = _current_state(scope, op_id, config, stored)
        with scope.user_function(op_id, wanted, attempt=attempt):
            new_state = await call_user(check, state, WaitForConditionCheckContext(logger, attempt))
        payload = serialize(config.serdes, new_state, **ids)
        fresh = None if payload is None else deserialize(config.serdes, payload, **ids)
        decision = config.wait_strategy(fresh, attempt)
    except ExecutionError:
        raise
    except InvocationError as exc:
        if exc.is_retryable():
            raise
        return await _fail(scope, op_id, wanted, exc)
    except Exception as exc:
        return await _fail(scope, op_id, wanted, exc)
    if not decision.should_continue:
        succeed = scope.update(op_id, wanted, action=OperationAction.SUCCEED, payload=payload)
        await scope.checkpoint(succeed, sync=True)
        return None if payload is None else deserialize(config.serdes, payload, **ids)
    delay = max(1, decision.delay.to_seconds())
    retry = scope.update(
        op_id,
        wanted,
        action=OperationAction.RETRY,
        payload=payload,
        step_options={"NextAttemptDelaySeconds": int(delay)},
    )
    await scope.checkpoint(retry, sync=True)
    await scope.suspend_for(
        f"wait_for_condition {wanted.name or op_id!r} polls in {delay} s", delay
    )


async def _fail(scope: Scope, op_id: str, wanted: Identity, exc: Exception) -> Any:
    error = error_object_from_exception(exc)
    fail = scope.update(op_id, wanted, action=OperationAction.FAIL, error=error)
    await scope.checkpoint(fail, sync=True)
    raise rebuild_error(WaitForConditionError, error)
