"""boto3, a client nobody here wrote, drives the local server through the real Lambda API."""

from __future__ import annotations

import datetime as dt
import json
import queue
from typing import Any

import pytest
from tests.server.conftest import Threaded, next_callback_id

pytestmark = pytest.mark.anyio

EXECUTED = "$LATEST"


def _event_types(history: dict[str, Any]) -> list[str]:
    return [event["EventType"] for event in history["Events"]]


async def test_sync_invoke_runs_the_execution_and_history_reads_back(
    boto3_lambda: Threaded,
) -> None:
    response = await boto3_lambda.invoke(
        FunctionName="greet:$LATEST", Payload=json.dumps({"name": "ada"}).encode()
    )
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == EXECUTED
    assert json.loads(response["Payload"]) == {"greeting": "hello ada"}
    arn = response["DurableExecutionArn"]
    assert ":function:greet:$LATEST/durable-execution/" in arn

    execution = await boto3_lambda.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "SUCCEEDED"
    assert execution["DurableExecutionArn"] == arn
    assert json.loads(execution["Result"]) == {"greeting": "hello ada"}
    assert json.loads(execution["InputPayload"]) == {"name": "ada"}
    assert isinstance(execution["StartTimestamp"], dt.datetime)  # epoch seconds on the wire
    # The 5-minute wait passed in virtual time.
    assert execution["EndTimestamp"] - execution["StartTimestamp"] >= dt.timedelta(minutes=5)

    history = await boto3_lambda.get_durable_execution_history(DurableExecutionArn=arn)
    events = history["Events"]
    assert [e["EventId"] for e in events] == list(range(1, len(events) + 1))
    assert _event_types(history) == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "WaitStarted",
        "InvocationCompleted",
        "WaitSucceeded",
        "StepStarted",
        "StepSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    wait = events[3]
    assert wait["Name"] == "pause"
    assert wait["WaitStartedDetails"]["Duration"] == 300
    assert isinstance(wait["WaitStartedDetails"]["ScheduledEndTimestamp"], dt.datetime)
    assert events[2]["StepSucceededDetails"]["Result"]["Payload"] == '"ada"'
    invocation = events[4]["InvocationCompletedDetails"]
    assert {"StartTimestamp", "EndTimestamp", "RequestId"} <= invocation.keys()


async def test_history_paging_and_reverse_order(boto3_lambda: Threaded) -> None:
    response = await boto3_lambda.invoke(FunctionName="greet", Qualifier="$LATEST", Payload=b"{}")
    arn = response["DurableExecutionArn"]
    full = (await boto3_lambda.get_durable_execution_history(DurableExecutionArn=arn))["Events"]
    pages: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"DurableExecutionArn": arn, "MaxItems": 3}
    while True:
        page = await boto3_lambda.get_durable_execution_history(**kwargs)
        pages.extend(page["Events"])
        if not page.get("NextMarker"):
            break
        kwargs["Marker"] = page["NextMarker"]
    assert pages == full
    backwards = await boto3_lambda.get_durable_execution_history(
        DurableExecutionArn=arn, ReverseOrder=True
    )
    assert backwards["Events"] == full[::-1]


async def test_event_invoke_with_an_execution_name_is_idempotent(
    boto3_lambda: Threaded, engine: Any
) -> None:
    first = await boto3_lambda.invoke(
        FunctionName="greet:$LATEST",
        InvocationType="Event",
        DurableExecutionName="order-42",
        Payload=b'{"name": "bob"}',
    )
    assert first["StatusCode"] == 202
    assert first["Payload"] == b""
    arn = first["DurableExecutionArn"]
    assert "/durable-execution/order-42/" in arn
    again = await boto3_lambda.invoke(
        FunctionName="greet:$LATEST",
        InvocationType="Event",
        DurableExecutionName="order-42",
        Payload=b'{"name": "bob"}',
    )
    assert again["DurableExecutionArn"] == arn

    await engine.wait_until_done(arn)
    listed = await boto3_lambda.list_durable_executions_by_function(FunctionName="greet")
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [arn]
    assert listed["DurableExecutions"][0]["Status"] == "SUCCEEDED"
    assert listed["DurableExecutions"][0]["DurableExecutionName"] == "order-42"
    running = await boto3_lambda.list_durable_executions_by_function(
        FunctionName="greet", Statuses=["RUNNING"]
    )
    assert running["DurableExecutions"] == []


