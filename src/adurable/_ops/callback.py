"""``create_callback`` and ``wait_for_callback`` (PROTOCOL §7.6, §7.7).

create_callback: id → lookup → missing: START (sync) and re-read; any stored status: hand back
the callback id. Errors are deferred to ``Callback.result()``, so the code between creating a
callback and awaiting its result runs identically on every replay.

wait_for_callback: a CONTEXT (SubType WaitForCallback) holding the callback (child position 1)
and a submitter step (child position 2), then the callback's result; failures of the container
are translated back into the callback errors at the call site.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from adurable._config import CallbackConfig, ChildConfig, StepConfig, WaitForCallbackConfig
from adurable._enums import OperationAction, OperationStatus, OperationSubType, OperationType
from adurable._errors import (
    CallbackError,
    CallbackExternalError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    StepError,
    ValidationError,
)
from adurable._logger import DurableLogger
from adurable._ops.child import ContextFactory, run_child
from adurable._ops.step import StepContext, call_user, is_async_callable
from adurable._scope import Scope
from adurable._serde import PASSTHROUGH_SERDES, SerDes, deserialize

if TYPE_CHECKING:
    from adurable._wire import Operation

T = TypeVar("T")
P = ParamSpec("P")

_EXTERNAL_FAILURES = (OperationStatus.FAILED, OperationStatus.CANCELLED, OperationStatus.STOPPED)


@dataclass(frozen=True)
class WaitForCallbackContext:
    """Passed to a wait_for_callback submitter: a logger bound to the submitter step."""

    logger: DurableLogger


class Callback(Generic[T]):
    """A callback an external system completes; ``await callback.result()`` for its outcome.

    Hand ``callback_id`` to the external system, which completes the callback with
    ``SendDurableExecutionCallbackSuccess`` / ``...Failure`` (and keeps it alive with
    ``...Heartbeat``). Created by ``context.create_callback``; do not instantiate it yourself.
    """

    __slots__ = ("_op_id", "_scope", "_serdes", "callback_id")

    def __init__(
        self, callback_id: str, *, operation_id: str, scope: Scope, serdes: SerDes[Any] | None
    ) -> None:
        self.callback_id = callback_id
        self._op_id = operation_id
        self._scope = scope
        self._serdes = serdes

    def __repr__(self) -> str:
        return f"Callback(callback_id={self.callback_id!r})"

    async def result(self) -> T | None:
        """The callback's result, suspending the invocation until the callback is completed.

        Returns the result decoded with the callback's serdes (by default the raw string the
        external system sent) or None when it sent an empty body. Raises CallbackTimeoutError
        when the callback timed out (overall or heartbeat), CallbackExternalError when the
        external system reported failure (or the callback was cancelled/stopped). Replays give
        the same outcome; this consumes no operation position.
        """
        stored = self._scope.journal.get(self._op_id)
        if stored is None:
            raise CallbackError("Callback operation must exist")
        details = stored.callback_details
        if stored.status is OperationStatus.SUCCEEDED:
            if details is None or details.result is None:
                return None
            serdes = self._serdes if self._serdes is not None else PASSTHROUGH_SERDES
            ids = {"operation_id": self._op_id, "execution_arn": self._scope.execution_arn}
            value: T = deserialize(serdes, details.result, **ids)
            return value
        error = details.error if details else None
        message = error.error_message if error else None
        data = error.error_data if error else None
        stack = error.stack_trace if error else None
        if stored.status is OperationStatus.TIMED_OUT:
            raise CallbackTimeoutError(message or "Callback timed out", None, data, stack)
        if stored.status in _EXTERNAL_FAILURES:
            raise CallbackExternalError(message or "Callback failed", None, data, stack)
        await self._scope.suspend(f"callback {stored.name or self._op_id!r} waits for its result")


# -- create_callback ----------------------------------------------------------------------------


def create_callback_operation(
    scope: Scope, name: str | None, config: CallbackConfig | None
) -> Coroutine[Any, Any, Callback[Any]]:
    """Allocate the callback's position now and return the coroutine that creates it.

    The coroutine returns a Callback: on first run after a synchronous START (so the id is
    durable before user code sees it), on replay from the recorded operation whatever its
    status. It raises CallbackError only if the recorded operation has no callback id; failures
    of the callback itself surface from ``Callback.result()``.
    """
    if config is not None and not isinstance(config, CallbackConfig):
        raise ValidationError(f"create_callback expects a CallbackConfig, got {config!r}")
    return _create_callback(scope, scope.next_id(), name, config or CallbackConfig())


async def _create_callback(
    scope: Scope, op_id: str, name: str | None, config: CallbackConfig
) -> Callback[Any]:
    wanted = scope.identity(
        OperationType.CALLBACK, config.sub_type or OperationSubType.CALLBACK, name
    )
    stored = scope.lookup(op_id, wanted)
    flip = scope.before_operation(stored)
    try:
        if stored is None:
            options = {
                "TimeoutSeconds": int(config.timeout.to_seconds()),
                "HeartbeatTimeoutSeconds": int(config.heartbeat_timeout.to_seconds()),
            }
            start = scope.update(
                op_id, wanted, action=OperationAction.START, callback_options=options
            )
            await scope.checkpoint(start, sync=True)
            stored = scope.journal.get(op_id)
        callback_id = _callback_id(op_id, stored)
        return Callback(callback_id, operation_id=op_id, scope=scope, serdes=config.serdes)
    finally:
        scope.after_operation(flip)


def _callback_id(op_id: str, stored: Operation | None) -> str:
    details = stored.callback_details if stored else None
    if details is None or not details.callback_id:
        raise CallbackError(f"Missing callback details on the CALLBACK operation {op_id}")
    return details.callback_id


# -- wait_for_callback --------------------------------------------------------------------------


def wait_for_callback_operation(
    scope: Scope,
    submitter: Callable[..., Any],
    name: str | None,
    config: WaitForCallbackConfig | None,
    make_context: ContextFactory,
) -> Coroutine[Any, Any, Any]:
    """Validate (ValidationError before any id is allocated), allocate the container's position
    now and return the coroutine doing the work.

    The coroutine returns the callback's result (decoded by ``config.serdes``, raw string by
    default). It raises CallbackTimeoutError / CallbackExternalError when the callback timed out
    or failed, CallbackSubmitterError when the submitter step gave up, and the container's
    ChildContextError for anything else. On replay a finished container returns or raises the
    same without running anything; an unfinished one replays its callback and submitter step
    (the submitter runs once) and suspends until the callback is completed.
    """
    if not callable(submitter):
        raise ValidationError(
            f"wait_for_callback expects a submitter(callback_id, context), got {submitter!r}"
        )
    if config is not None and not isinstance(config, WaitForCallbackConfig):
        raise ValidationError(f"wait_for_callback expects a WaitForCallbackConfig, got {config!r}")
    op_id = scope.next_id()
    return _wait_for_callback(
        scope, op_id, submitter, name, config or WaitForCallbackConfig(), make_context
    )


async def _wait_for_callback(
    scope: Scope,
    op_id: str,
    submitter: Callable[..., Any],
    name: str | None,
    config: WaitForCallbackConfig,
    make_context: ContextFactory,
) -> Any:
    async def body(child: Any) -> Any:
        callback = await child.create_callback(_suffixed(name, "create callback id"), config)
        step_config = StepConfig(retry_strategy=config.retry_strategy, serdes=config.serdes)

        async def submit(step: StepContext) -> Any:
            context = WaitForCallbackContext(logger=step.logger)
            return await call_user(submitter, callback.callback_id, context)

        await child.step(submit, _suffixed(name, "submitter"), step_config)
        return await callback.result()

    container = ChildConfig(sub_type=OperationSubType.WAIT_FOR_CALLBACK)
    try:
        return await run_child(scope, op_id, body, name, container, make_context)
    except ChildContextError as exc:
        # §7.7: a callback error inside the container is raised as itself, a failed submitter
        # step as CallbackSubmitterError; anything else stays a ChildContextError.
        cause = exc.__cause__
        if isinstance(cause, CallbackError):
            raise cause from None
        if isinstance(cause, StepError):
            raise CallbackSubmitterError(
                cause.message or "Callback submitter failed", None, cause.data, cause.stack_trace
            ) from cause
        raise


def _suffixed(name: str | None, suffix: str) -> str:
    return f"{name} {suffix}" if name else suffix


def durable_wait_for_callback(
    func: Callable[Concatenate[str, WaitForCallbackContext, P], T],
) -> Callable[P, Callable[[str, WaitForCallbackContext], T]]:
    """Turn ``f(callback_id, context, *args, **kwargs)`` into a submitter factory.

    ``await context.wait_for_callback(notify(email))`` then calls
    ``notify(callback_id, context, email)`` (async functions are awaited, plain ones run in a
    worker thread) and names the operation after the function.
    """

    @functools.wraps(func)
    def factory(*args: P.args, **kwargs: P.kwargs) -> Callable[[str, WaitForCallbackContext], T]:
        target: Callable[..., Any] = func
        if is_async_callable(func):

            async def submit_async(callback_id: str, context: WaitForCallbackContext) -> Any:
                return await target(callback_id, context, *args, **kwargs)

            bound: Callable[[str, WaitForCallbackContext], Any] = submit_async
        else:

            def submit_sync(callback_id: str, context: WaitForCallbackContext) -> Any:
                return target(callback_id, context, *args, **kwargs)

            bound = submit_sync
        bound._original_name = func.__name__  # type: ignore[attr-defined]
        return bound

    return factory
