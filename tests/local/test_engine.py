"""LocalEngine: Invoke, the management API and its errors, callbacks, stop, timeouts."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest
from tests.local import apps

from adurable.local import (
    InvokeResult,
    LocalEngine,
    MemoryStore,
    ServiceError,
    VirtualClock,
)

pytestmark = pytest.mark.anyio

START = 1_767_225_600.0
T0 = dt.datetime.fromtimestamp(START, tz=dt.UTC)


def engine(**kwargs: Any) -> LocalEngine:
    eng = LocalEngine(**kwargs)
    eng.register("napper", apps.napper)
    eng.register("approver", apps.approver)
    eng.register("worker", apps.worker)
    eng.register("double", apps.double)
    eng.register("explode", apps.explode)
    return eng


def callback_id(eng: LocalEngine, arn: str) -> str:
    for op in eng.service.operations(arn):
        if op.callback_details is not None and op.callback_details.callback_id:
            return op.callback_details.callback_id
    raise AssertionError("no callback")


def snapshot(eng: LocalEngine) -> Any:
    """Everything a rejected call must leave alone."""
    service = eng.service
    return [
        (v.arn, v.status, dict(v.operations), service.history(v.arn), v.invocations)
        for v in service.executions()
    ]


# ---------------------------------------------------------------------------- invoke


async def test_request_response_runs_the_execution_to_its_end() -> None:
    eng = engine()
    result = await eng.invoke("napper:$LATEST", b'{"n": 1}')
    assert isinstance(result, InvokeResult)
    assert (result.status_code, result.function_error, result.executed_version) == (
        200,
        None,
        "$LATEST",
    )
    assert json.loads(result.payload) == {"before": "before", "after": "after", "input": {"n": 1}}
    arn = result.durable_execution_arn
    assert arn is not None and ":function:napper:$LATEST/durable-execution/" in arn
    assert eng.clock.now() == START + 3600  # an hour of virtual time, no real time
    described = eng.get_execution(arn)
    assert described["Status"] == "SUCCEEDED"
    assert described["InputPayload"] == '{"n": 1}'
    assert json.loads(described["Result"])["after"] == "after"
    assert described["StartTimestamp"] == T0
    assert described["EndTimestamp"] == T0 + dt.timedelta(hours=1)
    assert described["FunctionArn"] == arn.split("/")[0]
    assert described["Version"] == "$LATEST"
    assert described["DurableConfig"] == {
        "ExecutionTimeout": 31_622_400,
        "RetentionPeriodInDays": 14,
    }


async def test_event_invocation_answers_at_once_and_run_drives_it() -> None:
    eng = engine()
    result = await eng.invoke("napper:7", None, invocation_type="Event")
    assert (result.status_code, result.payload, result.executed_version) == (202, b"", "7")
    arn = result.durable_execution_arn
    assert arn is not None and ":function:napper:7/" in arn
    assert eng.get_execution(arn)["Status"] == "RUNNING"
    await eng.wait_until_done(arn)
    assert eng.get_execution(arn)["Status"] == "SUCCEEDED"


async def test_alias_qualifier_and_arn_names() -> None:
    eng = engine()
    arn_name = "arn:aws:lambda:us-east-1:123456789012:function:napper"
    result = await eng.invoke(arn_name, b"{}", qualifier="live", invocation_type="Event")
    assert result.executed_version == "$LATEST"  # an alias runs $LATEST locally
    assert result.durable_execution_arn is not None
    assert ":function:napper:$LATEST/" in result.durable_execution_arn


async def test_execution_name_is_idempotent_per_payload() -> None:
    eng = engine()
    first = await eng.invoke("approver:1", b"{}", invocation_type="Event", execution_name="job-1")
    again = await eng.invoke("approver:1", b"{}", invocation_type="Event", execution_name="job-1")
    assert first.durable_execution_arn == again.durable_execution_arn
    assert "/durable-execution/job-1/" in str(first.durable_execution_arn)
    before = snapshot(eng)
    with pytest.raises(ServiceError) as info:
        await eng.invoke("approver:1", b'{"x": 1}', invocation_type="Event", execution_name="job-1")
    assert (info.value.code, info.value.status) == ("DurableExecutionAlreadyStartedException", 409)
    assert snapshot(eng) == before


@pytest.mark.parametrize(
    ("call", "code", "status"),
    [
        ({"function_name": "ghost:1"}, "ResourceNotFoundException", 404),
        ({"function_name": "napper"}, "InvalidParameterValueException", 400),
        ({"function_name": "napper:1", "qualifier": "2"}, "InvalidParameterValueException", 400),
        ({"function_name": "bad name"}, "InvalidParameterValueException", 400),
        (
            {"function_name": "arn:aws:lambda:eu-west-1:123456789012:function:napper:1"},
            "ResourceNotFoundException",
            404,
        ),
        ({"function_name": "napper:1", "payload": b"{nope"}, "InvalidRequestContentException", 400),
        (
            {"function_name": "napper:1", "payload": b"1" * (6 * 1024 * 1024 + 1)},
            "RequestTooLargeException",
            413,
        ),
        (
            {
                "function_name": "napper:1",
                "payload": b"1" * (1024 * 1024 + 1),
                "invocation_type": "Event",
            },
            "RequestTooLargeException",
            413,
        ),
        (
            {"function_name": "napper:1", "invocation_type": "Later"},
            "InvalidParameterValueException",
            400,
        ),
        (
            {"function_name": "napper:1", "execution_name": "a b"},
            "InvalidParameterValueException",
            400,
        ),
        ({"function_name": "napper:1", "tenant_id": "a\tb"}, "InvalidParameterValueException", 400),
    ],
)
async def test_bad_invocations_change_nothing(call: dict[str, Any], code: str, status: int) -> None:
    eng = engine()
    await eng.invoke("approver:1", b"{}", invocation_type="Event")
    before = snapshot(eng)
    kwargs = {"payload": b"{}", **call}
    with pytest.raises(ServiceError) as info:
        await eng.invoke(kwargs.pop("function_name"), kwargs.pop("payload"), **kwargs)
    assert (info.value.code, info.value.status) == (code, status)
    assert info.value.response["Error"]["Code"] == code
    assert snapshot(eng) == before


async def test_plain_functions() -> None:
    eng = engine()
    result = await eng.invoke("double", b"21")
    assert (result.status_code, json.loads(result.payload), result.function_error) == (
        200,
        {"double": 42},
        None,
    )
    assert result.durable_execution_arn is None
    failed = await eng.invoke("explode:3", b"null")
    assert (failed.status_code, failed.function_error, failed.executed_version) == (
        200,
        "Unhandled",
        "3",
    )
    body = json.loads(failed.payload)
    assert (body["errorType"], body["errorMessage"]) == ("KeyError", "'boom'")
    assert isinstance(body["stackTrace"], list)
    dry = await eng.invoke("double", b"1", invocation_type="DryRun")
    assert (dry.status_code, dry.payload) == (204, b"")


async def test_event_invocation_of_a_plain_function_runs_in_the_scheduler() -> None:
    calls: list[Any] = []
    eng = LocalEngine()
    eng.register("record", lambda event, ctx: calls.append(event))
    async with eng.running():
        result = await eng.invoke("record", b'{"k": 1}', invocation_type="Event")
        assert result.status_code == 202
        while not calls:
            await eng.scheduler.changed().wait()
    assert calls == [{"k": 1}]


async def test_failed_execution_is_a_function_error() -> None:
    @apps.durable_execution
    async def broken(event: Any, context: Any) -> Any:
        raise RuntimeError("nope")

    eng = LocalEngine()
    eng.register("broken", broken)
    result = await eng.invoke("broken:$LATEST", b"{}")
    assert result.function_error == "Unhandled"
    body = json.loads(result.payload)
    assert (body["errorType"], body["errorMessage"]) == ("RuntimeError", "nope")
    assert result.durable_execution_arn is not None
    assert eng.get_execution(result.durable_execution_arn)["Error"] == {
        "ErrorType": "RuntimeError",
        "ErrorMessage": "nope",
    }


async def test_sync_invoke_gives_up_on_an_execution_waiting_for_the_outside_world() -> None:
    eng = engine(sync_invoke_timeout=0.01)
    result = await eng.invoke("approver:1", b"{}")
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == "Sandbox.Timedout"
    assert result.durable_execution_arn is not None
    assert eng.get_execution(result.durable_execution_arn)["Status"] == "RUNNING"


# ---------------------------------------------------------------------------- management API


async def test_get_execution_without_data_and_errors() -> None:
    eng = engine()
    arn = str(
        (await eng.invoke("approver:1", b'{"a": 1}', invocation_type="Event")).durable_execution_arn
    )
    lean = eng.get_execution(arn, include_data=False)
    assert "InputPayload" not in lean and lean["ExecutionDataIncluded"] is False
    assert eng.get_execution(arn)["InputPayload"] == '{"a": 1}'
    missing = arn.rsplit("/", 1)[0] + "/0000"
    for call in (eng.get_execution, eng.get_history, eng.stop_execution):
        with pytest.raises(ServiceError) as info:
            call(missing)
        assert (info.value.code, info.value.status) == ("ResourceNotFoundException", 404)
        with pytest.raises(ServiceError) as info:
            call("arn:not-an-execution")
        assert info.value.code == "InvalidParameterValueException"


async def test_list_executions_filters_and_pages() -> None:
    eng = engine()
    arns = []
    for i in range(3):
        result = await eng.invoke(
            "approver:1", b"{}", invocation_type="Event", execution_name=f"e{i}"
        )
        arns.append(result.durable_execution_arn)
    eng.clock.advance(1)  # type: ignore[attr-defined]
    await eng.invoke("napper:1", b"{}")
    page = eng.list_executions("approver")
    assert [e["DurableExecutionArn"] for e in page["DurableExecutions"]] == arns[
        ::-1
    ]  # newest first
    assert "NextMarker" not in page
    oldest_first = eng.list_executions("approver", reverse=True, max_items=2)
    assert [e["DurableExecutionName"] for e in oldest_first["DurableExecutions"]] == ["e0", "e1"]
    rest = eng.list_executions("approver", reverse=True, marker=oldest_first["NextMarker"])
    assert [e["DurableExecutionName"] for e in rest["DurableExecutions"]] == ["e2"]
    assert eng.list_executions("approver", name="e1")["DurableExecutions"][0]["Status"] == "RUNNING"
    assert eng.list_executions("approver", statuses=["SUCCEEDED"])["DurableExecutions"] == []
    [done] = eng.list_executions("napper", statuses=["SUCCEEDED"])["DurableExecutions"]
    assert set(done) == {
        "DurableExecutionArn",
        "DurableExecutionName",
        "FunctionArn",
        "Status",
        "StartTimestamp",
        "EndTimestamp",
    }
    after = eng.list_executions("approver", started_after=T0 - dt.timedelta(seconds=1))
    assert len(after["DurableExecutions"]) == 3
    assert eng.list_executions("approver", qualifier="2")["DurableExecutions"] == []
    with pytest.raises(ServiceError, match="Invalid status"):
        eng.list_executions("approver", statuses=["DONE"])
    with pytest.raises(ServiceError) as info:
        eng.list_executions("ghost")
    assert info.value.code == "ResourceNotFoundException"
    with pytest.raises(ServiceError, match="marker"):
        eng.list_executions("approver", marker="nope")


async def test_history_paging_reverse_and_data_truncation() -> None:
    eng = engine()
    arn = str((await eng.invoke("napper:1", b'{"secret": 1}')).durable_execution_arn)
    full = eng.get_history(arn)["Events"]
    assert [e["EventId"] for e in full] == list(range(1, len(full) + 1))
    first = eng.get_history(arn, max_items=3)
    assert [e["EventId"] for e in first["Events"]] == [1, 2, 3]
    second = eng.get_history(arn, max_items=3, marker=first["NextMarker"])
    assert [e["EventId"] for e in second["Events"]] == [4, 5, 6]
    backwards = eng.get_history(arn, reverse=True)["Events"]
    assert [e["EventId"] for e in backwards] == list(range(len(full), 0, -1))
    lean = eng.get_history(arn, include_data=False)["Events"]
    assert lean[0]["ExecutionStartedDetails"] == {
        "Input": {"Truncated": True},
        "ExecutionTimeout": 31_622_400,
    }
    assert lean[-1]["ExecutionSucceededDetails"] == {"Result": {"Truncated": True}}
    assert '"secret"' not in json.dumps(lean, default=str)
    with pytest.raises(ServiceError, match="MaxItems"):
        eng.get_history(arn, max_items=1001)
    with pytest.raises(ServiceError, match="marker"):
        eng.get_history(arn, marker="events:999")


# ---------------------------------------------------------------------------- callbacks


async def test_callbacks_through_the_engine() -> None:
    eng = engine()
    arn = str(
        (await eng.invoke("approver:1", b"{}", invocation_type="Event")).durable_execution_arn
    )
    await eng.wait_until_done(arn)
    assert eng.get_execution(arn)["Status"] == "RUNNING"
    cid = callback_id(eng, arn)
    eng.send_callback_heartbeat(cid)
    before = snapshot(eng)
    for bad in ("", "not base64!", "x" * 1100):
        with pytest.raises(ServiceError) as info:
            eng.send_callback_success(bad, b"1")
        assert info.value.code == "InvalidParameterValueException"
    with pytest.raises(ServiceError) as info:
        eng.send_callback_success("bm9wZQ==", b"1")
    assert info.value.code == "ResourceNotFoundException"
    with pytest.raises(ServiceError, match="1 MiB"):
        eng.send_callback_success(cid, b"x" * (1024 * 1024 + 1))
    with pytest.raises(ServiceError, match="Malformed error"):
        eng.send_callback_failure(cid, {"ErrorType": 5})
    assert snapshot(eng) == before
    eng.send_callback_success(cid, b'"yes"')
    await eng.wait_until_done(arn)
    assert eng.get_execution(arn)["Result"] == '{"answer": "\\"yes\\""}'
    with pytest.raises(ServiceError) as info:
        eng.send_callback_success(cid, b"again")
    assert info.value.code == "ResourceNotFoundException"


async def test_callback_failure_and_a_callback_sent_from_another_thread() -> None:
    eng = engine()
    arn = str(
        (await eng.invoke("approver:1", b"{}", invocation_type="Event")).durable_execution_arn
    )
    async with eng.running():
        await eng.wait_until_done(arn)
        cid = callback_id(eng, arn)
        error = {"ErrorType": "Denied", "ErrorMessage": "no"}
        # an HTTP front end calls from its own threads: the scheduler must still wake up
        thread = threading.Thread(target=eng.send_callback_failure, args=(cid, error))
        await anyio.to_thread.run_sync(lambda: (thread.start(), thread.join()))
        while eng.get_execution(arn)["Status"] == "RUNNING":
            await eng.scheduler.changed().wait()
    described = eng.get_execution(arn)
    assert described["Status"] == "FAILED"


# ---------------------------------------------------------------------------- stop, timeouts


async def test_stop_execution() -> None:
    eng = engine()
    arn = str(
        (await eng.invoke("approver:1", b"{}", invocation_type="Event")).durable_execution_arn
    )
    await eng.wait_until_done(arn)
    eng.clock.advance(5)  # type: ignore[attr-defined]
    stopped = eng.stop_execution(arn, {"ErrorType": "Operator", "ErrorMessage": "enough"})
    assert stopped == {"StopTimestamp": T0 + dt.timedelta(seconds=5)}
    described = eng.get_execution(arn)
    assert (described["Status"], described["Error"]) == (
        "STOPPED",
        {"ErrorType": "Operator", "ErrorMessage": "enough"},
    )
    last = eng.get_history(arn)["Events"][-1]
    assert last["EventType"] == "ExecutionStopped"
    assert last["ExecutionStoppedDetails"] == {
        "Error": {
            "Payload": {"ErrorType": "Operator", "ErrorMessage": "enough"},
            "Truncated": False,
        }
    }
    assert eng.service.operations(arn)[0].status.value == "STOPPED"
    with pytest.raises(ServiceError) as info:
        eng.stop_execution(arn)
    assert info.value.code == "InvalidParameterValueException"
    with pytest.raises(ServiceError):
        eng.send_callback_success(callback_id(eng, arn), b"late")


async def test_stopping_a_chained_invoke_target_stops_the_invoke() -> None:
    eng = engine()
    eng.register("caller", apps.caller)
    payload = json.dumps({"target": "approver:1", "payload": {"q": 1}}).encode()
    arn = str(
        (await eng.invoke("caller:1", payload, invocation_type="Event")).durable_execution_arn
    )
    await eng.wait_until_done(arn)
    [child] = eng.service.child_executions(arn)
    eng.stop_execution(child, {"ErrorType": "Halt", "ErrorMessage": "stop"})
    await eng.wait_until_done(arn)
    events = eng.get_history(arn)["Events"]
    stopped = next(e for e in events if e["EventType"] == "ChainedInvokeStopped")
    assert stopped["ChainedInvokeStoppedDetails"] == {
        "Error": {"Payload": {"ErrorType": "Halt", "ErrorMessage": "stop"}, "Truncated": False}
    }
    described = eng.get_execution(arn)
    assert described["Status"] == "FAILED"  # the handler's InvokeError escaped


async def test_execution_timeout() -> None:
    eng = LocalEngine()
    eng.register("sleeper", apps.sleeper, execution_timeout=100)
    payload = json.dumps({"seconds": 3600}).encode()
    result = await eng.invoke("sleeper:1", payload)
    arn = str(result.durable_execution_arn)
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == "Execution.Timeout"
    events = eng.get_history(arn)["Events"]
    assert events[0]["ExecutionStartedDetails"]["ExecutionTimeout"] == 100
    timed_out = events[-1]
    assert timed_out["EventType"] == "ExecutionTimedOut"
    assert timed_out["EventTimestamp"] == T0 + dt.timedelta(seconds=100)
    assert timed_out["ExecutionTimedOutDetails"]["Error"]["Payload"]["ErrorType"] == (
        "Execution.Timeout"
    )
    assert eng.get_execution(arn)["Status"] == "TIMED_OUT"
    assert eng.service.operations(arn)[0].status.value == "TIMED_OUT"
    assert not any(e["EventType"] == "WaitSucceeded" for e in events)
    with pytest.raises(ValueError, match="execution_timeout"):
        eng.register("other", apps.sleeper, execution_timeout=0)


async def test_a_timed_out_child_times_out_the_chained_invoke() -> None:
    eng = LocalEngine()
    eng.register("caller", apps.caller)
    eng.register("sleeper", apps.sleeper, execution_timeout=10)
    payload = json.dumps({"target": "sleeper:1", "payload": {"seconds": 60}}).encode()
    arn = str((await eng.invoke("caller:1", payload)).durable_execution_arn)
    events = eng.get_history(arn)["Events"]
    timed_out = next(e for e in events if e["EventType"] == "ChainedInvokeTimedOut")
    assert timed_out["ChainedInvokeTimedOutDetails"]["Error"]["Payload"]["ErrorType"] == (
        "ChainedInvoke.Timeout"
    )


# ---------------------------------------------------------------------------- registration


def test_register_checks_its_handler() -> None:
    eng = LocalEngine()
    with pytest.raises(TypeError, match="durable handler"):
        eng.register("x", object(), durable=True)
    with pytest.raises(TypeError, match="callable"):
        eng.register("x", object())
    with pytest.raises(ValueError, match="function_name"):
        eng.register("bad name", apps.double)
    eng.register("b", apps.double)
    eng.register("a", apps.napper)
    assert eng.functions() == ["a", "b"]
    with pytest.raises(ValueError, match="replay"):
        LocalEngine(replay="sometimes")  # type: ignore[arg-type]


def test_engine_defaults() -> None:
    eng = LocalEngine()
    assert isinstance(eng.clock, VirtualClock)
    assert isinstance(eng.service.store, MemoryStore)
