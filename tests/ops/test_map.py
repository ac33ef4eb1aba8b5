"""context.map (PROTOCOL §7.9; Appendix A.2, A.5, A.6, A.7)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import Driver, short, updates_of

from adurable import (
    BatchItemStatus,
    BatchResult,
    ChildConfig,
    ChildContextError,
    CompletionConfig,
    CompletionDecision,
    CompletionOutcome,
    CompletionReason,
    CompletionStatus,
    DurableContext,
    Duration,
    JsonSerDes,
    MapConfig,
    NestingType,
    RetryableSerDesError,
    RetryDecision,
    StepConfig,
    ValidationError,
    durable_execution,
)
from adurable._errors import NonDeterministicExecutionError
from adurable._ids import branch_id, operation_id
from adurable.testing import FakeService, LocalRunner

pytestmark = pytest.mark.anyio

MAP5 = operation_id(None, 5)  # 73776e3e…, the map of Appendix A.2
NO_RETRY = StepConfig(retry_strategy=lambda e, n: RetryDecision.no_retry())


def everything(service: FakeService) -> list[dict[str, Any]]:
    return [u for call in updates_of(service) for u in call]


def names_in(service: FakeService) -> list[str]:
    return [short(u) for u in everything(service)]


async def test_map_matches_appendix_a2() -> None:
    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        return await ctx.step(lambda _: value * 10, name=f"m{index}")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        for position in range(4):
            await context.step(lambda _: None, name=f"pad{position}")
        result = await context.map([2, 3], item, name="mymap", config=MapConfig(max_concurrency=1))
        return result.get_results()

    runner = LocalRunner(handler)
    assert (await runner.run()).result == [20, 30]
    calls = updates_of(runner.service)[4:]
    item0, step0 = branch_id(MAP5, 0), operation_id(branch_id(MAP5, 0), 1)
    assert item0.startswith("a33fdc9f") and step0.startswith("db82c49e")
    assert calls[0] == [
        {"Id": MAP5, "Type": "CONTEXT", "Action": "START", "Name": "mymap", "SubType": "Map"},
        {
            "Id": item0,
            "ParentId": MAP5,
            "Type": "CONTEXT",
            "Action": "START",
            "Name": "map-item-0",
            "SubType": "MapIteration",
        },
        {
            "Id": step0,
            "ParentId": item0,
            "Type": "STEP",
            "Action": "START",
            "Name": "m0",
            "SubType": "Step",
        },
        {
            "Id": step0,
            "ParentId": item0,
            "Type": "STEP",
            "Action": "SUCCEED",
            "Name": "m0",
            "SubType": "Step",
            "Payload": "20",
        },
    ]
    # The updates after the first call come in A.2's order; the call boundaries may differ: an
    # item's slot is freed once its SUCCEED is queued, so item 1 starts in the same call
    # (issue 6: fewer calls with a concurrency limit).
    rest = [update for call in calls[1:] for update in call]
    assert rest[:1] == [
        {
            "Id": item0,
            "ParentId": MAP5,
            "Type": "CONTEXT",
            "Action": "SUCCEED",
            "Name": "map-item-0",
            "SubType": "MapIteration",
            "Payload": "20",
            "ContextOptions": {"ReplayChildren": False},
        }
    ]
    assert [short(u) for u in rest[1:5]] == [
        "CONTEXT START map-item-1",
        "STEP START m1",
        "STEP SUCCEED m1",
        "CONTEXT SUCCEED map-item-1",
    ]
    container = rest[5]
    assert container["Payload"] == (
        '{"t":"br","v":{"all":{"t":"l","v":['
        '{"t":"m","v":{"index":{"t":"i","v":0},"status":{"t":"s","v":"SUCCEEDED"},'
        '"result":{"t":"i","v":20},"error":{"t":"n","v":null}}},'
        '{"t":"m","v":{"index":{"t":"i","v":1},"status":{"t":"s","v":"SUCCEEDED"},'
        '"result":{"t":"i","v":30},"error":{"t":"n","v":null}}}'
        ']},"completionReason":{"t":"s","v":"ALL_COMPLETED"}}}'
    )
    assert container["ContextOptions"] == {"ReplayChildren": False}
    assert len(rest) == 6
    assert len(calls) <= 5


async def test_a5_min_successful_with_one_tolerated_failure() -> None:
    async def item(ctx: DurableContext, value: str, index: int, items: list[str]) -> str:
        if value == "bad":
            raise ValueError("bad item")
        return value.upper()

    config = MapConfig(
        max_concurrency=1,
        completion_config=CompletionConfig(min_successful=2, tolerated_failure_count=1),
    )
    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        seen.append(await context.map(["a", "bad", "c", "d"], item, name="m", config=config))
        return "ok"

    runner = LocalRunner(handler)
    outcome = await runner.run()
    assert outcome.status == "SUCCEEDED"
    [result] = seen
    assert [(i.index, i.status) for i in result.all] == [
        (0, BatchItemStatus.SUCCEEDED),
        (1, BatchItemStatus.FAILED),
        (2, BatchItemStatus.SUCCEEDED),
    ]  # item 3 never started: omitted
    assert result.completion_reason is CompletionReason.MIN_SUCCESSFUL_REACHED
    assert result.get_results() == ["A", "C"]
    fail = next(u for u in everything(runner.service) if u["Action"] == "FAIL")
    assert fail["Name"] == "map-item-1"
    assert fail["Error"] == {"ErrorMessage": "bad item", "ErrorType": "ValueError"}
    [error] = result.get_errors()
    assert error is not None and error.error_type == "ValueError"
    container = outcome.get_context("m")
    assert (container.sub_type, container.status.value) == ("Map", "SUCCEEDED")


async def test_a6_flat_map_writes_no_iterations_and_parents_to_the_map() -> None:
    async def item(ctx: DurableContext, value: str, index: int, items: list[str]) -> str:
        return await ctx.step(lambda _: value, name="flatstep")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        for position in range(3):
            await context.step(lambda _: None, name=f"pad{position}")
        config = MapConfig(nesting_type=NestingType.FLAT, max_concurrency=1)
        return (await context.map(["p", "q"], item, name="flat", config=config)).get_results()

    runner = LocalRunner(handler)
    assert (await runner.run()).result == ["p", "q"]
    flat = operation_id(None, 4)
    calls = updates_of(runner.service)[3:]
    step0 = operation_id(branch_id(flat, 0), 1)
    assert flat.startswith("e8e70dc1") and step0.startswith("bcdab120")
    assert calls[0] == [
        {"Id": flat, "Type": "CONTEXT", "Action": "START", "Name": "flat", "SubType": "Map"},
        {
            "Id": step0,
            "ParentId": flat,
            "Type": "STEP",
            "Action": "START",
            "Name": "flatstep",
            "SubType": "Step",
        },
        {
            "Id": step0,
            "ParentId": flat,
            "Type": "STEP",
            "Action": "SUCCEED",
            "Name": "flatstep",
            "SubType": "Step",
            "Payload": '"p"',
        },
    ]
    step1 = operation_id(branch_id(flat, 1), 1)
    assert [(u["Id"], u.get("ParentId")) for u in calls[1]] == [(step1, flat), (step1, flat)]
    assert [short(u) for u in calls[2]] == ["CONTEXT SUCCEED flat"]
    assert not any(u.get("SubType") == "MapIteration" for u in everything(runner.service))


async def test_flat_history_replayed_by_nested_code_is_non_deterministic() -> None:
    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        await ctx.wait(Duration(5), name="w")
        return value

    def make(nesting: NestingType) -> Any:
        @durable_execution
        async def handler(event: Any, context: DurableContext) -> Any:
            result = await context.map([1], item, config=MapConfig(nesting_type=nesting))
            return result.get_results()

        return handler

    driver = Driver(make(NestingType.NESTED))
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    driver.advance()
    output = await driver.invoke(make(NestingType.FLAT))
    assert output["Status"] == "FAILED"
    assert output["Error"]["ErrorType"].endswith(NonDeterministicExecutionError.__name__)


@pytest.mark.parametrize("summary", [None, "custom"])
async def test_a7_large_map_records_a_completion_record_and_replays_from_it(
    summary: str | None,
) -> None:
    bodies: list[int] = []

    async def item(ctx: DurableContext, value: str, index: int, items: list[str]) -> str:
        bodies.append(index)
        return value * 100_000

    config = MapConfig(summary_generator=(lambda result: summary) if summary else None)
    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        result = await context.map(["a", "b", "c"], item, name="big", config=config)
        seen.append(result)
        await context.wait(Duration(1), name="after")
        return sum(len(str(v)) for v in result.get_results())

    runner = LocalRunner(handler)
    result = await runner.run()
    assert (result.status, result.result, result.invocations) == ("SUCCEEDED", 300_000, 2)
    container = next(
        u
        for u in everything(runner.service)
        if u.get("SubType") == "Map" and u["Action"] == "SUCCEED"
    )
    record = (
        '{"type": "MapResult", "totalCount": 3, "completionReason": "ALL_COMPLETED", '
        '"startedIndexes": [], "startedCount": 0, "successCount": 3, "failureCount": 0, '
        '"status": "SUCCEEDED"'
    )
    assert container["Payload"] == record + (', "summary": "custom"}' if summary else "}")
    assert container["ContextOptions"] == {"ReplayChildren": True}
    assert sorted(bodies) == [0, 1, 2]  # the replay rebuilt the result from the branches
    assert seen[0] == seen[1]
    assert seen[1].completion_reason is CompletionReason.ALL_COMPLETED


async def test_large_map_replay_keeps_started_items_and_failures() -> None:
    failed = anyio.Event()
    release = anyio.Event()

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> str:
        if index == 0:
            await failed.wait()  # succeeds once item 1 has failed
        if index == 1:
            failed.set()
            raise KeyError("no")
        if index >= 2:
            await release.wait()  # still running when the batch completes → STARTED
        return "x" * 300_000  # any success makes the result too large to record

    config = MapConfig(
        completion_config=CompletionConfig(min_successful=1, tolerated_failure_count=1)
    )
    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        result = await context.map([0, 1, 2, 3], item, name="big", config=config)
        seen.append(result)
        await context.wait(Duration(1))
        return "done"

    runner = LocalRunner(handler)
    assert (await runner.run()).status == "SUCCEEDED"
    container = next(u for u in everything(runner.service) if short(u) == "CONTEXT SUCCEED big")
    assert container["ContextOptions"] == {"ReplayChildren": True}
    assert '"startedIndexes": [2, 3]' in container["Payload"]
    first, replayed = seen
    assert first == replayed
    statuses = {i.index: i.status for i in first.all}
    assert statuses == {
        0: BatchItemStatus.SUCCEEDED,
        1: BatchItemStatus.FAILED,
        2: BatchItemStatus.STARTED,
        3: BatchItemStatus.STARTED,
    }
    assert first.completion_reason is CompletionReason.MIN_SUCCESSFUL_REACHED


async def test_fail_fast_is_the_default() -> None:
    runs: list[int] = []

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        runs.append(index)
        if index == 1:
            raise RuntimeError("nope")
        return value

    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        seen.append(await context.map(range(6), item, config=MapConfig(max_concurrency=1)))
        return "ok"

    runner = LocalRunner(handler)
    assert (await runner.run()).status == "SUCCEEDED"  # items failing never fail the map
    [result] = seen
    assert runs == [0, 1]
    assert result.completion_reason is CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    assert [i.status for i in result.all] == [BatchItemStatus.SUCCEEDED, BatchItemStatus.FAILED]
    assert result.total_count == 2
    with pytest.raises(ChildContextError) as caught:
        result.throw_if_error()
    assert (caught.value.error_type, str(caught.value)) == ("RuntimeError", "nope")


@pytest.mark.parametrize(
    ("completion", "ran", "reason"),
    [
        (
            CompletionConfig(tolerated_failure_count=1),
            5,
            CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
        ),
        (CompletionConfig(tolerated_failure_count=2), 6, CompletionReason.ALL_COMPLETED),
        # 2 of 6 failed = 33.3 % > 30 %
        (
            CompletionConfig(tolerated_failure_percentage=30),
            5,
            CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
        ),
        (CompletionConfig(tolerated_failure_percentage=34), 6, CompletionReason.ALL_COMPLETED),
        (CompletionConfig(min_successful=3), 4, CompletionReason.MIN_SUCCESSFUL_REACHED),
        (CompletionConfig.first_successful(), 1, CompletionReason.MIN_SUCCESSFUL_REACHED),
        (CompletionConfig.all_completed(), 6, CompletionReason.ALL_COMPLETED),
    ],
)
async def test_tolerances_and_min_successful(
    completion: CompletionConfig, ran: int, reason: CompletionReason
) -> None:
    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        if index in (1, 4):
            raise ValueError(str(index))
        return value

    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        config = MapConfig(max_concurrency=1, completion_config=completion)
        seen.append(await context.map(range(6), item, config=config))
        return "ok"

    await LocalRunner(handler).run()
    [result] = seen
    assert (result.total_count, result.completion_reason) == (ran, reason)


async def test_custom_should_complete_sees_item_statuses() -> None:
    snapshots: list[list[tuple[int, str | None, str | None]]] = []

    def decide(status: CompletionStatus) -> CompletionDecision:
        snapshots.append([(i.index, i.name, i.status) for i in status.items])
        if status.failure_count:
            return CompletionDecision.complete_batch(CompletionOutcome.FAILED)
        return CompletionDecision.continue_batch()

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        if index == 1:
            raise ValueError("x")
        return value

    config = MapConfig(
        max_concurrency=1,
        completion_config=CompletionConfig(should_complete=decide),
        item_namer=lambda value, index: f"item-{value}",
    )
    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        seen.append(await context.map([7, 8, 9], item, config=config))
        return "ok"

    runner = LocalRunner(handler)
    await runner.run()
    assert snapshots == [
        [(0, "item-7", None), (1, "item-8", None), (2, "item-9", None)],
        [(0, "item-7", "SUCCEEDED"), (1, "item-8", None), (2, "item-9", None)],
        [(0, "item-7", "SUCCEEDED"), (1, "item-8", "FAILED"), (2, "item-9", None)],
    ]
    [result] = seen
    assert result.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED
    assert "CONTEXT START item-7" in names_in(runner.service)


async def test_completion_cancels_running_branches_and_records_nothing_after() -> None:
    log: list[str] = []
    outcomes: list[str] = []
    waiting = anyio.Event()

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> str:
        if index == 0:
            await waiting.wait()
            return await ctx.step(lambda _: "first", name="fast")
        await ctx.step(lambda _: "before", name="before")
        try:
            waiting.set()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            log.append("cancelled")
            with anyio.CancelScope(shield=True):  # tries durable work after the decision
                try:
                    await ctx.step(lambda _: "late", name="late")
                except BaseException as exc:
                    outcomes.append(type(exc).__name__)
            raise
        return "unreachable"

    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        config = MapConfig(completion_config=CompletionConfig.first_successful())
        seen.append(await context.map([0, 1], item, name="race", config=config))
        log.append("map returned")
        return "ok"

    service = FakeService()
    original = service.checkpoint_durable_execution

    async def recording(**kwargs: Any) -> dict[str, Any]:
        for update in kwargs.get("Updates") or []:
            if update.get("Action") == "SUCCEED" and update.get("SubType") == "Map":
                log.append("map SUCCEED sent")
        return await original(**kwargs)

    service.checkpoint_durable_execution = recording  # type: ignore[method-assign]
    runner = LocalRunner(handler, service=service)
    assert (await runner.run()).status == "SUCCEEDED"
    assert log == ["cancelled", "map SUCCEED sent", "map returned"]
    assert outcomes == ["OrphanedChildException"]
    assert not any("late" in name for name in names_in(service))
    [result] = seen
    assert [(i.index, i.status) for i in result.all] == [
        (0, BatchItemStatus.SUCCEEDED),
        (1, BatchItemStatus.STARTED),
    ]
    assert result.completion_reason is CompletionReason.MIN_SUCCESSFUL_REACHED


async def test_suspended_branch_keeps_its_slot() -> None:
    runs: list[int] = []

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        runs.append(index)
        if index == 0:
            await ctx.wait(Duration(5), name="w")
        return value * 2

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        result = await context.map([1, 2], item, name="m", config=MapConfig(max_concurrency=1))
        return result.get_results()

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    assert runs == [0]  # item 1 waits for item 0's slot
    assert names_in(driver.service) == [
        "CONTEXT START m",
        "CONTEXT START map-item-0",
        "WAIT START w",
    ]
    driver.advance()
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": "[2, 4]"}
    assert runs == [0, 0, 1]


async def test_whole_map_suspends_timed_and_resumes_in_the_next_invocation() -> None:
    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        if index < 2:
            await ctx.wait(Duration(10 * (index + 1)), name=f"w{index}")
        return value

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        return (await context.map([5, 6, 7], item, name="m")).get_results()

    runner = LocalRunner(handler)
    result = await runner.run()
    assert (result.status, result.result, result.invocations) == ("SUCCEEDED", [5, 6, 7], 3)
    calls = updates_of(runner.service)
    succeeded = [short(u) for call in calls for u in call if u["Action"] == "SUCCEED"]
    assert succeeded.count("CONTEXT SUCCEED map-item-2") == 1
    assert succeeded[-1] == "CONTEXT SUCCEED m"


async def test_empty_inputs_complete_immediately() -> None:
    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        seen.append(await context.map([], _double, name="nothing"))
        return len(seen[0].all)

    runner = LocalRunner(handler)
    assert (await runner.run()).result == 0
    assert seen[0].completion_reason is CompletionReason.ALL_COMPLETED
    [[start, succeed]] = updates_of(runner.service)
    assert (short(start), short(succeed)) == ("CONTEXT START nothing", "CONTEXT SUCCEED nothing")
    assert succeed["Payload"] == (
        '{"t":"br","v":{"all":{"t":"l","v":[]},"completionReason":{"t":"s","v":"ALL_COMPLETED"}}}'
    )


async def test_validation_happens_before_an_id_is_used() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        too_many = MapConfig(completion_config=CompletionConfig(min_successful=3))
        with pytest.raises(ValidationError, match="min_successful"):
            _ = context.map([1, 2], _double, config=too_many)
        with pytest.raises(ValidationError, match="callable"):
            _ = context.map([1], "not a function")  # type: ignore[arg-type]
        return await context.step(lambda _: 1, name="first")

    runner = LocalRunner(handler)
    assert (await runner.run()).result == 1
    assert updates_of(runner.service)[0][0]["Id"] == operation_id(None, 1)


async def test_any_iterable_func_arguments_names_and_serdes() -> None:
    calls: list[tuple[Any, int, Any]] = []

    async def item(ctx: DurableContext, value: Any, index: int, items: list[Any]) -> Any:
        calls.append((value, index, items))
        return {"v": value}

    def gen() -> Iterator[int]:
        yield from (10, 11)

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = MapConfig(item_namer=lambda value, index: f"n{value}", item_serdes=JsonSerDes())
        result = await context.map(gen(), item, name="m", config=config)
        return result.get_results()

    runner = LocalRunner(handler)
    assert (await runner.run()).result == [{"v": 10}, {"v": 11}]
    assert sorted(calls, key=lambda c: c[1]) == [(10, 0, [10, 11]), (11, 1, [10, 11])]
    succeeds = {
        u["Name"]: u["Payload"] for u in everything(runner.service) if u["Action"] == "SUCCEED"
    }
    assert succeeds["n10"] == '{"v": 10}'  # item_serdes: plain JSON per item
    assert succeeds["m"].startswith('{"t":"br"')  # the whole result: extended serdes


async def test_operation_serdes_and_item_namer_failure() -> None:
    class Count(JsonSerDes[Any]):
        def serialize(self, value: Any, context: Any = None) -> str:
            return json.dumps(value.success_count if isinstance(value, BatchResult) else value)

    seen: list[Any] = []

    def bad_namer(value: Any, index: int) -> str:
        raise ValueError("no names today")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        seen.append(await context.map([1, 2], _double, config=MapConfig(serdes=Count())))
        try:
            await context.map([1], _double, name="unnamed", config=MapConfig(item_namer=bad_namer))
        except ChildContextError as exc:
            seen.append((exc.error_type, str(exc)))
        return "ok"

    runner = LocalRunner(handler)
    assert (await runner.run()).status == "SUCCEEDED"
    assert seen == [2, ("ValueError", "no names today")]
    fail = next(u for u in everything(runner.service) if u["Action"] == "FAIL")
    assert (fail["Name"], fail["Error"]["ErrorType"]) == ("unnamed", "ValueError")


async def _double(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
    return value * 2


async def test_decorated_func_names_the_map_and_step_errors_keep_their_wrapper_type() -> None:
    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        return await ctx.step(lambda _: int("x"), name="parse", config=NO_RETRY)

    item._original_name = "parse-all"  # type: ignore[attr-defined]
    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        seen.append(await context.map([1], item))
        return "ok"

    runner = LocalRunner(handler)
    await runner.run()
    assert names_in(runner.service)[0] == "CONTEXT START parse-all"
    [error] = seen[0].get_errors()
    assert error is not None
    assert error.error_type == "aws_durable_execution_sdk_python.exceptions.StepError"


async def test_throw_if_error_behaves_the_same_on_replay() -> None:
    caught: list[tuple[str | None, str]] = []

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        raise LookupError(f"missing {value}")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        result = await context.map([4], item)
        try:
            result.throw_if_error()
        except ChildContextError as exc:
            caught.append((exc.error_type, str(exc)))
        await context.wait(Duration(1))
        return "ok"

    assert (await LocalRunner(handler).run()).status == "SUCCEEDED"
    assert caught == [("LookupError", "missing 4")] * 2


async def test_replay_of_a_started_map_does_not_rerun_finished_items() -> None:
    runs: list[int] = []

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        runs.append(index)
        if index == 1:
            await ctx.wait(Duration(3))
        return value

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        return (await context.map([1, 2, 3], item)).get_results()

    result = await LocalRunner(handler).run()
    assert result.result == [1, 2, 3]
    assert sorted(runs) == [0, 1, 1, 2]  # only the waiting item ran again


async def test_retryable_branch_error_escapes_and_wins_over_suspension() -> None:
    attempts: list[int] = []

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        if index == 0:
            await ctx.wait(Duration(5))
            return value
        attempts.append(index)
        if len(attempts) == 1:
            raise RetryableSerDesError("try again")
        return value

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        config = MapConfig(completion_config=CompletionConfig.all_completed())
        return (await context.map([1, 2], item, config=config)).get_results()

    driver = Driver(handler)
    driver.start()
    with pytest.raises(RetryableSerDesError):
        await driver.invoke()
    assert not any(u["Action"] == "FAIL" for u in everything(driver.service))
    runner = LocalRunner(handler, service=driver.service)
    result = await runner.resume(driver.arn)
    assert (result.status, result.result) == ("SUCCEEDED", [1, 2])


async def test_execution_error_in_a_branch_fails_the_execution() -> None:
    from adurable import ExecutionError

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        if index == 0:
            raise ExecutionError("corrupt")
        await anyio.sleep_forever()
        return value

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = MapConfig(completion_config=CompletionConfig.all_completed())
        return (await context.map([1, 2], item, config=config)).get_results()

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error["ErrorMessage"] == "corrupt"
    assert not any(u["Action"] in ("FAIL", "SUCCEED") for u in everything(runner.service))


async def test_nested_map_inside_a_child_context() -> None:
    async def inner(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        return await ctx.step(lambda _: value + 1, name="inc")

    async def kid(child: DurableContext) -> Any:
        return (await child.map([1, 2], inner, name="inner")).get_results()

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return await context.run_in_child_context(kid, name="kid", config=ChildConfig())

    runner = LocalRunner(handler)
    assert (await runner.run()).result == [2, 3]
    kid_id = operation_id(None, 1)
    inner_id = operation_id(kid_id, 1)
    starts = {
        u["Id"]: u.get("ParentId") for u in everything(runner.service) if u["Action"] == "START"
    }
    assert starts[inner_id] == kid_id
    assert starts[branch_id(inner_id, 1)] == inner_id


# -- property: the result mirrors what the items did -------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    outcomes=st.lists(st.booleans(), max_size=12),
    limit=st.none() | st.integers(1, 4),
    tolerated=st.none() | st.integers(0, 3),
)
def test_results_are_in_index_order_and_match_outcomes(
    outcomes: list[bool], limit: int | None, tolerated: int | None
) -> None:
    async def item(ctx: DurableContext, ok: bool, index: int, items: list[bool]) -> int:
        await anyio.lowlevel.checkpoint()
        if not ok:
            raise ValueError(str(index))
        return index

    seen: list[BatchResult[Any]] = []
    completion = CompletionConfig(tolerated_failure_count=tolerated)
    config = MapConfig(max_concurrency=limit, completion_config=completion)

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        seen.append(await context.map(outcomes, item, config=config))
        return "ok"

    for backend in ("asyncio", "trio"):
        seen.clear()
        anyio.run(LocalRunner(handler).run, backend=backend)
        [result] = seen
        assert [i.index for i in result.all] == list(range(len(result.all)))
        for entry in result.all:
            if entry.status is BatchItemStatus.SUCCEEDED:
                assert outcomes[entry.index] and entry.result == entry.index
            elif entry.status is BatchItemStatus.FAILED:
                assert not outcomes[entry.index]
        failures = outcomes.count(False)
        if failures == 0 or (tolerated is not None and failures <= tolerated):
            assert result.total_count == len(outcomes)
            assert result.completion_reason is CompletionReason.ALL_COMPLETED
        else:  # fail fast (None) or more failures than tolerated: admission stopped
            assert result.completion_reason is CompletionReason.FAILURE_TOLERANCE_EXCEEDED
            assert result.failure_count > (tolerated or 0)


@pytest.mark.parametrize("replay", ["auto", "always"])
@pytest.mark.parametrize("broken", [0, 3, 6])
@pytest.mark.parametrize("limit", [1, 2, 5, None])
async def test_early_completion_result_agrees_with_the_checkpoints(
    limit: int | None, broken: int, replay: str
) -> None:
    """Whatever completion cut off, an item the result counts as SUCCEEDED or FAILED is
    recorded so, and in an uninterrupted run an item recorded as ended is counted (items free
    their slot as soon as their outcome is queued: the count must follow the queue)."""

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        def work(_: Any) -> int:
            if index == broken:
                raise ValueError(f"item {index} is broken")
            return value

        return await ctx.step(work, name=f"work-{index}", config=NO_RETRY)

    config = MapConfig(
        max_concurrency=limit,
        completion_config=CompletionConfig(min_successful=6, tolerated_failure_count=2),
    )
    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        seen.append(await context.map(list(range(10)), item, name="m", config=config))
        return "ok"

    outcome = await LocalRunner(handler, replay=replay).run()  # type: ignore[arg-type]
    assert outcome.status == "SUCCEEDED"
    result = seen[-1]
    recorded = {child.name: child.status.value for child in outcome.get_context("m").children}
    counted = {f"map-item-{i.index}": i.status.value for i in result.all}
    # A map resumed mid-way re-admits its recorded items in index order, so completion may
    # cut off before an item that ended in an earlier invocation (PROTOCOL §7.9.3): only an
    # uninterrupted run must count every item recorded as ended.
    for name, status in recorded.items():
        if status in ("SUCCEEDED", "FAILED") and replay == "auto":
            assert counted.get(name) == status, (name, recorded, counted)
    for name, status in counted.items():
        if status in ("SUCCEEDED", "FAILED"):
            assert recorded.get(name) == status, (name, recorded, counted)
    assert result.success_count >= 6


# -- the worker pool ------------------------------------------------------------------------------


def _pool_probe() -> tuple[dict[str, int], Any]:
    """An item function that counts items in progress (started, not yet returned)."""
    seen = {"now": 0, "peak": 0}

    async def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        seen["now"] += 1
        seen["peak"] = max(seen["peak"], seen["now"])
        try:
            return await ctx.step(_value_of(value))
        finally:
            seen["now"] -= 1

    return seen, item


def _value_of(value: int) -> Any:
    async def step(_: Any) -> int:
        return value

    return step


async def test_a_trivial_unbounded_map_keeps_no_more_branches_alive_than_it_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Workers that only wait for full checkpoint calls gain nothing from more of them: the
    # pool stays at BASE_WORKERS and the calls stay at the bound. (No call counts as a network
    # round trip here, however slow the machine: the next test covers those.)
    import adurable._batcher
    from adurable._ops.coordinator import BASE_WORKERS

    monkeypatch.setattr(adurable._batcher, "STARVED_CALL_SECONDS", 1e9)
    seen, item = _pool_probe()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return (await ctx.map(range(1500), item)).success_count

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED" and result.result == 1500
    assert seen["peak"] == BASE_WORKERS
    assert len(updates_of(runner.service)) == -(-(2 + 4 * 1500) // 250)


async def test_an_unbounded_map_grows_its_pool_for_items_busy_in_user_code() -> None:
    # 600 items each block in their step until all 600 have entered it: the pool must grow
    # past BASE_WORKERS (256), since its workers are not waiting for checkpoints.
    n = 600
    entered = {"count": 0}
    everyone_in = anyio.Event()

    async def gate(_: Any) -> int:
        entered["count"] += 1
        if entered["count"] == n:
            everyone_in.set()
        await everyone_in.wait()
        return 1

    async def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        return await ctx.step(gate)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return (await ctx.map(range(n), item)).success_count

    with anyio.fail_after(60):  # a guard: only a pool stuck below 600 would hit it
        result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED" and result.result == n


async def test_the_pool_grows_when_the_next_call_is_not_ready_as_a_round_trip_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every call counts as a network round trip: at-most-once steps (a round trip before and
    # after each body) leave no full call ready when one comes back, so more workers help.
    import adurable._batcher
    from adurable import StepSemantics
    from adurable._ops.coordinator import BASE_WORKERS

    monkeypatch.setattr(adurable._batcher, "STARVED_CALL_SECONDS", -1.0)
    seen = {"now": 0, "peak": 0}
    at_most_once = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)

    async def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        seen["now"] += 1
        seen["peak"] = max(seen["peak"], seen["now"])
        try:
            return await ctx.step(_value_of(value), config=at_most_once)
        finally:
            seen["now"] -= 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return (await ctx.map(range(1500), item)).success_count

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED" and result.result == 1500
    assert seen["peak"] > BASE_WORKERS
