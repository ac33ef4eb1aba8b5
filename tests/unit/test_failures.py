"""PROTOCOL §4.6.2 (exception -> ErrorObject) and §4.6.3 (ErrorObject -> exception)."""

from __future__ import annotations

import pytest

from adurable._errors import (
    OFFICIAL_MODULE,
    BatchCompletionError,
    CallbackError,
    CallbackExternalError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    DurableOperationError,
    InvokeError,
    NonDeterministicExecutionError,
    RetryableSerDesError,
    SerDesError,
    StepError,
    StepInterruptedError,
    ValidationError,
    WaitForConditionError,
)
from adurable._failures import (
    UNKNOWN_ERROR_MESSAGE,
    error_object_from_exception,
    error_type_name,
    rebuild_error,
)
from adurable._wire import ErrorObject

SERDES_TYPE = f"{OFFICIAL_MODULE}.SerDesError"


class Declined(Exception):
    pass


class Outer:
    class Inner(Exception):
        pass


class MySerDesError(SerDesError):
    pass


class MyStepError(StepError):
    pass


class MyValidationError(ValidationError):
    pass


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


# -- from_exception -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "error_type", "message"),
    [
        (ValueError("bad"), "ValueError", "bad"),
        (KeyError("x"), "KeyError", "'x'"),
        (TypeError(), "TypeError", ""),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError", "division by zero"),
        (Declined("no funds"), f"{__name__}.Declined", "no funds"),
        (Outer.Inner("deep"), f"{__name__}.Outer.Inner", "deep"),
        (ValidationError("bad arg"), f"{OFFICIAL_MODULE}.ValidationError", "bad arg"),
        (MyValidationError("mine"), f"{__name__}.MyValidationError", "mine"),
        (
            NonDeterministicExecutionError("changed", step_id="1"),
            f"{OFFICIAL_MODULE}.NonDeterministicExecutionError",
            "changed",
        ),
        (StepInterruptedError("gone"), f"{OFFICIAL_MODULE}.StepInterruptedError", "gone"),
        (RetryableSerDesError("later"), f"{OFFICIAL_MODULE}.RetryableSerDesError", "later"),
        (Unprintable(), f"{__name__}.Unprintable", "<unprintable Unprintable object>"),
    ],
)
def test_ordinary_exceptions(exc: BaseException, error_type: str, message: str) -> None:
    assert error_object_from_exception(exc) == ErrorObject(
        error_message=message, error_type=error_type
    )


def test_wire_shape_omits_missing_fields() -> None:
    assert error_object_from_exception(KeyError("x")).to_wire() == {
        "ErrorMessage": "'x'",
        "ErrorType": "KeyError",
    }


@pytest.mark.parametrize("cls", [SerDesError, MySerDesError])
def test_serdes_error_type_is_pinned(cls: type[SerDesError]) -> None:
    exc = cls("cannot encode", data="d", stack_trace=["line"])
    assert error_object_from_exception(exc) == ErrorObject(
        error_message="cannot encode",
        error_type=SERDES_TYPE,
        error_data="d",
        stack_trace=["line"],
    )


@pytest.mark.parametrize(
    ("cls", "error_type"),
    [
        (StepError, f"{OFFICIAL_MODULE}.StepError"),
        (ChildContextError, f"{OFFICIAL_MODULE}.ChildContextError"),
        (CallbackTimeoutError, f"{OFFICIAL_MODULE}.CallbackTimeoutError"),
        (DurableOperationError, f"{OFFICIAL_MODULE}.DurableOperationError"),
        (MyStepError, f"{__name__}.MyStepError"),
    ],
)
def test_operation_errors_use_their_class_and_attributes(
    cls: type[DurableOperationError], error_type: str
) -> None:
    exc = cls("failed", "ValueError", "data", ["a", "b"])
    assert error_object_from_exception(exc) == ErrorObject(
        error_message="failed", error_type=error_type, error_data="data", stack_trace=["a", "b"]
    )


def test_operation_error_without_message() -> None:
    assert error_object_from_exception(StepError()).to_wire() == {
        "ErrorType": f"{OFFICIAL_MODULE}.StepError"
    }


