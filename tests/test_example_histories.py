"""The history (PROTOCOL §14) of every example, compared with the events §14 says it must have.

The expected lists are written from the protocol, not from the engine's output: event types in
the order §14.3 gives them (one event per START/SUCCEED/FAIL/RETRY, service transitions, one
InvocationCompleted per invocation, execution start and end), operation ids from the §5.1
algorithm (re-implemented below), parents, names and subtypes from §4.1, and the details that
carry meaning: payloads in the §10.2 format, RetryDetails, wait durations and deadlines,
callback timeouts, invocation records. Concurrent examples (map, parallel) only have a partial
order across branches, so their checks are per branch plus what must hold globally.
"""

from __future__ import annotations

import datetime as dt
import json
from hashlib import blake2b
from typing import Any

import pytest
from tests.test_examples import load

from adurable.testing import ExecutionResult, LocalRunner

pytestmark = pytest.mark.anyio

Shape = tuple[str, str | None, str | None, str | None, str | None]


def op_id(prefix: str | None, position: int) -> str:
    """§5.1: blake2b hex (64-byte digest) of "n" at root, "<parent>-<n>" below, first 64 chars."""
    raw = f"{prefix}-{position}" if prefix else str(position)
    return blake2b(raw.encode()).hexdigest()[:64]


def branch_id(container: str, index: int) -> str:
    """§5.1: map/parallel branches use the 0-based index."""
    return blake2b(f"{container}-{index}".encode()).hexdigest()[:64]


def shape(event: dict[str, Any]) -> Shape:
    return (
        event["EventType"],
        event.get("Id"),
        event.get("ParentId"),
        event.get("Name"),
        event.get("SubType"),
    )


