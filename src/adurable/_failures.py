"""Exceptions to ErrorObjects and back (PROTOCOL §4.6.2, §4.6.3).

An operation that fails records an ErrorObject; whenever that operation is met again (later in
the same run or on replay) the SDK raises a typed wrapper rebuilt from the record, never the
original exception object. So the first run and every replay raise the same thing.

ErrorType strings are persisted and read back by other SDKs: user errors are written as Python
names them (builtins bare: ``ValueError``; others ``module.QualName``), adurable's own errors
with the official SDK's names (``aws_durable_execution_sdk_python.exceptions.StepError``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adurable._errors import (
    DurableExecutionsError,
    DurableOperationError,
    SerDesError,
    error_class_for,
    is_serdes_error_type,
)

if TYPE_CHECKING:
    from adurable._wire import ErrorObject

__all__ = (
    "UNKNOWN_ERROR_MESSAGE",
    "error_object_from_exception",
    "error_type_name",
    "rebuild_error",
)

UNKNOWN_ERROR_MESSAGE = "Unknown error. No ErrorObject exists on the Checkpoint Operation."


def error_type_name(cls: type[BaseException]) -> str:
    """The ErrorType string written for exceptions of class ``cls``.

    adurable's own classes (those declaring a ``wire_type``) use it; builtins are bare
    (``KeyError``); everything else, including user subclasses of adurable errors, is
    ``"<module>.<qualname>"``.
    """
    if issubclass(cls, DurableExecutionsError) and "wire_type" in vars(cls):
        return cls.wire_type
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _message_of(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder if the exception's ``__str__`` itself fails."""
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__} object>"


def error_object_from_exception(exc: BaseException) -> ErrorObject:
    """The ErrorObject recorded when ``exc`` fails an operation or the execution (§4.6.2).

    SerDesError (and subclasses) is written with the official SerDesError ErrorType; a
    DurableOperationError contributes its ``message``/``data``/``stack_trace``; any other
    exception gives ``ErrorMessage=str(exc)`` with no data or stack trace. Never raises.
    """
    from adurable._wire import ErrorObject  # failures only: keeps pydantic off the import path

    if isinstance(exc, SerDesError):
        return ErrorObject(
            error_message=exc.message,
            error_type=SerDesError.wire_type,
            error_data=exc.data,
            stack_trace=exc.stack_trace,
        )
    error_type = error_type_name(type(exc))
    if isinstance(exc, DurableOperationError):
        return ErrorObject(
            error_message=exc.message,
            error_type=error_type,
            error_data=exc.data,
            stack_trace=exc.stack_trace,
        )
    return ErrorObject(error_message=_message_of(exc), error_type=error_type)


def _rebuild_cause(error: ErrorObject) -> DurableOperationError:
    """The ``__cause__`` of a rebuilt wrapper: adurable's class for a recognised ErrorType."""
    cls = error_class_for(error.error_type) or DurableOperationError
    return cls(error.error_message, error.error_type, error.error_data, error.stack_trace)


def rebuild_error(
    wrapper: type[DurableOperationError], error: ErrorObject | None
) -> DurableOperationError | SerDesError:
    """The exception to raise for an operation recorded as failed with ``error`` (§4.6.3).

    Returns (does not raise) ``wrapper`` carrying the record's message, ErrorType (as
    ``error_type``), data and stack trace, with ``__cause__`` a DurableOperationError rebuilt from
    the same fields (or the adurable class the ErrorType names, e.g. StepError). A record with the
    SerDesError ErrorType gives a SerDesError instead; a missing record gives ``wrapper`` with
    the message "Unknown error. No ErrorObject exists on the Checkpoint Operation.".
    """
    if error is None:
        return wrapper(UNKNOWN_ERROR_MESSAGE)
    if is_serdes_error_type(error.error_type):
        return SerDesError(
            error.error_message or "", data=error.error_data, stack_trace=error.stack_trace
        )
    rebuilt = wrapper(error.error_message, error.error_type, error.error_data, error.stack_trace)
    rebuilt.__cause__ = _rebuild_cause(error)
    return rebuilt