def test_error_type_name() -> None:
    assert error_type_name(KeyError) == "KeyError"
    assert error_type_name(StepError) == StepError.wire_type
    assert error_type_name(Declined) == f"{__name__}.Declined"


# -- rebuild ------------------------------------------------------------------------------------


def test_rebuild_wraps_and_chains_a_plain_cause() -> None:
    record = ErrorObject(
        error_message="bad", error_type="ValueError", error_data="d", stack_trace=["t"]
    )
    err = rebuild_error(StepError, record)
    assert type(err) is StepError
    assert (err.message, err.error_type, err.data, err.stack_trace) == (
        "bad",
        "ValueError",
        "d",
        ["t"],
    )
    assert str(err) == "bad"
    cause = err.__cause__
    assert type(cause) is DurableOperationError
    assert (cause.message, cause.error_type, cause.data, cause.stack_trace) == (
        "bad",
        "ValueError",
        "d",
        ["t"],
    )
    assert err.__suppress_context__


@pytest.mark.parametrize(
    "cls",
    [
        StepError,
        InvokeError,
        ChildContextError,
        WaitForConditionError,
        CallbackError,
        CallbackExternalError,
        CallbackTimeoutError,
        CallbackSubmitterError,
        BatchCompletionError,
    ],
)
@pytest.mark.parametrize("spelling", ["official", "adurable"])
def test_rebuild_recognises_sdk_error_types(
    cls: type[DurableOperationError], spelling: str
) -> None:
    error_type = cls.wire_type if spelling == "official" else f"adurable.{cls.__name__}"
    err = rebuild_error(ChildContextError, ErrorObject(error_message="m", error_type=error_type))
    assert type(err) is ChildContextError
    assert err.error_type == error_type
    assert type(err.__cause__) is cls
    assert err.__cause__.message == "m"


@pytest.mark.parametrize("wrapper", [StepError, InvokeError, CallbackTimeoutError])
@pytest.mark.parametrize("spelling", [SERDES_TYPE, "adurable.SerDesError"])
def test_rebuild_serdes_error(wrapper: type[DurableOperationError], spelling: str) -> None:
    record = ErrorObject(error_message="cannot", error_type=spelling, error_data="d")
    err = rebuild_error(wrapper, record)
    assert type(err) is SerDesError
    assert (err.message, err.data, err.error_type) == ("cannot", "d", SERDES_TYPE)


@pytest.mark.parametrize("wrapper", [StepError, ChildContextError, CallbackExternalError])
def test_rebuild_without_error_object(wrapper: type[DurableOperationError]) -> None:
    err = rebuild_error(wrapper, None)
    assert type(err) is wrapper
    assert err.message == UNKNOWN_ERROR_MESSAGE
    assert (
        UNKNOWN_ERROR_MESSAGE == "Unknown error. No ErrorObject exists on the Checkpoint Operation."
    )
    assert err.error_type == wrapper.wire_type


def test_rebuild_of_empty_error_object_defaults_type_to_wrapper() -> None:
    err = rebuild_error(InvokeError, ErrorObject())
    assert type(err) is InvokeError
    assert err.message is None
    assert err.error_type == InvokeError.wire_type
    assert type(err.__cause__) is DurableOperationError


def test_first_run_and_replay_raise_the_same_thing() -> None:
    record = error_object_from_exception(KeyError("x"))
    first, replay = rebuild_error(StepError, record), rebuild_error(StepError, record)
    for err in (first, replay):
        assert isinstance(err, StepError)
        assert (err.message, err.error_type) == ("'x'", "KeyError")


def test_rebuilt_wrapper_escaping_records_wrapper_type() -> None:
    """§15.33: the step FAIL keeps the raw type; the error escaping further names the wrapper."""
    inner = error_object_from_exception(ValueError("v"))
    escaped = error_object_from_exception(rebuild_error(StepError, inner))
    assert escaped == ErrorObject(error_message="v", error_type=StepError.wire_type)
    outer = rebuild_error(ChildContextError, escaped)
    assert type(outer.__cause__) is StepError
    assert outer.error_type == StepError.wire_type
