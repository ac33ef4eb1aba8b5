"""invoke (chained invoke) and the fake's chained-invoke targets (PROTOCOL §7.4, §4.7, A.4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.helpers import Driver, short, updates_of

from adurable import (
    DurableContext,
    Duration,
    InvokeConfig,
    InvokeError,
    SerDesError,
    SuspendExecution,
    ValidationError,
    durable_execution,
)
from adurable.testing import FakeService, LocalRunner

pytestmark = pytest.mark.anyio

ID1 = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"
ID2 = "c5faca15ac2f93578b39ef4b6bbb871bdedce4ddd584fd31f0bb66fade3947e6"
ARN_PREFIX = "arn:aws:lambda:us-east-1:123456789012:function:"


def invoke_op(service: FakeService, arn: str, name: str) -> str:
    for op in service.operations(arn):
        if op.name == name:
            return op.id
    raise AssertionError(f"no operation {name!r}")


@durable_execution
async def echo_target(event: Any, context: DurableContext) -> Any:
    await context.wait(Duration(3))
    if isinstance(event, dict) and event.get("fail"):
        raise RuntimeError("target failed")
    return {"echo": event}


# ---------------------------------------------------------------------------- the SDK side


async def test_invoke_matches_appendix_a4() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        echoed = await context.invoke("target-fn:$LATEST", {"x": 1}, name="call")
        try:
            await context.invoke(
                "target-fn:$LATEST", {"x": 2}, name="call2", config=InvokeConfig(tenant_id="t1")
            )
        except InvokeError as exc:
            return [echoed, exc.error_type, exc.message]
        return None

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    service = driver.service
    service.complete_chained_invoke(driver.arn, ID1, result=json.dumps({"echo": {"x": 1}}))
    assert await driver.invoke() == {"Status": "PENDING"}
    error = {"ErrorType": "RuntimeError", "ErrorMessage": "target failed"}
    service.complete_chained_invoke(driver.arn, ID2, error=error)
    output = await driver.invoke()
    assert json.loads(output["Result"]) == [
        {"echo": {"x": 1}},
        "RuntimeError",
        "target failed",
    ]
    start = {"Type": "CHAINED_INVOKE", "SubType": "ChainedInvoke", "Action": "START"}
    assert updates_of(service) == [
        [
            {
                "Id": ID1,
                "Name": "call",
                **start,
                "Payload": '{"x": 1}',
                "ChainedInvokeOptions": {"FunctionName": "target-fn:$LATEST"},
            }
        ],
        [
            {
                "Id": ID2,
                "Name": "call2",
                **start,
                "Payload": '{"x": 2}',
                "ChainedInvokeOptions": {"FunctionName": "target-fn:$LATEST", "TenantId": "t1"},
            }
        ],
    ]


@pytest.mark.parametrize(
    "function_name",
    [
        "target-fn",
        "123456789012:function:target-fn",
        ARN_PREFIX + "target-fn",
        "",
        "target-fn:prod:extra",
        "arn:aws:s3:::bucket",
        "has space:1",
        42,
    ],
)
async def test_unqualified_or_malformed_names_are_rejected_before_allocation(
    function_name: Any,
) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        try:
            context.invoke(function_name, {"x": 1})
        except ValidationError as exc:
            message = str(exc)
        await context.step(lambda _: "next", name="next")
        return message

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert repr(function_name) in result.result
    if function_name == "target-fn":
        assert "target-fn:$LATEST" in result.result  # the message shows how to fix it
    assert [u["Id"] for c in updates_of(runner.service) for u in c] == [ID1, ID1]


@pytest.mark.parametrize(
    "function_name",
    [
        "target-fn:1",
        "target-fn:prod",
        "target-fn:$LATEST",
        "target-fn:$LATEST.PUBLISHED",
        "123456789012:function:target-fn:7",
        ARN_PREFIX + "target-fn:live",
        "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:target-fn:$LATEST",
    ],
)
async def test_qualified_names_are_accepted(function_name: str) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return await context.invoke(function_name, None)

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    [[start]] = updates_of(driver.service)
    assert start["ChainedInvokeOptions"] == {"FunctionName": function_name}
    assert start["Payload"] == "null"


@pytest.mark.parametrize(
    ("kwargs", "error_type"),
    [
        ({"error": {"ErrorType": "RuntimeError", "ErrorMessage": "x"}}, "RuntimeError"),
        (
            {"status": "TIMED_OUT", "error": {"ErrorType": "ChainedInvoke.Timeout"}},
            "ChainedInvoke.Timeout",
        ),
        ({"status": "STOPPED"}, "aws_durable_execution_sdk_python.exceptions.InvokeError"),
    ],
)
async def test_failed_timed_out_and_stopped_raise_invoke_error_on_every_replay(
    kwargs: dict[str, Any], error_type: str
) -> None:
    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        try:
            await context.invoke("fn:1", 1, name="call")
        except InvokeError as exc:
            seen.append([exc.error_type, exc.message])
        await context.wait(Duration(1))
        return "done"

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    driver.service.complete_chained_invoke(driver.arn, ID1, **kwargs)
    assert await driver.invoke() == {"Status": "PENDING"}
    driver.advance()
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '"done"'}
    message = kwargs.get("error", {}).get("ErrorMessage")
    if kwargs.get("error") is None:
        message = "Unknown error. No ErrorObject exists on the Checkpoint Operation."
    assert seen == [[error_type, message]] * 2
    assert [[short(u) for u in c] for c in updates_of(driver.service)] == [
        ["CHAINED_INVOKE START call"],
        ["WAIT START"],
    ]


async def test_started_invoke_suspends_untimed_and_replays_the_result() -> None:
    suspensions: list[type[BaseException]] = []
    replaying: list[bool] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        try:
            value = await context.invoke("fn:1", {"q": 1}, name="call")
        except SuspendExecution as exc:
            suspensions.append(type(exc))
            raise
        replaying.append(context.is_replaying())
        await context.wait(Duration(1))
        return value

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    assert await driver.invoke() == {"Status": "PENDING"}  # woken early: still STARTED
    assert suspensions == [SuspendExecution, SuspendExecution]  # untimed, not TimedSuspend...
    driver.service.complete_chained_invoke(driver.arn, ID1, result='{"a": [1, 2]}')
    assert await driver.invoke() == {"Status": "PENDING"}
    driver.advance()
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '{"a": [1, 2]}'}
    assert replaying == [False, True]
    assert [[short(u) for u in c] for c in updates_of(driver.service)] == [
        ["CHAINED_INVOKE START call"],
        ["WAIT START"],
    ]


async def test_succeeded_without_result_is_none() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return [await context.invoke("fn:1", 1)]

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    driver.service.complete_chained_invoke(driver.arn, ID1)
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": "[null]"}


@pytest.mark.parametrize("status", ["PENDING", "READY", "CANCELLED"])
async def test_other_statuses_suspend(status: str) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return await context.invoke("fn:1", 1, name="call")

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    event = driver.service.invocation_event(driver.arn)
    event["InitialExecutionState"]["Operations"][1]["Status"] = status
    assert await handler.run(event, None, client=driver.service) == {"Status": "PENDING"}


async def test_custom_serdes_for_payload_and_result() -> None:
    class Tagged:
        def serialize(self, value: Any, context: Any) -> str:
            return f"tag:{value}"

        def deserialize(self, data: str, context: Any) -> Any:
            return data.upper()

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = InvokeConfig(serdes_payload=Tagged(), serdes_result=Tagged())  # type: ignore[arg-type]
        return await context.invoke("fn:1", "hello", config=config)

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    assert updates_of(driver.service)[0][0]["Payload"] == "tag:hello"
    driver.service.complete_chained_invoke(driver.arn, ID1, result="done")
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '"DONE"'}


async def test_unserializable_payload_raises_serdes_error_without_checkpointing() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        try:
            await context.invoke("fn:1", {1, 2})
        except SerDesError as exc:
            return str(exc)
        return None

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result.startswith(f"Serialization failed for id: {ID1}")
    assert updates_of(runner.service) == []


# ---------------------------------------------------------------------------- targets in the fake


async def test_durable_target_runs_as_a_child_execution() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = InvokeConfig(tenant_id="t1")
        return await context.invoke("target-fn:$LATEST", {"x": 1}, name="call", config=config)

    runner = LocalRunner(handler)
    runner.register("target-fn", echo_target)
    result = await runner.run()
    assert (result.status, result.result, result.invocations) == (
        "SUCCEEDED",
        {"echo": {"x": 1}},
        2,
    )
    op = result.get_operation("call")
    assert op.chained_invoke_details is not None
    assert op.chained_invoke_details.result == '{"echo": {"x": 1}}'
    [child] = [
        runner.service.execution(arn)
        for arn in {c.request["DurableExecutionArn"] for c in runner.service.calls}
        if arn != result.arn
    ]
    assert child.status == "SUCCEEDED"
    assert child.invoked_by == (result.arn, op.id)
    assert child.tenant_id == "t1"
    assert ":function:target-fn:$LATEST/durable-execution/" in child.arn
    child_input = runner.service.operations(child.arn)[0].execution_details
    assert child_input is not None and child_input.input_payload == '{"x": 1}'
    started = [
        e for e in runner.service.history(result.arn) if e["EventType"] == "ChainedInvokeStarted"
    ]
    assert started[0]["ChainedInvokeStartedDetails"]["TenantId"] == "t1"


async def test_durable_target_failure_is_an_invoke_error() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        try:
            await context.invoke(ARN_PREFIX + "target-fn:7", {"fail": True})
        except InvokeError as exc:
            return [exc.error_type, exc.message]
        return None

    runner = LocalRunner(handler)
    runner.register("target-fn", echo_target)
    result = await runner.run()
    assert result.result == ["RuntimeError", "target failed"]


async def test_plain_sync_and_async_targets() -> None:
    def double(event: Any, context: Any) -> Any:
        return {"double": event * 2, "fn": context.function_name}

    async def explode(event: Any, context: Any) -> Any:
        raise KeyError("boom")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        doubled = await context.invoke("double:1", 21)
        try:
            await context.invoke("explode:$LATEST", None)
        except InvokeError as exc:
            return [doubled, exc.error_type, exc.message]
        return None

    runner = LocalRunner(handler)
    runner.register("double", double)
    runner.register("explode", explode)
    result = await runner.run()
    assert result.result == [{"double": 42, "fn": "double"}, "KeyError", "'boom'"]


@pytest.mark.parametrize(
    ("function_name", "error_type"),
    [
        ("ghost:1", "ResourceNotFoundException"),
        ("arn:aws:lambda:eu-west-1:123456789012:function:target-fn:1", "ResourceNotFoundException"),
        ("999999999999:function:target-fn:1", "ResourceNotFoundException"),
    ],
)
async def test_unresolvable_targets_fail_in_the_same_checkpoint_response(
    function_name: str, error_type: str
) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        try:
            await context.invoke(function_name, 1, name="call")
        except InvokeError as exc:
            return [exc.error_type, exc.message]
        return None

    runner = LocalRunner(handler)
    runner.register("target-fn", echo_target)
    result = await runner.run()
    assert result.invocations == 1  # no suspension
    assert result.result == [error_type, f"Function not found: {function_name}"]
    [call] = [c for c in runner.service.calls if c.api == "checkpoint"]
    assert call.response is not None
    [op] = call.response["NewExecutionState"]["Operations"]
    assert op["Status"] == "FAILED"


def test_fake_rejects_unqualified_durable_targets_but_not_plain_ones() -> None:
    service = FakeService()
    service.register_function("durable-fn")
    service.register_function("plain-fn", durable=False)
    arn = service.start_execution()
    event = service.invocation_event(arn)
    updates = [
        {
            "Id": op_id,
            "Type": "CHAINED_INVOKE",
            "SubType": "ChainedInvoke",
            "Action": "START",
            "ChainedInvokeOptions": {"FunctionName": name},
        }
        for op_id, name in (("a", "durable-fn"), ("b", "plain-fn"), ("c", "durable-fn:2"))
    ]
    response = service.checkpoint(
        DurableExecutionArn=arn, CheckpointToken=event["CheckpointToken"], Updates=updates
    )
    ops = {op["Id"]: op for op in response["NewExecutionState"]["Operations"]}
    assert ops["a"]["Status"] == "FAILED"
    error = ops["a"]["ChainedInvokeDetails"]["Error"]
    assert error["ErrorType"] == "InvalidParameterValueException"
    assert "qualified" in error["ErrorMessage"]
    assert (ops["b"]["Status"], ops["c"]["Status"]) == ("STARTED", "STARTED")
    requests = service.take_chained_invokes()
    assert [(r.operation_id, r.function_name, r.qualifier) for r in requests] == [
        ("b", "plain-fn", None),
        ("c", "durable-fn", "2"),
    ]
    assert requests[0].execution_arn is None
    assert requests[1].execution_arn is not None
    assert service.execution(requests[1].execution_arn).invoked_by == (arn, "c")
    assert service.take_chained_invokes() == []
    with pytest.raises(ValueError, match="function_name"):
        service.register_function("bad name")


async def test_target_waiting_on_a_callback_keeps_both_running() -> None:
    @durable_execution
    async def waiting_target(event: Any, context: DurableContext) -> Any:
        cb = await context.create_callback("inner")
        return await cb.result()

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return await context.invoke("waiter:1", None, name="call")

    runner = LocalRunner(handler)
    runner.register("waiter", waiting_target)
    result = await runner.run()
    assert result.status == "RUNNING"
    [child_arn] = [
        a
        for a in {c.request["DurableExecutionArn"] for c in runner.service.calls}
        if a != result.arn
    ]
    inner = runner.service.operations(child_arn)[1]
    assert inner.callback_details is not None and inner.callback_details.callback_id is not None
    runner.service.send_callback_success(inner.callback_details.callback_id, '"ok"')
    result = await runner.resume(result.arn)
    assert (result.status, result.result) == ("SUCCEEDED", '"ok"')
