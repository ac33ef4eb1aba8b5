"""Replaying a recorded execution against changed code (the pre-deploy determinism check).

Recordings come from the fake service, in every shape a user can capture from the real one:
the operations (GetDurableExecutionState), the invocation event, the history events
(GetDurableExecutionHistory, JSON with ISO or epoch timestamps), a file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import Driver

from adurable import (
    DurableContext,
    Duration,
    StepConfig,
    StepSemantics,
    WaitForCallbackConfig,
    durable_execution,
)
from adurable._ids import operation_id
from adurable._wire import Operation, OperationStatus, OperationType, StepDetails
from adurable.testing import (
    FakeService,
    LocalRunner,
    RecordedExecution,
    ReplayCheckError,
    ReplayReport,
    operations_from_history,
    replay_execution,
)

pytestmark = pytest.mark.anyio

side_effects: list[str] = []


def effect(label: str, value: Any) -> Any:
    def body(_: Any) -> Any:
        side_effects.append(label)
        return value

    return body


# -- the deployed version and its variations ---------------------------------------------------


@durable_execution
async def v1(event: Any, context: DurableContext) -> int:
    a = await context.step(effect("validate", 1), name="validate")
    b = await context.step(effect("process", 2), name="process")
    await context.wait(Duration.from_seconds(30), name="cooldown")
    c = await context.step(effect("notify", 3), name="notify")
    return a + b + c


@durable_execution
async def renamed(event: Any, context: DurableContext) -> int:
    a = await context.step(effect("validate", 1), name="validate")
    b = await context.step(effect("process", 2), name="process-data")
    await context.wait(Duration.from_seconds(30), name="cooldown")
    c = await context.step(effect("notify", 3), name="notify")
    return a + b + c


@durable_execution
async def reordered(event: Any, context: DurableContext) -> int:
    b = await context.step(effect("process", 2), name="process")
    a = await context.step(effect("validate", 1), name="validate")
    await context.wait(Duration.from_seconds(30), name="cooldown")
    c = await context.step(effect("notify", 3), name="notify")
    return a + b + c


@durable_execution
async def inserted(event: Any, context: DurableContext) -> int:
    a = await context.step(effect("validate", 1), name="validate")
    b = await context.step(effect("process", 2), name="process")
    await context.step(effect("audit", None), name="audit")
    await context.wait(Duration.from_seconds(30), name="cooldown")
    c = await context.step(effect("notify", 3), name="notify")
    return a + b + c


@durable_execution
async def appended(event: Any, context: DurableContext) -> int:
    a = await context.step(effect("validate", 1), name="validate")
    b = await context.step(effect("process", 2), name="process")
    await context.wait(Duration.from_seconds(30), name="cooldown")
    c = await context.step(effect("notify", 3), name="notify")
    await context.step(effect("audit", None), name="audit")
    return a + b + c


@durable_execution
async def truncated(event: Any, context: DurableContext) -> int:
    a = await context.step(effect("validate", 1), name="validate")
    b = await context.step(effect("process", 2), name="process")
    await context.wait(Duration.from_seconds(30), name="cooldown")
    return a + b


@durable_execution
async def retyped(event: Any, context: DurableContext) -> int:
    a = await context.step(effect("validate", 1), name="validate")
    await context.wait(Duration.from_seconds(2), name="process")
    await context.wait(Duration.from_seconds(30), name="cooldown")
    c = await context.step(effect("notify", 3), name="notify")
    return a + c


@durable_execution
async def misreads(event: Any, context: DurableContext) -> int:
    a = await context.step(effect("validate", 1), name="validate")
    b = await context.step(effect("process", {"value": 2}), name="process")  # new shape
    await context.wait(Duration.from_seconds(30), name="cooldown")
    c = await context.step(effect("notify", 3), name="notify")
    return int(a + b["value"] + c)


async def finished_run() -> tuple[FakeService, str]:
    runner = LocalRunner(v1)
    result = await runner.run(input={"order": 7})
    assert result.result == 6
    side_effects.clear()
    return runner.service, result.arn


def iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def epoch(value: Any) -> Any:
    return value.timestamp() if isinstance(value, dt.datetime) else str(value)


def recordings(service: FakeService, arn: str, tmp_path: Path) -> dict[str, Any]:
    """The same finished execution in every shape ``RecordedExecution.load`` reads."""
    ops = service.operations(arn)
    history = service.history(arn)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"Operations": [op.to_wire() for op in ops]}))
    return {
        "operations": ops,
        "state-json": json.dumps({"Operations": [op.to_wire() for op in ops]}),
        "state-epoch": json.loads(
            json.dumps(
                {"Operations": [op.model_dump(by_alias=True, exclude_none=True) for op in ops]},
                default=epoch,
            )
        ),
        "state-file": state_file,
        "state-path-str": str(state_file),
        "history": history,
        "history-iso": json.dumps({"Events": history}, default=iso),
        "history-epoch": json.loads(json.dumps({"Events": history}, default=epoch)),
    }


# -- compatible and incompatible changes against a finished execution -------------------------


async def test_the_same_code_replays_every_recording_shape(tmp_path: Path) -> None:
    service, arn = await finished_run()
    for shape, recording in recordings(service, arn, tmp_path).items():
        report = await replay_execution(v1, recording)
        assert report.ok, shape
        assert report.outcome == "completed", shape
        assert [op.name for op in report.reached] == ["validate", "process", "cooldown", "notify"]
        assert report.unreached == [] and report.new_work == [] and report.notes == []
        assert report.recording.finished
    assert side_effects == []  # replay never runs a recorded step's code


@pytest.mark.parametrize(
    ("changed", "recorded", "current", "position"),
    [
        (renamed, "STEP (Step) 'process'", "STEP (Step) 'process-data'", "#2"),
        (reordered, "STEP (Step) 'validate'", "STEP (Step) 'process'", "#1"),
        (inserted, "WAIT (Wait) 'cooldown'", "STEP (Step) 'audit'", "#3"),
        (retyped, "STEP (Step) 'process'", "WAIT (Wait) 'process'", "#2"),
    ],
    ids=["rename", "reorder", "insert-in-the-middle", "type-change"],
)
async def test_incompatible_changes_fail_naming_the_operation(
    tmp_path: Path, changed: Any, recorded: str, current: str, position: str
) -> None:
    service, arn = await finished_run()
    for shape, recording in recordings(service, arn, tmp_path).items():
        with pytest.raises(ReplayCheckError) as caught:
            await replay_execution(changed, recording)
        message = str(caught.value)
        assert isinstance(caught.value, AssertionError)
        assert f"non-determinism at operation {position} of the handler" in message, shape
        assert f"the recording has {recorded} there" in message, shape
        assert f"the new code asks for {current}" in message, shape
        report = caught.value.report
        assert report.outcome == "failed"
        [mismatch] = report.mismatches
        assert mismatch.recorded is not None
        assert mismatch.operation_id == mismatch.recorded.id
    assert "audit" not in side_effects  # inserted code never ran


async def test_code_appended_after_the_recorded_end_passes_without_running() -> None:
    service, arn = await finished_run()
    report = await replay_execution(appended, service.history(arn))
    assert report.ok
    assert report.outcome == "new work"
    [new] = report.new_work
    assert (new.type, new.name, new.parent_id, new.recorded) == (
        OperationType.STEP,
        "audit",
        None,
        None,
    )
    assert side_effects == []  # stopped before the new step's code
    assert "stopped at new work: STEP (Step) 'audit'" in str(report)


async def test_removed_code_leaves_recorded_operations_unreached() -> None:
    service, arn = await finished_run()
    with pytest.raises(ReplayCheckError, match=r"never reached.*STEP \(Step\) 'notify'"):
        await replay_execution(truncated, service.history(arn))
    report = await replay_execution(truncated, service.history(arn), check=False)
    assert not report.ok
    assert [op.name for op in report.unreached] == ["notify"]
    assert report.notes == ["the result differs from the recorded one: '3' (recorded '6')"]


async def test_code_failing_on_recorded_results_is_reported() -> None:
    service, arn = await finished_run()
    with pytest.raises(ReplayCheckError, match=r"fails while replaying.*TypeError") as caught:
        await replay_execution(misreads, service.operations(arn))
    assert "(the recorded execution is SUCCEEDED)" in str(caught.value)


async def test_a_plain_async_function_can_be_checked() -> None:
    service, arn = await finished_run()

    async def undecorated(event: Any, context: DurableContext) -> int:
        return await context.step(effect("validate", 1), name="validate-v2")

    report = await replay_execution(undecorated, service.history(arn), check=False)
    assert "the recording has STEP (Step) 'validate' there" in report.problems[0]


# -- executions still in flight -----------------------------------------------------------------


@durable_execution
async def approval_v1(event: Any, context: DurableContext) -> Any:
    plan = await context.step(effect("plan", "deploy"), name="plan")
    answer = await context.wait_for_callback(
        lambda callback_id, ctx: side_effects.append("submit"),
        name="approve",
        config=WaitForCallbackConfig(timeout=Duration.from_hours(1)),
    )
    return {"plan": plan, "answer": answer}


@durable_execution
async def approval_appended(event: Any, context: DurableContext) -> Any:
    plan = await context.step(effect("plan", "deploy"), name="plan")
    answer = await context.wait_for_callback(
        lambda callback_id, ctx: side_effects.append("submit"),
        name="approve",
        config=WaitForCallbackConfig(timeout=Duration.from_hours(1)),
    )
    await context.step(effect("execute", None), name="execute")
    return {"plan": plan, "answer": answer}


@durable_execution
async def approval_inserted(event: Any, context: DurableContext) -> Any:
    plan = await context.step(effect("plan", "deploy"), name="plan")
    await context.step(effect("notify", None), name="notify-team")
    answer = await context.wait_for_callback(
        lambda callback_id, ctx: side_effects.append("submit"),
        name="approve",
        config=WaitForCallbackConfig(timeout=Duration.from_hours(1)),
    )
    return {"plan": plan, "answer": answer}


async def waiting_for_approval() -> Driver:
    driver = Driver(approval_v1)
    driver.start({"service": "billing"})
    assert (await driver.invoke())["Status"] == "PENDING"
    side_effects.clear()
    return driver


async def test_in_flight_execution_from_its_invocation_event() -> None:
    driver = await waiting_for_approval()
    event = driver.service.invocation_event(driver.arn)  # what Lambda would hand the handler
    recording = RecordedExecution.load(event)
    assert (recording.source, recording.status, recording.finished) == ("event", "RUNNING", False)
    assert recording.arn == driver.arn
    for handler in (approval_v1, approval_appended):
        report = await replay_execution(handler, event)
        assert report.ok and report.outcome == "suspended", handler.__name__
        assert [op.name for op in report.reached] == [
            "plan",
            "approve",
            "approve create callback id",
            "approve submitter",
        ]
    assert side_effects == []
    with pytest.raises(
        ReplayCheckError, match=r"operation #2 of the handler.*'approve'.*'notify-team'"
    ):
        await replay_execution(approval_inserted, event)


async def test_in_flight_execution_inside_a_child_context() -> None:
    async def body(child: DurableContext, extra: bool) -> str:
        await child.step(effect("authorize", "ok"), name="authorize")
        if extra:
            await child.step(effect("fraud-check", "ok"), name="fraud-check")
        await child.wait(Duration.from_minutes(5), name="settle")
        return "paid"

    def version(extra: bool) -> Any:
        async def payment(child: DurableContext) -> str:
            return await body(child, extra)

        @durable_execution
        async def handler(event: Any, context: DurableContext) -> Any:
            return await context.run_in_child_context(payment, name="payment")

        return handler

    driver = Driver(version(False))
    driver.start()
    await driver.invoke()
    history = driver.service.history(driver.arn)
    assert (await replay_execution(version(False), history)).outcome == "suspended"
    with pytest.raises(ReplayCheckError) as caught:
        await replay_execution(version(True), history)
    assert "operation #2 of context 'payment'" in str(caught.value)
    assert "WAIT (Wait) 'settle' there, the new code asks for STEP (Step) 'fraud-check'" in str(
        caught.value
    )


async def test_removing_code_of_an_in_flight_execution_is_only_a_note() -> None:
    driver = await waiting_for_approval()

    @durable_execution
    async def no_approval(event: Any, context: DurableContext) -> Any:
        return {"plan": await context.step(effect("plan", "deploy"), name="plan")}

    report = await replay_execution(no_approval, driver.service.operations(driver.arn))
    assert report.ok and report.outcome == "completed"
    assert report.notes == [
        "recorded operation(s) not reached: CONTEXT (WaitForCallback) 'approve' at operation #2 "
        "of the handler; CALLBACK (Callback) 'approve create callback id' at operation #1 of "
        "context 'approve'; STEP (Step) 'approve submitter' at operation #2 of context 'approve'"
    ]


async def test_a_recorded_started_step_is_new_work_and_its_code_does_not_run() -> None:
    """A crash mid-step leaves it STARTED: replay stops there instead of re-running it."""
    step = Operation(
        id=operation_id(None, 1),
        name="charge",
        type=OperationType.STEP,
        sub_type="Step",
        status=OperationStatus.STARTED,
        step_details=StepDetails(attempt=0),
    )
    execution = {"Id": "exec-1", "Type": "EXECUTION", "Status": "STARTED", "StartTimestamp": 0}

    @durable_execution
    async def charge(event: Any, context: DurableContext) -> Any:
        config = StepConfig(step_semantics=StepSemantics.AT_LEAST_ONCE_PER_RETRY)
        return await context.step(effect("charge", "ch-1"), name="charge", config=config)

    report = await replay_execution(charge, {"Operations": [execution, step.to_wire()]})
    assert report.ok and report.outcome == "new work"
    assert report.new_work[0].recorded == step
    assert "recorded STARTED: its code would run again" in str(report)
    assert [op.name for op in report.reached] == ["charge"]
    assert side_effects == []


# -- recordings ---------------------------------------------------------------------------------


async def test_history_rebuilds_the_service_operations() -> None:
    @durable_execution
    async def everything(event: Any, context: DurableContext) -> Any:
        tries: list[int] = []

        def flaky(step: Any) -> str:
            tries.append(step.attempt)
            if step.attempt < 2:
                raise ConnectionError("again")
            return "ok"

        await context.step(flaky, name="flaky")
        await context.wait(Duration.from_seconds(3), name="nap")

        async def inner(child: DurableContext) -> int:
            return await child.step(lambda _: 1, name="in")

        await context.run_in_child_context(inner, name="ctx")
        with contextlib.suppress(Exception):
            await context.wait_for_callback(
                lambda callback_id, ctx: None,
                name="cb",
                config=WaitForCallbackConfig(timeout=Duration.from_seconds(10)),
            )
        return await context.invoke("target:$LATEST", {"x": 1}, name="call")

    runner = LocalRunner(everything)
    runner.register("target", lambda event, ctx: event)
    result = await runner.run(time_out_callbacks=True)
    assert result.status == "SUCCEEDED"
    history = runner.service.history(result.arn)

    def essentials(op: Operation) -> Any:
        return op.model_dump(exclude={"start_timestamp", "end_timestamp"})

    rebuilt = operations_from_history(history)
    assert [essentials(op) for op in rebuilt] == [
        essentials(op.model_copy(update={"status": OperationStatus.SUCCEEDED}))
        if op.type is OperationType.EXECUTION
        else essentials(op)
        for op in result.operations
    ]
    by_id = {op.id: op for op in result.operations}
    assert all(op.start_timestamp == by_id[op.id].start_timestamp for op in rebuilt)
    recording = RecordedExecution.load(history)
    assert (recording.status, recording.result) == ("SUCCEEDED", '{"x": 1}')
    assert (await replay_execution(everything, recording)).ok


async def test_history_of_a_failed_execution() -> None:
    @durable_execution
    async def failing(event: Any, context: DurableContext) -> Any:
        await context.step(lambda _: 1, name="one")
        raise RuntimeError("boom")

    @durable_execution
    async def failing_differently(event: Any, context: DurableContext) -> Any:
        await context.step(lambda _: 1, name="one")
        raise KeyError("other")

    runner = LocalRunner(failing)
    result = await runner.run()
    recording = RecordedExecution.load(runner.service.history(result.arn))
    assert recording.status == "FAILED" and recording.error is not None
    assert recording.error.error_type == "RuntimeError"
    assert (await replay_execution(failing, recording)).ok
    with pytest.raises(
        ReplayCheckError, match=r"fails differently: KeyError.*\(recorded RuntimeError\)"
    ):
        await replay_execution(failing_differently, recording)


async def test_recordings_that_cannot_be_replayed_are_refused(tmp_path: Path) -> None:
    service, arn = await finished_run()
    history = service.history(arn)
    succeeded = next(e for e in history if e["EventType"] == "StepSucceeded")
    succeeded["StepSucceededDetails"]["Result"] = {"Truncated": True}
    with pytest.raises(ValueError, match="IncludeExecutionData=true"):
        RecordedExecution.load(history)
    with pytest.raises(ValueError, match="NextMarker"):
        RecordedExecution.load({"Events": [], "NextMarker": "x"})
    with pytest.raises(ValueError, match="NextMarker"):
        RecordedExecution.load({"Operations": [], "NextMarker": "x"})
    with pytest.raises(ValueError, match="not a recording"):
        RecordedExecution.load({"Items": []})
    with pytest.raises(ValueError, match="not valid JSON"):
        RecordedExecution.load("{nope")
    with pytest.raises(ValueError, match="cannot read the recording"):
        RecordedExecution.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="operation 0 of the recording is malformed"):
        RecordedExecution.load({"Operations": [{"Id": "x"}]})
    with pytest.raises(TypeError, match="cannot read a recording"):
        RecordedExecution.load(42)  # type: ignore[arg-type]


async def test_report_is_readable() -> None:
    service, arn = await finished_run()
    report: ReplayReport = await replay_execution(renamed, service.history(arn), check=False)
    text = str(report)
    assert text.splitlines()[0].endswith(
        "(history, recorded SUCCEEDED, 4 operations): NOT DETERMINISTIC / INCOMPATIBLE — failed, "
        "1 recorded operations replayed"
    )
    assert text.splitlines()[1].startswith("  problem: non-determinism at operation #2")


async def test_replay_children_is_inferred_from_histories() -> None:
    async def big(child: DurableContext) -> str:
        return await child.step(lambda _: "y" * 300_000, name="huge")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        return len(await context.run_in_child_context(big, name="big"))

    runner = LocalRunner(handler)
    result = await runner.run()
    recording = RecordedExecution.load(runner.service.history(result.arn))
    [context] = [op for op in recording.operations if op.name == "big"]
    assert context.context_details is not None and context.context_details.replay_children
    report = await replay_execution(handler, recording)
    # the body re-runs on replay (ReplayChildren), so the step inside is reached too
    assert [op.name for op in report.reached] == ["big", "huge"]


def parallel_version(extra_step: bool, appended_step: bool) -> Any:
    async def branch(ctx: DurableContext, label: str) -> str:
        await ctx.step(effect(f"{label}-fetch", label), name=f"{label}-fetch")
        if extra_step and label == "b":
            await ctx.step(effect("b-extra", None), name="b-extra")
        await ctx.wait(Duration.from_minutes(1), name=f"{label}-wait")
        if appended_step:
            await ctx.step(effect(f"{label}-after", None), name=f"{label}-after")
        return label

    async def a(ctx: DurableContext) -> str:
        return await branch(ctx, "a")

    async def b(ctx: DurableContext) -> str:
        return await branch(ctx, "b")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        results = await context.parallel([a, b], name="both")
        return results.get_results()

    return handler


async def test_in_flight_parallel_branches() -> None:
    driver = Driver(parallel_version(False, False))
    driver.start()
    assert (await driver.invoke())["Status"] == "PENDING"
    history = driver.service.history(driver.arn)
    side_effects.clear()
    for handler in (parallel_version(False, False), parallel_version(False, True)):
        report = await replay_execution(handler, history)
        assert report.outcome == "suspended"
        assert {op.name for op in report.reached} >= {
            "both",
            "a-fetch",
            "a-wait",
            "b-fetch",
            "b-wait",
        }
        assert report.unreached == []
    assert side_effects == []
    with pytest.raises(ReplayCheckError, match="asks for STEP \\(Step\\) 'b-extra'"):
        await replay_execution(parallel_version(True, False), history)


@pytest.mark.parametrize(
    ("example", "event"),
    [
        ("order_workflow", {"order_id": "o-1", "items": [{"sku": "a", "price": 2, "qty": 1}]}),
        ("multi_step", {"user_id": "u-1"}),
        ("agent_loop", {"prompt": "weather?"}),
        ("saga", {"fail": ["car"]}),
        ("map_fanout", {"items": [{"id": i, "value": i, "broken": i == 3} for i in range(10)]}),
        ("parallel_branches", {}),
    ],
)
async def test_every_example_replays_its_own_history(example: str, event: Any) -> None:
    from tests.test_examples import load

    handler = load(example).handler
    runner = LocalRunner(handler)
    result = await runner.run(input=event)
    assert result.status == "SUCCEEDED"
    for recording in (runner.service.history(result.arn), result.operations):
        report = await replay_execution(handler, recording)
        assert report.outcome == "completed" and report.unreached == []


async def test_completing_a_recorded_started_context_is_refused_new_work() -> None:
    """A crash after a context's last child but before its SUCCEED leaves it STARTED."""

    async def body(child: DurableContext) -> str:
        return await child.step(effect("inner", "done"), name="inner")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        return await context.run_in_child_context(body, name="ctx")

    result = await LocalRunner(handler).run()
    side_effects.clear()
    operations = [
        op.model_copy(update={"status": OperationStatus.STARTED, "end_timestamp": None})
        if op.type in (OperationType.CONTEXT, OperationType.EXECUTION)
        else op
        for op in result.operations
    ]
    report = await replay_execution(handler, operations)
    assert report.ok and report.outcome == "new work"
    [new] = report.new_work
    assert (new.name, new.action, new.recorded) == ("ctx", "SUCCEED", operations[1])
    assert "stopped at new work: CONTEXT (RunInChildContext) 'ctx' (SUCCEED, recorded STARTED)" in (
        str(report)
    )
    assert side_effects == []


async def test_a_handler_that_is_not_adurable_is_checked_by_its_checkpoints() -> None:
    service, arn = await finished_run()

    class Raw:
        async def run(self, event: Any, lambda_context: Any, *, client: Any) -> Any:
            return {"Status": "SUCCEEDED", "Result": "6"}

    report = await replay_execution(Raw(), service.history(arn))
    assert report.ok and report.outcome == "completed"
    assert report.notes[0].startswith("the replay's lookups could not be observed")
