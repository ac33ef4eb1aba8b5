"""Execution histories as the real service renders them (PROTOCOL §14): every Details field."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.local import apps

from adurable.local import LocalEngine

pytestmark = pytest.mark.anyio

START = 1_767_225_600.0
T0 = dt.datetime.fromtimestamp(START, tz=dt.UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


async def run(function: str, handler: Any, event: Any = None, **register: Any) -> Any:
    engine = LocalEngine()
    engine.register(function, handler)
    for name, target in register.items():
        engine.register(name, target)
    result = await engine.invoke(f"{function}:1", json.dumps(event).encode())
    arn = str(result.durable_execution_arn)
    return engine, arn, engine.get_history(arn)["Events"]


def of(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e[f"{event_type}Details"] for e in events if e["EventType"] == event_type]


async def test_step_retries_and_invocations() -> None:
    apps.attempts.clear()
    _, arn, events = await run("flaky", apps.flaky)
    assert [e["EventType"] for e in events] == [
        "ExecutionStarted",
        "StepStarted",
        "StepFailed",
        "InvocationCompleted",
        "StepStarted",
        "StepFailed",
        "InvocationCompleted",
        "StepStarted",
        "StepSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    failed = of(events, "StepFailed")
    assert failed[0] == {
        "Error": {
            "Payload": {"ErrorMessage": "boom 1", "ErrorType": "ValueError"},
            "Truncated": False,
        },
        "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 2},
    }
    assert failed[1]["RetryDetails"] == {"CurrentAttempt": 2, "NextAttemptDelaySeconds": 2}
    assert of(events, "StepSucceeded") == [
        {"Result": {"Payload": '"ok"', "Truncated": False}, "RetryDetails": {"CurrentAttempt": 3}}
    ]
    completed = of(events, "InvocationCompleted")
    assert [(c["StartTimestamp"], c["EndTimestamp"]) for c in completed] == [
        (at(0), at(0)),
        (at(2), at(2)),
        (at(4), at(4)),
    ]
    assert all(set(c) == {"StartTimestamp", "EndTimestamp", "RequestId"} for c in completed)
    assert len({c["RequestId"] for c in completed}) == 3
    assert events[0]["Id"] == arn.split("/")[-1]
    assert events[1]["SubType"] == "Step" and events[1]["Name"] == "flaky"
    assert "Id" not in events[3] and "SubType" not in events[3]
    assert [e["EventTimestamp"] for e in events[4:6]] == [at(2), at(2)]


async def test_wait_for_condition_records_its_state_payloads() -> None:
    _, _, events = await run("poller", apps.poller)
    polls = of(events, "StepSucceeded")
    assert [p["RetryDetails"] for p in polls] == [
        {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 10},
        {"CurrentAttempt": 2, "NextAttemptDelaySeconds": 10},
        {"CurrentAttempt": 3},
    ]
    payloads = [json.loads(p["Result"]["Payload"]) for p in polls]
    assert [p["v"]["n"]["v"] if isinstance(p, dict) and "v" in p else p["n"] for p in payloads] == [
        1,
        2,
        3,
    ]
    steps = [e for e in events if e["EventType"].startswith("Step")]
    assert {e["SubType"] for e in steps} == {"WaitForCondition"}
    assert not of(events, "StepFailed")


async def test_callback_started_details_and_heartbeat_timeout() -> None:
    engine = LocalEngine()
    engine.register("cb", apps.callback_with_timeouts)
    engine.time_out_callbacks = True
    result = await engine.invoke("cb:1", b"{}")
    events = engine.get_history(str(result.durable_execution_arn))["Events"]
    [started] = of(events, "CallbackStarted")
    assert set(started) == {"CallbackId", "HeartbeatTimeout", "Timeout"}
    assert (started["HeartbeatTimeout"], started["Timeout"]) == (60, 300)
    [timed_out] = [e for e in events if e["EventType"] == "CallbackTimedOut"]
    assert timed_out["EventTimestamp"] == at(60)
    assert timed_out["CallbackTimedOutDetails"] == {
        "Error": {
            "Payload": {
                "ErrorType": "Callback.Heartbeat",
                "ErrorMessage": "Callback timed out on heartbeat",
            },
            "Truncated": False,
        }
    }


async def test_chained_invoke_started_details_for_durable_and_plain_targets() -> None:
    event = {"target": "napper:$LATEST", "payload": {"x": 1}, "tenant": "t-1"}
    engine, arn, events = await run("caller", apps.caller, event, napper=apps.napper)
    [started] = of(events, "ChainedInvokeStarted")
    [child] = [v.arn for v in engine.service.executions() if v.arn != arn]
    assert started == {
        "FunctionName": "napper:$LATEST",
        "TenantId": "t-1",
        "Input": {"Payload": '{"x": 1}', "Truncated": False},
        "ExecutedVersion": "$LATEST",
        "DurableExecutionArn": child,
    }
    assert engine.service.execution(child).tenant_id == "t-1"
    assert engine.service.execution(child).invoked_by == (arn, events[1]["Id"])
    [succeeded] = of(events, "ChainedInvokeSucceeded")
    assert json.loads(succeeded["Result"]["Payload"])["after"] == "after"

    event = {"target": "double:4", "payload": 21}
    _, _, events = await run("caller", apps.caller, event, double=apps.double)
    assert of(events, "ChainedInvokeStarted") == [
        {
            "FunctionName": "double:4",
            "Input": {"Payload": "21", "Truncated": False},
            "ExecutedVersion": "4",
        }
    ]
    assert of(events, "ChainedInvokeSucceeded") == [
        {"Result": {"Payload": '{"double": 42}', "Truncated": False}}
    ]

    event = {"target": "explode:1", "payload": None}
    _, _, events = await run("caller", apps.caller, event, explode=apps.explode)
    assert of(events, "ChainedInvokeFailed") == [
        {
            "Error": {
                "Payload": {"ErrorType": "KeyError", "ErrorMessage": "'boom'"},
                "Truncated": False,
            }
        }
    ]

    event = {"target": "ghost:1", "payload": None}
    _, _, events = await run("caller", apps.caller, event)
    [unresolved] = of(events, "ChainedInvokeStarted")
    assert "ExecutedVersion" not in unresolved
    assert of(events, "ChainedInvokeFailed")[0]["Error"]["Payload"]["ErrorType"] == (
        "ResourceNotFoundException"
    )


async def test_a_crashing_handler_leaves_crash_records() -> None:
    class Crashy:
        """A raw handler: two function errors (Lambda retries), then an answer."""

        calls = 0

        async def run(self, event: Any, lambda_context: Any, *, client: Any) -> Any:
            self.calls += 1
            if self.calls < 3:
                raise ConnectionError(f"lost connection {self.calls}")
            return {"Status": "SUCCEEDED", "Result": '"ok"'}

    engine, arn, events = await run("crashy", Crashy())
    completed = [e for e in events if e["EventType"] == "InvocationCompleted"]
    assert [c["InvocationCompletedDetails"].get("Error") for c in completed] == [
        {
            "Payload": {"ErrorType": "ConnectionError", "ErrorMessage": "lost connection 1"},
            "Truncated": False,
        },
        {
            "Payload": {"ErrorType": "ConnectionError", "ErrorMessage": "lost connection 2"},
            "Truncated": False,
        },
        None,
    ]
    assert [c["EventTimestamp"] for c in completed] == [at(0), at(5), at(10)]  # 5 s backoff
    assert [str(e) for e in engine.invocation_errors(arn)] == [
        "lost connection 1",
        "lost connection 2",
    ]
    assert engine.get_execution(arn)["Status"] == "SUCCEEDED"


# ---------------------------------------------------------------------------- the examples


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"history_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outline(events: list[dict[str, Any]], names: dict[str, str | None]) -> list[tuple[Any, ...]]:
    """(EventId, EventType, Name, parent's Name, SubType) of every event."""
    return [
        (
            e["EventId"],
            e["EventType"],
            e.get("Name"),
            names.get(e.get("ParentId", "")),
            e.get("SubType"),
        )
        for e in events
    ]


async def test_order_workflow_history() -> None:
    engine = LocalEngine()
    engine.register("orders", load("order_workflow").handler)
    order = {"order_id": "o-7", "items": [{"sku": "tea", "price": 4, "qty": 3}]}
    arn = str((await engine.invoke("orders:1", json.dumps(order).encode())).durable_execution_arn)
    events = engine.get_history(arn)["Events"]
    names = {op.id: op.name for op in engine.service.operations(arn)}
    assert outline(events, names) == [
        (1, "ExecutionStarted", None, None, None),
        (2, "StepStarted", "validate", None, "Step"),
        (3, "StepSucceeded", "validate", None, "Step"),
        (4, "StepStarted", "reserve_stock", None, "Step"),
        (5, "StepFailed", "reserve_stock", None, "Step"),
        (6, "InvocationCompleted", None, None, None),
        (7, "StepStarted", "reserve_stock", None, "Step"),
        (8, "StepSucceeded", "reserve_stock", None, "Step"),
        (9, "WaitStarted", "fraud-check-window", None, "Wait"),
        (10, "InvocationCompleted", None, None, None),
        (11, "WaitSucceeded", "fraud-check-window", None, "Wait"),
        (12, "ContextStarted", "payment", None, "RunInChildContext"),
        (13, "StepStarted", "charge", "payment", "Step"),
        (14, "StepSucceeded", "charge", "payment", "Step"),
        (15, "StepStarted", "send-confirmation", "payment", "Step"),
        (16, "StepSucceeded", "send-confirmation", "payment", "Step"),
        (17, "ContextSucceeded", "payment", None, "RunInChildContext"),
        (18, "InvocationCompleted", None, None, None),
        (19, "ExecutionSucceeded", None, None, None),
    ]
    details = {e["EventId"]: e[f"{e['EventType']}Details"] for e in events}
    assert details[1] == {
        "Input": {"Payload": json.dumps(order), "Truncated": False},
        "ExecutionTimeout": 31_622_400,
    }
    assert details[5]["RetryDetails"]["CurrentAttempt"] == 1
    assert details[5]["Error"]["Payload"]["ErrorType"] == "ConnectionError"
    assert details[8] == {
        "Result": {"Payload": '"rsv-o-7"', "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 2},
    }
    assert details[9]["Duration"] == 600
    assert details[9]["ScheduledEndTimestamp"] == events[8]["EventTimestamp"] + dt.timedelta(
        seconds=600
    )
    assert details[11] == {"Duration": 600}
    assert details[17] == {"Result": {"Payload": '"ch-o-7"', "Truncated": False}}
    assert json.loads(details[19]["Result"]["Payload"])["charge"] == "ch-o-7"


async def test_multi_step_history() -> None:
    engine = LocalEngine()
    engine.register("multi", load("multi_step").handler)
    arn = str((await engine.invoke("multi:1", b'{"user_id": "u-1"}')).durable_execution_arn)
    events = engine.get_history(arn)["Events"]
    assert outline(events, {}) == [
        (1, "ExecutionStarted", None, None, None),
        (2, "StepStarted", "validate", None, "Step"),
        (3, "StepSucceeded", "validate", None, "Step"),
        (4, "StepStarted", "process", None, "Step"),
        (5, "StepSucceeded", "process", None, "Step"),
        (6, "WaitStarted", "cooldown", None, "Wait"),
        (7, "InvocationCompleted", None, None, None),
        (8, "WaitSucceeded", "cooldown", None, "Wait"),
        (9, "StepStarted", "notify", None, "Step"),
        (10, "StepSucceeded", "notify", None, "Step"),
        (11, "InvocationCompleted", None, None, None),
        (12, "ExecutionSucceeded", None, None, None),
    ]
    assert events[7]["EventTimestamp"] == at(30)
    assert events[6]["InvocationCompletedDetails"]["EndTimestamp"] == at(0)
    assert events[10]["InvocationCompletedDetails"]["StartTimestamp"] == at(30)