async def test_callback_success_completes_a_waiting_execution(
    boto3_lambda: Threaded, engine: Any, callback_ids: queue.Queue[str]
) -> None:
    started = await boto3_lambda.invoke(
        FunctionName="approval:$LATEST", InvocationType="Event", Payload=b"{}"
    )
    arn = started["DurableExecutionArn"]
    callback_id = await next_callback_id(callback_ids)
    waiting = await boto3_lambda.get_durable_execution(DurableExecutionArn=arn)
    assert waiting["Status"] == "RUNNING"

    await boto3_lambda.send_durable_execution_callback_heartbeat(CallbackId=callback_id)
    await boto3_lambda.send_durable_execution_callback_success(
        CallbackId=callback_id, Result=b'"APPROVED"'
    )
    await engine.wait_until_done(arn)

    execution = await boto3_lambda.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"]) == {"answer": '"APPROVED"'}
    history = await boto3_lambda.get_durable_execution_history(DurableExecutionArn=arn)
    types = _event_types(history)
    assert types.index("CallbackStarted") < types.index("CallbackSucceeded")
    started_event = history["Events"][types.index("CallbackStarted")]
    assert started_event["CallbackStartedDetails"]["CallbackId"] == callback_id
    succeeded = history["Events"][types.index("CallbackSucceeded")]
    assert succeeded["CallbackSucceededDetails"]["Result"]["Payload"] == '"APPROVED"'

    # The callback is closed now.
    with pytest.raises(boto3_lambda.client.exceptions.ClientError) as info:
        await boto3_lambda.send_durable_execution_callback_success(
            CallbackId=callback_id, Result=b'"AGAIN"'
        )
    assert info.value.response["Error"]["Code"] in (
        "CallbackTimeoutException",
        "ResourceNotFoundException",
    )


async def test_sync_invoke_waits_for_a_callback_sent_meanwhile(
    boto3_lambda: Threaded, callback_ids: queue.Queue[str]
) -> None:
    import anyio

    results: list[dict[str, Any]] = []

    async def invoke() -> None:
        results.append(await boto3_lambda.invoke(FunctionName="approval:$LATEST", Payload=b"{}"))

    async with anyio.create_task_group() as group:
        group.start_soon(invoke)
        callback_id = await next_callback_id(callback_ids)
        await boto3_lambda.send_durable_execution_callback_failure(
            CallbackId=callback_id,
            Error={"ErrorType": "Denied", "ErrorMessage": "not today", "ErrorData": '{"d": 1}'},
        )
    (response,) = results
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"])
    assert "not today" in json.dumps(error)
    execution = await boto3_lambda.get_durable_execution(
        DurableExecutionArn=response["DurableExecutionArn"]
    )
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorMessage"] == "not today"


async def test_failed_execution_reports_a_function_error(boto3_lambda: Threaded) -> None:
    response = await boto3_lambda.invoke(FunctionName="fails:$LATEST", Payload=b"{}")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"])
    assert "no luck" in json.dumps(payload)
    execution = await boto3_lambda.get_durable_execution(
        DurableExecutionArn=response["DurableExecutionArn"]
    )
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "ValueError"


async def test_stop_execution(
    boto3_lambda: Threaded, engine: Any, callback_ids: queue.Queue[str]
) -> None:
    started = await boto3_lambda.invoke(
        FunctionName="approval:$LATEST", InvocationType="Event", Payload=b"{}"
    )
    arn = started["DurableExecutionArn"]
    await next_callback_id(callback_ids)
    stopped = await boto3_lambda.stop_durable_execution(
        DurableExecutionArn=arn, Error={"ErrorType": "Manual", "ErrorMessage": "operator stop"}
    )
    assert isinstance(stopped["StopTimestamp"], dt.datetime)
    await engine.wait_until_done(arn)
    execution = await boto3_lambda.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "STOPPED"
    history = await boto3_lambda.get_durable_execution_history(DurableExecutionArn=arn)
    assert "ExecutionStopped" in _event_types(history)
    listed = await boto3_lambda.list_durable_executions_by_function(
        FunctionName="arn:aws:lambda:us-east-1:123456789012:function:approval",
        Statuses=["STOPPED"],
    )
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [arn]


async def test_get_execution_without_data(boto3_lambda: Threaded) -> None:
    response = await boto3_lambda.invoke(FunctionName="greet:$LATEST", Payload=b'{"name": "x"}')
    arn = response["DurableExecutionArn"]
    execution = await boto3_lambda.get_durable_execution(
        DurableExecutionArn=arn, IncludeExecutionData=False
    )
    assert execution["Status"] == "SUCCEEDED"
    assert "Result" not in execution
    assert "InputPayload" not in execution
