"""Result views: one status enum for executions and operations, operations by name, history."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
from typing import Any

import pytest

from adurable import (
    CallbackConfig,
    DurableContext,
    Duration,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    create_retry_strategy,
    durable_execution,
)
from adurable._wire import Operation, OperationStatus, OperationType, StepDetails
from adurable.testing import (
    ExecutionResult,
    InvocationStatus,
    LocalRunner,
    OperationView,
)
from adurable.testing.pytest_plugin import DurableTestRunner

pytestmark = pytest.mark.anyio

flaky_calls: list[int] = []


@durable_execution
async def workflow(event: Any, context: DurableContext) -> dict[str, Any]:
    def flaky(step: Any) -> dict[str, Any]:
        flaky_calls.append(step.attempt)
        if step.attempt < 2:
            raise ConnectionError("try again")
        return {"when": dt.date(2026, 1, 2), "amount": decimal.Decimal("1.50"), "pair": (1, 2)}

    retry = StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(max_attempts=3, initial_delay=Duration.from_seconds(1))
        )
    )
    data = await context.step(flaky, name="flaky", config=retry)
    await context.wait(Duration.from_seconds(5), name="pause")

    async def payment(child: DurableContext) -> str:
        await child.step(lambda _: "ok", name="authorize")
        return await child.step(lambda _: "ch-1", name="charge")

    charge = await context.run_in_child_context(payment, name="payment")
    with contextlib.suppress(Exception):
        await context.step(
            lambda _: (_ for _ in ()).throw(ValueError("declined")),
            name="doomed",
            config=StepConfig(retry_strategy=RetryPresets.none()),
        )
    callback = await context.create_callback(
        name="approval", config=CallbackConfig(timeout=Duration.from_minutes(1))
    )
    answer = await callback.result()
    return {"charge": charge, "pair": list(data["pair"]), "answer": answer}


async def run_to_the_callback() -> tuple[LocalRunner, ExecutionResult]:
    runner = LocalRunner(workflow)
    return runner, await runner.run(input={"order": 1})


async def test_execution_and_operation_statuses_share_one_enum() -> None:
    runner, waiting = await run_to_the_callback()
    assert waiting.status is InvocationStatus.RUNNING
    callback = waiting.get_callback("approval")
    assert callback.status is InvocationStatus.STARTED
    assert callback.callback_id is not None
    runner.service.send_callback_success(callback.callback_id, b'{"ok": true}')
    result = await runner.resume(waiting.arn)
    assert result.status is InvocationStatus.SUCCEEDED
    assert result.get_step("flaky").status is InvocationStatus.SUCCEEDED
    assert result.get_wait("pause").status is InvocationStatus.SUCCEEDED
    assert result.get_context("payment").status is InvocationStatus.SUCCEEDED
    assert result.get_step("doomed").status is InvocationStatus.FAILED
    assert result.get_callback("approval").status is InvocationStatus.SUCCEEDED
    # A StrEnum: strings, .value and the wire enum all still compare equal.
    assert result.status == "SUCCEEDED"
    assert result.get_step("flaky").status == "SUCCEEDED"
    assert result.get_step("flaky").status.value == "SUCCEEDED"
    assert result.get_step("flaky").status == OperationStatus.SUCCEEDED
    assert result.result == {"charge": "ch-1", "pair": [1, 2], "answer": '{"ok": true}'}


async def test_every_status_of_the_wire_has_a_member() -> None:
    for status in OperationStatus:
        assert InvocationStatus(status.value).value == status.value
    assert {s.value for s in InvocationStatus} == {s.value for s in OperationStatus} | {"RUNNING"}


async def test_step_view_results_errors_and_attempts() -> None:
    flaky_calls.clear()
    _, waiting = await run_to_the_callback()
    flaky = waiting.get_step("flaky")
    assert isinstance(flaky, OperationView)
    assert flaky_calls == [1, 2]
    assert flaky.attempt == 2
    assert flaky.step_details is not None and flaky.step_details.attempt == 2  # fall-through
    # decoded with the SDK's own step format: dates, decimals and tuples come back as such
    assert flaky.result == {
        "when": dt.date(2026, 1, 2),
        "amount": decimal.Decimal("1.50"),
        "pair": (1, 2),
    }
    assert flaky.raw_result is not None and flaky.raw_result.startswith('{"t":"m"')
    assert flaky.error is None
    doomed = waiting.get_step("doomed")
    assert doomed.result is None
    assert doomed.error is not None
    assert (doomed.error.error_type, doomed.error.error_message) == ("ValueError", "declined")
    assert doomed.attempt == 1
    assert (doomed.type, doomed.sub_type, doomed.parent_id) == (OperationType.STEP, "Step", None)
    assert doomed.start_timestamp is not None and doomed.end_timestamp is not None


async def test_wait_and_callback_views() -> None:
    _, waiting = await run_to_the_callback()
    pause = waiting.get_wait("pause")
    assert pause.wait_details is not None
    assert pause.wait_details.scheduled_end_timestamp == pause.start_timestamp + dt.timedelta(
        seconds=5
    )
    assert pause.result is None and pause.attempt is None and pause.callback_id is None
    callback = waiting.get_callback("approval")
    assert callback.result is None
    assert callback.callback_details is not None
    assert callback.callback_id == callback.callback_details.callback_id


async def test_context_children_and_lookup_inside_a_context() -> None:
    _, waiting = await run_to_the_callback()
    payment = waiting.get_context("payment")
    assert payment.result == "ch-1"
    assert [(c.name, c.parent_id) for c in payment.children] == [
        ("authorize", payment.id),
        ("charge", payment.id),
    ]
    assert payment.get_step("charge").result == "ch-1"
    assert payment.get_operation("authorize").result == "ok"
    assert [d.name for d in payment.descendants()] == ["authorize", "charge"]
    with pytest.raises(KeyError, match=r"no STEP operation named 'flaky' inside CONTEXT 'payment'"):
        payment.get_step("flaky")
    assert waiting.get_step("flaky").children == []


async def test_unknown_names_list_the_known_ones() -> None:
    _, waiting = await run_to_the_callback()
    with pytest.raises(KeyError, match=r"no operation named 'nope'; named operations: 'flaky'"):
        waiting.get_operation("nope")
    with pytest.raises(KeyError, match="no CHAINED_INVOKE operation named 'flaky'"):
        waiting.get_invoke("flaky")


async def test_views_compare_and_print() -> None:
    _, waiting = await run_to_the_callback()
    assert waiting.get_step("flaky") == waiting.get_operation("flaky")
    assert waiting.get_step("flaky") != waiting.get_wait("pause")
    assert len({waiting.get_step("flaky"), waiting.get_operation("flaky")}) == 1
    assert repr(waiting.get_wait("pause")).startswith("<OperationView WAIT(Wait) 'pause' SUCCEEDED")
    assert repr(waiting).startswith("ExecutionResult(arn='arn:aws:lambda:")
    with pytest.raises(AttributeError):
        _ = waiting.get_step("flaky").no_such_field


@durable_execution
async def caller(event: Any, context: DurableContext) -> Any:
    return await context.invoke("target:$LATEST", {"x": 1}, name="call")


async def test_invoke_view() -> None:
    runner = LocalRunner(caller)
    runner.register("target", lambda event, ctx: {"echo": event})
    result = await runner.run()
    call = result.get_invoke("call")
    assert call.status is InvocationStatus.SUCCEEDED
    assert call.result == {"echo": {"x": 1}}  # plain JSON (the invoke payload format)
    assert call.raw_result == '{"echo": {"x": 1}}'


def test_payloads_that_are_not_json_stay_strings() -> None:
    op = Operation(
        id="1",
        type=OperationType.STEP,
        status=OperationStatus.SUCCEEDED,
        step_details=StepDetails(attempt=1, result="not json"),
    )
    assert OperationView(op).result == "not json"


def test_execution_result_accepts_plain_status_strings() -> None:
    result = ExecutionResult(
        arn="a", status="TIMED_OUT", result=None, error=None, operations=[], invocations=1
    )
    assert result.status is InvocationStatus.TIMED_OUT
    assert result.history == [] and result.invocation_errors == []
    same = ExecutionResult("a", InvocationStatus.TIMED_OUT, None, None, [], 1)
    assert result == same
    with pytest.raises(ValueError):
        ExecutionResult("a", "DONE", None, None, [], 1)


async def test_history_rides_on_the_result() -> None:
    runner = DurableTestRunner(workflow)
    waiting = await runner.run(input={"order": 1})
    events = waiting.history
    assert events == runner.service.history(waiting.arn)
    assert events[0]["EventType"] == "ExecutionStarted"
    assert [e["EventType"] for e in events if e.get("Name") == "approval"] == ["CallbackStarted"]
