"""Every exception adurable raises, at the bottom of the import graph (stdlib only).

    Exception
    └── DurableExecutionsError
        ├── PluginLoadError
        ├── ValidationError                 bad arguments, raised before anything is checkpointed
        ├── InvalidStateError               an internal invariant broke (our bug, please report)
        ├── SerDesError                     a value could not be (de)serialized; permanent
        ├── DurableOperationError           a durable operation failed (message, error_type, ...)
        │   ├── StepError
        │   ├── InvokeError
        │   ├── ChildContextError
        │   ├── WaitForConditionError
        │   ├── CallbackError
        │   │   ├── CallbackExternalError
        │   │   ├── CallbackTimeoutError
        │   │   └── CallbackSubmitterError
        │   └── BatchCompletionError
        └── UnrecoverableError
            ├── ExecutionError              → the execution FAILS, no retry
            │   └── NonDeterministicExecutionError
            └── InvocationError             → raised out of the Lambda handler so Lambda retries
                ├── BotoClientError         a service call failed (retryable or not, PROTOCOL §3.6)
                │   ├── CheckpointError
                │   └── GetExecutionStateError
                ├── StepInterruptedError
                └── RetryableSerDesError
    BaseException
    ├── SuspendExecution                    the invocation ends PENDING; never catch it
    │   └── TimedSuspendExecution
    └── CheckpointFailed                    the checkpoint task failed; carries the source error

The ErrorType strings adurable *writes* for its own classes are those of the official SDK
(`aws_durable_execution_sdk_python.exceptions.StepError`, ...), so executions can move between
SDKs; both those strings and adurable's own module paths are recognised when reading.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

OFFICIAL_MODULE = "aws_durable_execution_sdk_python.exceptions"


class TerminationReason(enum.Enum):
    UNHANDLED_ERROR = "UNHANDLED_ERROR"
    INVOCATION_ERROR = "INVOCATION_ERROR"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    CHECKPOINT_FAILED = "CHECKPOINT_FAILED"
    NON_DETERMINISTIC_EXECUTION = "NON_DETERMINISTIC_EXECUTION"
    STEP_INTERRUPTED = "STEP_INTERRUPTED"
    SERIALIZATION_ERROR = "SERIALIZATION_ERROR"


class DurableExecutionsError(Exception):
    """Base class of every error adurable raises on purpose."""

    #: ErrorType written on the wire for this class (official SDK spelling).
    wire_type: ClassVar[str] = f"{OFFICIAL_MODULE}.DurableExecutionsError"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("adurable"):
            cls.wire_type = f"{OFFICIAL_MODULE}.{cls.__name__}"


class PluginLoadError(DurableExecutionsError):
    """A plugin factory could not be loaded or registered."""


class ValidationError(DurableExecutionsError):
    """An argument or config value is invalid. Raised before any checkpoint is written."""


class InvalidStateError(DurableExecutionsError):
    """An internal invariant was violated. This is a bug in adurable; please report it."""


class OrderedLockError(DurableExecutionsError):
    """Kept for API parity with the official SDK; adurable never raises it."""


class SerDesError(DurableExecutionsError):
    """A value could not be serialized or deserialized. Permanent: the operation fails."""

    def __init__(
        self,
        message: str,
        *,
        data: str | None = None,
        stack_trace: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = self.wire_type
        self.data = data
        self.stack_trace = stack_trace


class DurableOperationError(DurableExecutionsError):
    """A durable operation failed; rebuilt identically on the first run and on replay.

    ``error_type`` is the type of the error that failed the operation (``"ValueError"``,
    ``"myapp.errors.Declined"``), ``message``/``data``/``stack_trace`` come from its ErrorObject.
    """

    def __init__(
        self,
        message: str | None = None,
        error_type: str | None = None,
        data: str | None = None,
        stack_trace: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type if error_type is not None else self.wire_type
        self.data = data
        self.stack_trace = stack_trace

    def __str__(self) -> str:
        return self.message or ""


class StepError(DurableOperationError):
    """A step failed and its retry strategy gave up."""


class InvokeError(DurableOperationError):
    """A chained invoke failed, timed out or was stopped."""


class ChildContextError(DurableOperationError):
    """A child context (or a map/parallel item) failed."""


class WaitForConditionError(DurableOperationError):
    """A wait_for_condition check failed or exhausted its attempts."""


class CallbackError(DurableOperationError):
    """A callback could not deliver a result."""


class CallbackExternalError(CallbackError):
    """The external system reported failure (or the callback was cancelled/stopped)."""


class CallbackTimeoutError(CallbackError):
    """The callback timed out (overall timeout or heartbeat timeout)."""


class CallbackSubmitterError(CallbackError):
    """The submitter of wait_for_callback failed after its retries."""


class BatchCompletionError(DurableOperationError):
    """A map/parallel completed with CUSTOM_COMPLETION_FAILED (raised by throw_if_error)."""

    def __init__(
        self,
        message: str | None = None,
        error_type: str | None = None,
        data: str | None = None,
        stack_trace: list[str] | None = None,
        completion_reason: Any = None,
    ) -> None:
        super().__init__(message, error_type, data, stack_trace)
        self.completion_reason = completion_reason


class UnrecoverableError(DurableExecutionsError):
    """An error that ends the invocation; see ExecutionError and InvocationError."""

    termination_reason: TerminationReason = TerminationReason.UNHANDLED_ERROR

    def __init__(self, message: str, termination_reason: TerminationReason | None = None) -> None:
        super().__init__(message)
        self.message = message
        if termination_reason is not None:
            self.termination_reason = termination_reason


class ExecutionError(UnrecoverableError):
    """The execution cannot continue: the handler answers FAILED and nothing is retried."""

    termination_reason = TerminationReason.EXECUTION_ERROR


class NonDeterministicExecutionError(ExecutionError):
    """This run asked for a different operation than the one recorded at the same id.

    The code changed between invocations (or depends on something non-deterministic outside a
    step). The execution fails; it cannot be replayed by this code.
    """

    termination_reason = TerminationReason.NON_DETERMINISTIC_EXECUTION

    def __init__(self, message: str, step_id: str | None = None) -> None:
        super().__init__(message)
        self.step_id = step_id


class InvocationError(UnrecoverableError):
    """This invocation cannot continue but a new one may: raised out of the Lambda handler."""

    termination_reason = TerminationReason.INVOCATION_ERROR

    def is_retryable(self) -> bool:
        return True


class BotoClientError(InvocationError):
    """A call to the durable-execution service failed.

    ``retryable`` follows PROTOCOL §3.6: throttling, 5xx, network errors and a stale checkpoint
    token are retryable (the invocation is retried); other 4xx and KMS errors are not (the
    execution fails). ``code``/``status`` are the service's error code and HTTP status.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, TerminationReason.CHECKPOINT_FAILED)
        self.retryable = retryable
        self.code = code
        self.status = status

    def is_retryable(self) -> bool:
        return self.retryable

    @property
    def is_stale_token(self) -> bool:
        # botocore's str() prefixes "An error occurred (...) when calling ...: ", so look for
        # the service's message anywhere in ours.
        return (
            self.code == "InvalidParameterValueException"
            and "Invalid checkpoint token" in self.message
        )


