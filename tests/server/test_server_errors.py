"""Bad input gets the error code, HTTP status and body the real API uses, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.server.conftest import Threaded

pytestmark = pytest.mark.anyio

ACCOUNT_ARN = "arn:aws:lambda:us-east-1:123456789012:function"
UNKNOWN_ARN = f"{ACCOUNT_ARN}:greet:$LATEST/durable-execution/nobody/0000-1111"
MIB = 1024 * 1024
EXISTING = "<the existing execution>"


def snapshot(engine: Any) -> dict[str, Any]:
    """Everything observable about the engine's executions."""
    state: dict[str, Any] = {}
    for function in sorted(engine.functions()):
        listed = engine.list_executions(function)["DurableExecutions"]
        for row in listed:
            arn = row["DurableExecutionArn"]
            state[arn] = (engine.get_execution(arn), engine.get_history(arn)["Events"])
    return state


async def expect_error(
    call: Callable[..., Awaitable[Any]], code: str, status: int, **kwargs: Any
) -> ClientError:
    with pytest.raises(ClientError) as info:
        await call(**kwargs)
    error = info.value.response
    assert error["Error"]["Code"] == code, error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error["Error"]["Message"]
    return info.value


@pytest.fixture
async def existing(boto3_lambda: Threaded) -> str:
    """One finished execution, so that 'unchanged' compares something."""
    response = await boto3_lambda.invoke(FunctionName="greet:$LATEST", Payload=b"{}")
    return str(response["DurableExecutionArn"])


CASES: list[tuple[str, str, int, dict[str, Any]]] = [
    # Invoke
    (
        "invoke",
        "ResourceNotFoundException",
        404,
        {"FunctionName": "nope:$LATEST", "Payload": b"{}"},
    ),
    ("invoke", "InvalidParameterValueException", 400, {"FunctionName": "greet", "Payload": b"{}"}),
    (
        "invoke",
        "InvalidParameterValueException",
        400,
        {"FunctionName": "greet:1", "Qualifier": "$LATEST", "Payload": b"{}"},
    ),
    (
        "invoke",
        "ResourceNotFoundException",
        404,
        {"FunctionName": "arn:aws:lambda:us-east-1:999999999999:function:greet:$LATEST"},
    ),
    (
        "invoke",
        "InvalidParameterValueException",
        400,
        {"FunctionName": "bad name!", "Payload": b"{}"},
    ),
    (
        "invoke",
        "InvalidRequestContentException",
        400,
        {"FunctionName": "greet:$LATEST", "Payload": b"{not json"},
    ),
    (
        "invoke",
        "RequestTooLargeException",
        413,
        {"FunctionName": "greet:$LATEST", "Payload": b'"' + b"x" * (6 * MIB) + b'"'},
    ),
    (
        "invoke",
        "RequestTooLargeException",
        413,
        {
            "FunctionName": "greet:$LATEST",
            "InvocationType": "Event",
            "Payload": b'"' + b"x" * MIB + b'"',
        },
    ),
    (
        "invoke",
        "InvalidParameterValueException",
        400,
        {"FunctionName": "greet:$LATEST", "DurableExecutionName": "not valid!", "Payload": b"{}"},
    ),
    # Callbacks
    (
        "send_durable_execution_callback_success",
        "InvalidParameterValueException",
        400,
        {"CallbackId": "not a callback id!", "Result": b"1"},
    ),
    (
        "send_durable_execution_callback_success",
        "ResourceNotFoundException",
        404,
        {"CallbackId": "QUFBQUFBQUFBQUFB", "Result": b"1"},
    ),
    (
        "send_durable_execution_callback_success",
        "InvalidParameterValueException",
        400,
        {"CallbackId": "QUFBQUFBQUFBQUFB", "Result": b"x" * (MIB + 1)},
    ),
    (
        "send_durable_execution_callback_failure",
        "ResourceNotFoundException",
        404,
        {"CallbackId": "QUFBQUFBQUFBQUFB", "Error": {"ErrorMessage": "x"}},
    ),
    (
        "send_durable_execution_callback_heartbeat",
        "InvalidParameterValueException",
        400,
        {"CallbackId": "%%%"},
    ),
    # Executions
    (
        "get_durable_execution",
        "InvalidParameterValueException",
        400,
        {"DurableExecutionArn": "arn:not-an-execution"},
    ),
    (
        "get_durable_execution",
        "ResourceNotFoundException",
        404,
        {"DurableExecutionArn": UNKNOWN_ARN},
    ),
    (
        "get_durable_execution_history",
        "ResourceNotFoundException",
        404,
        {"DurableExecutionArn": UNKNOWN_ARN},
    ),
    (
        "get_durable_execution_history",
        "InvalidParameterValueException",
        400,
        {"DurableExecutionArn": EXISTING, "MaxItems": 5000},
    ),
    (
        "stop_durable_execution",
        "ResourceNotFoundException",
        404,
        {"DurableExecutionArn": UNKNOWN_ARN, "Error": {"ErrorMessage": "x"}},
    ),
    (
        "list_durable_executions_by_function",
        "ResourceNotFoundException",
        404,
        {"FunctionName": "nope"},
    ),
    (
        "list_durable_executions_by_function",
        "InvalidParameterValueException",
        400,
        {"FunctionName": "greet", "Statuses": ["SLEEPING"]},
    ),
    (
        "get_durable_execution_state",
        "InvalidParameterValueException",
        400,
        {"DurableExecutionArn": "arn:bad", "CheckpointToken": "AAAA"},
    ),
]


@pytest.mark.parametrize(
    ("method", "code", "status", "kwargs"),
    CASES,
    ids=[f"{method}-{code}-{i}" for i, (method, code, _, _) in enumerate(CASES)],
)
async def test_bad_input_is_rejected_and_changes_nothing(
    boto3_lambda: Threaded,
    engine: Any,
    existing: str,
    method: str,
    code: str,
    status: int,
    kwargs: dict[str, Any],
) -> None:
    kwargs = {key: existing if value == EXISTING else value for key, value in kwargs.items()}
    before = snapshot(engine)
    await expect_error(getattr(boto3_lambda, method), code, status, **kwargs)
    assert snapshot(engine) == before


async def test_error_bodies_use_the_modeled_member_names(boto3_lambda: Threaded) -> None:
    client = boto3_lambda.client
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        await boto3_lambda.invoke(FunctionName="nope:$LATEST", Payload=b"{}")
    assert info.value.response["Type"] == "User"
    assert info.value.response["Error"]["Message"].startswith(
        f"Function not found: {ACCOUNT_ARN}:nope"
    )
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        await boto3_lambda.invoke(FunctionName="greet:$LATEST", Payload=b"[1,")


async def test_stale_checkpoint_token_is_the_retryable_invalid_token_error(
    boto3_lambda: Threaded, existing: str
) -> None:
    error = await expect_error(
        boto3_lambda.checkpoint_durable_execution,
        "InvalidParameterValueException",
        400,
        DurableExecutionArn=existing,
        CheckpointToken="c3RhbGU=",
        Updates=[],
    )
    assert json.dumps(error.response["Error"]["Message"])