def details(event: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = event[f"{event['EventType']}Details"]
    return value


def step(name: str, id: str, parent: str | None = None, sub: str = "Step") -> list[Shape]:
    """StepStarted + StepSucceeded (a START+SUCCEED batch still gives two events, §14.3)."""
    return [("StepStarted", id, parent, name, sub), ("StepSucceeded", id, parent, name, sub)]


INVOCATION: Shape = ("InvocationCompleted", None, None, None, None)


def execution(arn: str, kind: str) -> Shape:
    return (kind, arn.rsplit("/", 1)[-1], None, None, None)


def check_envelope(result: ExecutionResult, history: list[dict[str, Any]], input: Any) -> None:
    """What every history must satisfy, whatever the handler did (§14.1, §14.2)."""
    assert [e["EventId"] for e in history] == list(range(1, len(history) + 1))
    times = [e["EventTimestamp"] for e in history]
    assert all(isinstance(t, dt.datetime) and t.tzinfo is not None for t in times)
    assert times == sorted(times), "events are chronological"
    for event in history:
        assert [k for k in event if k.endswith("Details")] == [f"{event['EventType']}Details"]
        if event["EventType"] == "InvocationCompleted":
            assert "Id" not in event and "SubType" not in event
        if event["EventType"].startswith("Execution"):
            assert "SubType" not in event and "Name" not in event and "ParentId" not in event
    started = details(history[0])
    assert history[0]["EventType"] == "ExecutionStarted"
    assert started["Input"] == {"Payload": json.dumps(input), "Truncated": False}
    assert isinstance(started["ExecutionTimeout"], int)
    assert 1 <= started["ExecutionTimeout"] <= 31_622_400
    invocations = [details(e) for e in history if e["EventType"] == "InvocationCompleted"]
    assert len(invocations) == result.invocations
    assert len({i["RequestId"] for i in invocations}) == len(invocations)
    for record in invocations:
        assert record["RequestId"] and "Error" not in record
        assert record["StartTimestamp"] <= record["EndTimestamp"]
    last = history[-1]
    if result.status == "SUCCEEDED":
        assert last["EventType"] == "ExecutionSucceeded"
        assert details(last) == {
            "Result": {"Payload": json.dumps(result.result), "Truncated": False}
        }
    for event in history:
        if event["EventType"] in ("StepSucceeded", "StepFailed"):
            assert details(event)["RetryDetails"]["CurrentAttempt"] >= 1


def at(history: list[dict[str, Any]], index: int) -> float:
    """Seconds between the execution's start and event ``index`` (1-based EventId)."""
    start: dt.datetime = history[0]["EventTimestamp"]
    return (history[index - 1]["EventTimestamp"] - start).total_seconds()


# ---------------------------------------------------------------------------- sequential


async def test_multi_step() -> None:
    event = {"user_id": "u-1"}
    runner = LocalRunner(load("multi_step").handler)
    result = await runner.run(input=event)
    history = runner.service.history(result.arn)
    check_envelope(result, history, event)
    assert [shape(e) for e in history] == [
        execution(result.arn, "ExecutionStarted"),
        *step("validate", op_id(None, 1)),
        *step("process", op_id(None, 2)),
        ("WaitStarted", op_id(None, 3), None, "cooldown", "Wait"),
        INVOCATION,  # suspended on the wait
        ("WaitSucceeded", op_id(None, 3), None, "cooldown", "Wait"),
        *step("notify", op_id(None, 4)),
        INVOCATION,
        execution(result.arn, "ExecutionSucceeded"),
    ]
    assert details(history[2]) == {
        "Result": {"Payload": '{"t":"m","v":{"user_id":{"t":"s","v":"u-1"}}}', "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 1},
    }
    assert details(history[4])["Result"] == {
        "Payload": '{"t":"m","v":{"user_id":{"t":"s","v":"u-1"},"score":{"t":"i","v":30}}}',
        "Truncated": False,
    }
    wait = details(history[5])
    assert wait == {
        "Duration": 30,
        "ScheduledEndTimestamp": history[5]["EventTimestamp"] + dt.timedelta(seconds=30),
    }
    assert details(history[7]) == {"Duration": 30}
    assert details(history[9]) == {
        "Result": {"Payload": '"sent to u-1"', "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 1},
    }
    assert [at(history, i) for i in (6, 7, 8, 12)] == [0, 0, 30, 30]  # the wait took 30 s
    first, second = (details(e) for e in history if e["EventType"] == "InvocationCompleted")
    assert first["EndTimestamp"] == history[0]["EventTimestamp"]
    assert second["StartTimestamp"] == history[7]["EventTimestamp"]


async def test_order_workflow() -> None:
    event = {"order_id": "o-1", "items": [{"sku": "tea", "price": 2, "qty": 3}]}
    runner = LocalRunner(load("order_workflow").handler)
    result = await runner.run(input=event)
    history = runner.service.history(result.arn)
    check_envelope(result, history, event)
    payment = op_id(None, 4)
    assert [shape(e) for e in history] == [
        execution(result.arn, "ExecutionStarted"),
        *step("validate", op_id(None, 1)),
        ("StepStarted", op_id(None, 2), None, "reserve_stock", "Step"),
        ("StepFailed", op_id(None, 2), None, "reserve_stock", "Step"),  # RETRY with an Error
        INVOCATION,  # suspended until the retry is due
        *step("reserve_stock", op_id(None, 2)),
        ("WaitStarted", op_id(None, 3), None, "fraud-check-window", "Wait"),
        INVOCATION,
        ("WaitSucceeded", op_id(None, 3), None, "fraud-check-window", "Wait"),
        ("ContextStarted", payment, None, "payment", "RunInChildContext"),
        *step("charge", op_id(payment, 1), payment),
        *step("send-confirmation", op_id(payment, 2), payment),
        ("ContextSucceeded", payment, None, "payment", "RunInChildContext"),
        INVOCATION,
        execution(result.arn, "ExecutionSucceeded"),
    ]
    retry = details(history[4])
    delay = retry["RetryDetails"]["NextAttemptDelaySeconds"]
    assert 1 <= delay <= 2  # 2 s with full jitter, never below 1 s (§7.2)
    assert retry == {
        "Error": {
            "Payload": {"ErrorType": "ConnectionError", "ErrorMessage": "warehouse unavailable"},
            "Truncated": False,
        },
        "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": delay},
    }
    assert details(history[7]) == {
        "Result": {"Payload": '"rsv-o-1"', "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 2},  # the attempt that succeeded
    }
    assert at(history, 7) == delay  # re-invoked when the retry was due
    assert details(history[8])["Duration"] == 600
    assert at(history, 11) == delay + 600
    assert details(history[13])["Result"] == {"Payload": '"ch-o-1"', "Truncated": False}
    assert details(history[15])["Result"] == {"Payload": "null", "Truncated": False}
    assert details(history[16]) == {"Result": {"Payload": '"ch-o-1"', "Truncated": False}}


async def test_saga_compensates() -> None:
    event = {"fail": ["car"]}
    runner = LocalRunner(load("saga").handler)
    result = await runner.run(input=event)
    history = runner.service.history(result.arn)
    check_envelope(result, history, event)
    assert [shape(e) for e in history] == [
        execution(result.arn, "ExecutionStarted"),
        *step("book-flight", op_id(None, 1)),
        *step("book-hotel", op_id(None, 2)),
        ("StepStarted", op_id(None, 3), None, "book-car", "Step"),
        ("StepFailed", op_id(None, 3), None, "book-car", "Step"),
        *step("cancel-hotel", op_id(None, 4)),
        *step("cancel-flight", op_id(None, 5)),
        INVOCATION,
        execution(result.arn, "ExecutionSucceeded"),
    ]
    assert details(history[6]) == {  # the final FAIL: no delay (§14.3)
        "Error": {
            "Payload": {"ErrorType": "RuntimeError", "ErrorMessage": "no car available"},
            "Truncated": False,
        },
        "RetryDetails": {"CurrentAttempt": 1},
    }
    assert details(history[8])["Result"] == {"Payload": '"cancelled hotel"', "Truncated": False}


async def test_agent_loop() -> None:
    event = {"prompt": "weather?"}
    runner = LocalRunner(load("agent_loop").handler)
    result = await runner.run(input=event)
    history = runner.service.history(result.arn)
    check_envelope(result, history, event)
    assert [shape(e) for e in history] == [
        execution(result.arn, "ExecutionStarted"),
        *step("invoke-model-1", op_id(None, 1)),
        *step("tool-weather-1", op_id(None, 2)),
        *step("invoke-model-2", op_id(None, 3)),
        INVOCATION,
        execution(result.arn, "ExecutionSucceeded"),
    ]
    assert details(history[2])["Result"] == {
        "Payload": '{"t":"m","v":{"tool":{"t":"m","v":{"name":{"t":"s","v":"weather"},'
        '"city":{"t":"s","v":"Lisbon"}}},"response":{"t":"n","v":null}}}',
        "Truncated": False,
    }
    assert details(history[4])["Result"] == {"Payload": '"sunny"', "Truncated": False}


async def test_human_approval() -> None:
    example = load("human_approval")
    event = {"service": "billing", "approver_email": "lead@example.com"}
    runner = LocalRunner(example.handler)
    waiting = await runner.run(input=event)
    _, callback_id = example.outbox[-1]
    runner.service.send_callback_success(callback_id, b'"APPROVED"')
    result = await runner.resume(waiting.arn)
    history = runner.service.history(result.arn)
    check_envelope(result, history, event)
    approval = op_id(None, 2)
    assert [shape(e) for e in history] == [
        execution(result.arn, "ExecutionStarted"),
        *step("generate-plan", op_id(None, 1)),
        # §14.3 wait_for_callback: context, callback, submitter step, suspension, callback...
        ("ContextStarted", approval, None, "wait-for-approval", "WaitForCallback"),
        (
            "CallbackStarted",
            op_id(approval, 1),
            approval,
            "wait-for-approval create callback id",
            "Callback",
        ),
        *step("wait-for-approval submitter", op_id(approval, 2), approval),
        INVOCATION,
        (
            "CallbackSucceeded",
            op_id(approval, 1),
            approval,
            "wait-for-approval create callback id",
            "Callback",
        ),
        ("ContextSucceeded", approval, None, "wait-for-approval", "WaitForCallback"),
        *step("execute", op_id(None, 3)),
        INVOCATION,
        execution(result.arn, "ExecutionSucceeded"),
    ]
    # 24 h timeout, no heartbeat: HeartbeatTimeout is left out rather than sent as 0
    assert details(history[4]) == {"CallbackId": callback_id, "Timeout": 86_400}
    # the raw body
    assert details(history[8]) == {"Result": {"Payload": '"APPROVED"', "Truncated": False}}
    # the container's result is the callback's text, written with the step format (§10.2)
    assert details(history[9]) == {
        "Result": {"Payload": json.dumps('"APPROVED"'), "Truncated": False}
    }


# ---------------------------------------------------------------------------- concurrent


def branch_events(history: list[dict[str, Any]], branch: str) -> list[Shape]:
    return [shape(e) for e in history if branch in (e.get("Id"), e.get("ParentId"))]


async def test_parallel_branches() -> None:
    runner = LocalRunner(load("parallel_branches").handler)
    result = await runner.run(input={})
    history = runner.service.history(result.arn)
    check_envelope(result, history, {})
    fetch_all = op_id(None, 1)
    profile, orders = branch_id(fetch_all, 0), branch_id(fetch_all, 1)
    assert [shape(e) for e in history[:2]] == [
        execution(result.arn, "ExecutionStarted"),
        ("ContextStarted", fetch_all, None, "fetch-all", "Parallel"),
    ]
    assert [shape(e) for e in history[-3:]] == [
        ("ContextSucceeded", fetch_all, None, "fetch-all", "Parallel"),
        INVOCATION,
        execution(result.arn, "ExecutionSucceeded"),
    ]
    # NESTED: each branch is a ParallelBranch context under the container (§14.3)
    assert branch_events(history, profile) == [
        ("ContextStarted", profile, fetch_all, "profile", "ParallelBranch"),
        *step("fetch-profile", op_id(profile, 1), profile),
        ("ContextSucceeded", profile, fetch_all, "profile", "ParallelBranch"),
    ]
    assert branch_events(history, orders) == [
        ("ContextStarted", orders, fetch_all, "orders", "ParallelBranch"),
        *step("fetch-orders", op_id(orders, 1), orders),
        ("ContextSucceeded", orders, fetch_all, "orders", "ParallelBranch"),
    ]
    assert len(history) == 2 + 4 + 4 + 3
    by_name = {(e["EventType"], e.get("Name")): details(e) for e in history}
    assert by_name["StepSucceeded", "fetch-orders"]["Result"] == {
        "Payload": "[101,102]",
        "Truncated": False,
    }
    assert by_name["ContextSucceeded", "profile"]["Result"] == {
        "Payload": '{"t":"m","v":{"name":{"t":"s","v":"Jane"}}}',
        "Truncated": False,
    }
    container = json.loads(by_name["ContextSucceeded", "fetch-all"]["Result"]["Payload"])
    assert container["t"] == "br"  # the BatchResult envelope (§10.2)


async def test_map_fanout() -> None:
    items = [{"id": i, "value": i, "broken": i == 3} for i in range(10)]
    runner = LocalRunner(load("map_fanout").handler)
    result = await runner.run(input={"items": items})
    history = runner.service.history(result.arn)
    check_envelope(result, history, {"items": items})
    container = op_id(None, 1)
    assert [shape(e) for e in history[:2]] == [
        execution(result.arn, "ExecutionStarted"),
        ("ContextStarted", container, None, "process-items", "Map"),
    ]
    assert [shape(e) for e in history[-3:]] == [
        ("ContextSucceeded", container, None, "process-items", "Map"),
        INVOCATION,
        execution(result.arn, "ExecutionSucceeded"),
    ]
    outcomes: dict[str, int] = {"succeeded": 0, "failed": 0, "abandoned": 0, "not started": 0}
    started_at: list[int] = []
    for index in range(10):
        item = branch_id(container, index)
        events = branch_events(history, item)
        if not events:  # completion came before it was admitted (admission is in order)
            outcomes["not started"] += 1
            continue
        assert not outcomes["not started"], "items start in index order"
        name, inner = f"map-item-{index}", op_id(item, 1)
        opened = [
            ("ContextStarted", item, container, name, "MapIteration"),
            ("StepStarted", inner, item, f"process-{index}", "Step"),
        ]
        assert events[:2] == opened, index
        started_at.append(next(e["EventId"] for e in history if e.get("Id") == item))
        if index == 3:
            closing = [
                ("StepFailed", inner, item, "process-3", "Step"),
                ("ContextFailed", item, container, name, "MapIteration"),
            ]
        else:
            closing = [
                ("StepSucceeded", inner, item, f"process-{index}", "Step"),
                ("ContextSucceeded", item, container, name, "MapIteration"),
            ]
        # A branch still running when the map completed stops where it was (§7.9.5).
        assert events[2:] == closing[: len(events) - 2], index
        if len(events) < 4:
            outcomes["abandoned"] += 1
        else:
            outcomes["failed" if index == 3 else "succeeded"] += 1
    assert started_at == sorted(started_at), "items start in index order"
    # max_concurrency=5: the sixth item starts only after one of the first five finished
    sixth = started_at[5]
    finished_before = {
        e["Id"]
        for e in history[: sixth - 1]
        if e["EventType"] in ("ContextSucceeded", "ContextFailed")
    }
    assert finished_before & {branch_id(container, i) for i in range(5)}
    # Outcomes count when their SUCCEED/FAIL is queued, so the BatchResult agrees with the
    # record: what it counts is recorded, and what is recorded as ended is counted.
    assert outcomes["succeeded"] == result.result["succeeded"] >= 8
    assert outcomes["failed"] == result.result["failed"]
    assert sum(outcomes.values()) == 10
    for failed in (details(e) for e in history if e["EventType"] == "StepFailed"):
        assert failed == {
            "Error": {
                "Payload": {"ErrorType": "ValueError", "ErrorMessage": "item 3 is broken"},
                "Truncated": False,
            },
            "RetryDetails": {"CurrentAttempt": 1},  # RetryPresets.none(): failed at once
        }