class CheckpointError(BotoClientError):
    """CheckpointDurableExecution failed."""


class GetExecutionStateError(BotoClientError):
    """GetDurableExecutionState failed."""


class StepInterruptedError(InvocationError):
    """An at-most-once step was started by an earlier invocation that did not finish it."""

    termination_reason = TerminationReason.STEP_INTERRUPTED

    def __init__(self, message: str, step_id: str | None = None) -> None:
        super().__init__(message)
        self.step_id = step_id


class RetryableSerDesError(InvocationError):
    """A transient (de)serialization failure: nothing is checkpointed, the invocation retries."""

    termination_reason = TerminationReason.SERIALIZATION_ERROR


# -- control flow (BaseException: `except Exception` in user code cannot swallow these) --------


class SuspendExecution(BaseException):
    """The invocation is suspending and will answer PENDING.

    Raised by durable operations that must wait for the service (timers, retries, callbacks).
    Do not catch it: catch ``Exception`` (or specific errors) in handlers, never bare
    ``except:`` / ``except BaseException:``. Even if caught, the invocation's cancel scope is
    already cancelled, so the next ``await`` ends the handler anyway.
    """


class TimedSuspendExecution(SuspendExecution):
    """Suspension with a known resume time (epoch seconds)."""

    def __init__(self, message: str, scheduled_timestamp: float) -> None:
        super().__init__(message)
        self.scheduled_timestamp = scheduled_timestamp


class CheckpointFailed(BaseException):
    """The checkpoint task failed; every waiter and later checkpoint gets this.

    ``source`` is the underlying error (usually a BotoClientError). The entry point classifies
    it per PROTOCOL §2.5.3.
    """

    def __init__(self, source: BaseException) -> None:
        super().__init__(f"checkpointing failed: {source}")
        self.source = source


class OrphanedChildException(BaseException):
    """An operation tried to checkpoint under a parent context that already completed."""

    def __init__(self, message: str, operation_id: str) -> None:
        super().__init__(message)
        self.operation_id = operation_id


#: Classes rebuilt from a stored ErrorType string (PROTOCOL §4.6.3), keyed by every spelling.
OPERATION_ERROR_CLASSES: tuple[type[DurableOperationError], ...] = (
    StepError,
    InvokeError,
    ChildContextError,
    WaitForConditionError,
    CallbackError,
    CallbackExternalError,
    CallbackTimeoutError,
    CallbackSubmitterError,
    BatchCompletionError,
)


def error_class_for(error_type: str | None) -> type[DurableOperationError] | None:
    """The adurable class for an official or adurable fully-qualified ErrorType, if any."""
    if not error_type:
        return None
    for cls in OPERATION_ERROR_CLASSES:
        if error_type in (cls.wire_type, f"adurable.{cls.__name__}"):
            return cls
    return None


def is_serdes_error_type(error_type: str | None) -> bool:
    return error_type in (SerDesError.wire_type, "adurable.SerDesError")
