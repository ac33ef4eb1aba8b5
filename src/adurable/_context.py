"""The public façade: ``DurableContext`` and the decorators.

Each method validates its arguments, allocates the operation's position *at call time* (so
concurrently created operations get ids in call order, PROTOCOL §5.6) and returns the
coroutine of one ``_ops`` function. Always ``await`` what these methods return.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from adurable._duration import Duration
from adurable._errors import ValidationError
from adurable._logger import DurableLogger
from adurable._ops.child import run_child
from adurable._ops.step import StepContext, is_async_callable, run_step
from adurable._ops.wait import run_wait
from adurable._scope import Scope

if TYPE_CHECKING:
    import random
    import uuid

    from adurable._batch import BatchResult
    from adurable._config import (
        CallbackConfig,
        ChildConfig,
        InvokeConfig,
        MapConfig,
        ParallelConfig,
        StepConfig,
        WaitForCallbackConfig,
        WaitForConditionConfig,
    )
    from adurable._ops.callback import Callback

# Callbacks, invoke, wait_for_condition, map and parallel are imported on first use: a handler
# that only runs steps never loads them (a shorter cold start).

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class ExecutionContext:
    durable_execution_arn: str


class DurableContext:
    """Handed to a durable handler; every durable primitive is a method returning a coroutine.

    Code outside ``step`` runs again on every invocation (replay) and must be deterministic;
    the results of durable operations are recorded and replayed instead of re-executed.
    """

    __slots__ = ("_scope",)

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    # -- information ----------------------------------------------------------------------------

    @property
    def logger(self) -> DurableLogger:
        """A ``logging.Logger``-like object that stays silent while this context replays
        (unless ``set_logger(..., log_during_replay=True)``)."""
        return self._scope.logger

    def set_logger(self, logger: Any, *, log_during_replay: bool = False) -> None:
        """Send this context's log records to ``logger`` (a Logger or any object with
        debug/info/warning/error/exception methods accepting ``extra=``).

        Child contexts created afterwards inherit the setting. ``log_during_replay=True`` keeps
        the records of code that re-runs on replay (the default drops them, so each line appears
        once per execution): useful to observe re-execution while debugging.
        """
        self._scope.set_logger(logger, log_during_replay=log_during_replay)

    def is_replaying(self) -> bool:
        """True while the code is re-running operations recorded by earlier invocations."""
        return self._scope.replaying

    @property
    def lambda_context(self) -> Any:
        """Lambda's context object for the current invocation."""
        return self._scope.invocation.lambda_context

    @property
    def execution_context(self) -> ExecutionContext:
        return ExecutionContext(self._scope.execution_arn)

    # -- primitives -----------------------------------------------------------------------------

    @overload
    def step(
        self,
        func: Callable[[StepContext], Awaitable[T]],
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> Coroutine[Any, Any, T]: ...

    @overload
    def step(
        self,
        func: Callable[[StepContext], T],
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> Coroutine[Any, Any, T]: ...

    def step(
        self,
        func: Callable[[StepContext], Any],
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Run ``func(step_context)`` once and record its result.

        Async functions are awaited; plain functions run in a worker thread. On replay the
        recorded result is returned without calling ``func``. A failing attempt is retried per
        ``config.retry_strategy`` (the invocation suspends until the retry is due); when the
        strategy gives up, raises ``StepError`` (on this run and on every replay).
        """
        if not callable(func):
            raise ValidationError(f"step expects a callable taking a StepContext, got {func!r}")
        name = name or getattr(func, "_original_name", None)
        return run_step(self._scope, self._scope.next_id(), func, name, config)

    def wait(self, duration: Duration, name: str | None = None) -> Coroutine[Any, Any, None]:
        """Suspend the execution for ``duration`` (at least 1 s) without running compute.

        The invocation ends PENDING and the service re-invokes the handler when the timer
        elapses; on replay a completed wait returns at once.
        """
        if not isinstance(duration, Duration):
            raise ValidationError(
                f"wait expects a Duration, got {duration!r}; use Duration.from_seconds(...)"
            )
        if duration.to_seconds() < 1:
            raise ValidationError("duration must be at least 1 second")
        return run_wait(self._scope, self._scope.next_id(), duration.to_seconds(), name)

    def run_in_child_context(
        self,
        func: Callable[[DurableContext], Awaitable[T]],
        name: str | None = None,
        config: ChildConfig | None = None,
    ) -> Coroutine[Any, Any, T]:
        """Run ``func(child_context)`` as one CONTEXT operation grouping its own operations.

        On replay a completed child returns its recorded result without running (unless its
        result exceeded 256 KiB, in which case the body re-runs and its operations replay).
        Raises ``ChildContextError`` when the body raised.
        """
        if not callable(func):
            raise ValidationError(f"run_in_child_context expects a callable, got {func!r}")
        name = name or getattr(func, "_original_name", None)
        return run_child(self._scope, self._scope.next_id(), func, name, config, DurableContext)

    def create_callback(
        self, name: str | None = None, config: CallbackConfig | None = None
    ) -> Coroutine[Any, Any, Callback[Any]]:
        """Create a callback an external system completes with its ``callback_id``.

        Returns a ``Callback``; ``await callback.result()`` suspends until the callback is
        completed, then returns its result or raises ``CallbackTimeoutError`` /
        ``CallbackExternalError``. Creating never raises for a failed callback.
        """
        from adurable._ops.callback import create_callback_operation

        return create_callback_operation(self._scope, name, config)

    def wait_for_callback(
        self,
        submitter: Callable[..., Any],
        name: str | None = None,
        config: WaitForCallbackConfig | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Create a callback, hand its id to ``submitter(callback_id, ctx)`` (run as a step with
        retries) and wait for the result. Raises ``CallbackTimeoutError``,
        ``CallbackExternalError`` or ``CallbackSubmitterError``."""
        name = name or getattr(submitter, "_original_name", None)
        from adurable._ops.callback import wait_for_callback_operation

        return wait_for_callback_operation(self._scope, submitter, name, config, DurableContext)

    def invoke(
        self,
        function_name: str,
        payload: Any,
        name: str | None = None,
        config: InvokeConfig | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Invoke another Lambda function (qualified name or ARN) and wait for its result.

        The invocation suspends until the target finishes; raises ``InvokeError`` if it
        failed, timed out or was stopped.
        """
        from adurable._ops.invoke import invoke_operation

        return invoke_operation(self._scope, function_name, payload, name, config)

    def wait_for_condition(
        self,
        check: Callable[..., Any],
        config: WaitForConditionConfig,
        name: str | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Poll ``check(state, ctx)`` until ``config.wait_strategy`` stops; between polls the
        invocation suspends. Returns the final state; raises ``WaitForConditionError``."""
        from adurable._ops.condition import wait_for_condition_operation

        return wait_for_condition_operation(self._scope, check, config, name)

    def map(
        self,
        inputs: Iterable[Any],
        func: Callable[..., Awaitable[Any]],
        name: str | None = None,
        config: MapConfig | None = None,
    ) -> Coroutine[Any, Any, BatchResult[Any]]:
        """Run ``func(ctx, item, index, items)`` for every item, concurrently (bounded by
        ``config.max_concurrency``), each in its own child context. Returns a BatchResult in
        index order; item failures do not raise (use ``throw_if_error()``)."""
        name = name or getattr(func, "_original_name", None)
        from adurable._ops.concurrent import map_operation

        return map_operation(self._scope, inputs, func, name, config, DurableContext)

    def parallel(
        self,
        functions: Iterable[Any],
        name: str | None = None,
        config: ParallelConfig | None = None,
    ) -> Coroutine[Any, Any, BatchResult[Any]]:
        """Run each branch ``func(ctx)`` (or ``ParallelBranch``) concurrently in its own child
        context. Returns a BatchResult in branch order."""
        from adurable._ops.concurrent import parallel_operation

        return parallel_operation(self._scope, functions, name, config, DurableContext)

    # -- replay-safe helpers (no checkpoint) ----------------------------------------------------

    def random(self) -> random.Random:
        """A ``random.Random`` seeded from the execution and the current operation position:
        the same numbers on every replay, different ones in every execution."""
        import random

        return random.Random(self._scope.deterministic_seed())

    def uuid4(self) -> uuid.UUID:
        """A version-4 UUID that is the same on every replay of this execution."""
        import uuid

        return uuid.UUID(bytes=self._scope.deterministic_seed()[:16], version=4)


# -- decorators ---------------------------------------------------------------------------------


def durable_step(func: Callable[..., T]) -> Callable[..., Callable[[StepContext], T]]:
    """Turn ``f(step_context, *args, **kwargs)`` into a factory ``f(*args, **kwargs)``.

    ``await context.step(charge(order_id))`` then runs ``charge(step_context, order_id)`` and
    names the step after the function.
    """

    @functools.wraps(func)
    def factory(*args: Any, **kwargs: Any) -> Callable[[StepContext], Any]:
        if is_async_callable(func):

            async def run_async(step_context: StepContext) -> Any:
                return await func(step_context, *args, **kwargs)  # type: ignore[misc]

            bound: Callable[[StepContext], Any] = run_async
        else:
            bound = _bind_sync(func, args, kwargs)
        bound._original_name = func.__name__  # type: ignore[attr-defined]
        return bound

    return factory


def durable_with_child_context(
    func: Callable[..., Awaitable[T]],
) -> Callable[..., Callable[[DurableContext], Awaitable[T]]]:
    """Turn ``f(child_context, *args, **kwargs)`` into a factory for run_in_child_context."""

    @functools.wraps(func)
    def factory(*args: Any, **kwargs: Any) -> Callable[[DurableContext], Awaitable[T]]:
        async def run(child: DurableContext) -> T:
            return await func(child, *args, **kwargs)

        run._original_name = func.__name__  # type: ignore[attr-defined]
        return run

    return factory


def _bind_sync(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Callable[[StepContext], Any]:
    def run_sync(step_context: StepContext) -> Any:
        return func(step_context, *args, **kwargs)

    return run_sync
