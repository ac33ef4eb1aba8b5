"""context.parallel (PROTOCOL §7.9, §8.6; Appendix A.2, A.10)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from tests.helpers import Driver, short, updates_of

from adurable import (
    BatchItemStatus,
    BatchResult,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    Duration,
    MapConfig,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    RetryDecision,
    StepConfig,
    ValidationError,
    durable_execution,
    durable_parallel_branch,
)
from adurable._ids import branch_id, operation_id
from adurable._ops import coordinator
from adurable.testing import FakeService, LocalRunner

pytestmark = pytest.mark.anyio

PAR6 = operation_id(None, 6)  # 8d322d4b…, the parallel of Appendix A.2
ROOT1 = operation_id(None, 1)


def everything(service: FakeService) -> list[dict[str, Any]]:
    return [u for call in updates_of(service) for u in call]


def unordered(updates: list[dict[str, Any]]) -> list[str]:
    """Updates as sortable strings: for calls whose order depends on task scheduling."""
    return sorted(json.dumps(u, sort_keys=True) for u in updates)


async def test_parallel_matches_appendix_a2() -> None:
    async def first(ctx: DurableContext) -> str:
        return "a"

    async def second(ctx: DurableContext) -> str:
        return "b"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        for position in range(5):
            await context.step(lambda _: None, name=f"pad{position}")
        config = ParallelConfig(max_concurrency=1)
        return (await context.parallel([first, second], name="par", config=config)).get_results()

    runner = LocalRunner(handler)
    assert (await runner.run()).result == ["a", "b"]
    calls = updates_of(runner.service)[5:]
    b0 = branch_id(PAR6, 0)
    assert b0.startswith("74fa7d67")
    # A.2's updates, in its order; the call boundaries may differ (a branch frees its slot once
    # its SUCCEED is queued, so the next branch can ride in the same call: issue 6).
    updates = [update for call in calls for update in call]
    assert updates[:3] == [
        {"Id": PAR6, "Type": "CONTEXT", "Action": "START", "Name": "par", "SubType": "Parallel"},
        {
            "Id": b0,
            "ParentId": PAR6,
            "Type": "CONTEXT",
            "Action": "START",
            "Name": "parallel-branch-0",
            "SubType": "ParallelBranch",
        },
        {
            "Id": b0,
            "ParentId": PAR6,
            "Type": "CONTEXT",
            "Action": "SUCCEED",
            "Name": "parallel-branch-0",
            "SubType": "ParallelBranch",
            "Payload": '"a"',
            "ContextOptions": {"ReplayChildren": False},
        },
    ]
    assert [short(u) for u in updates[3:]] == [
        "CONTEXT START parallel-branch-1",
        "CONTEXT SUCCEED parallel-branch-1",
        "CONTEXT SUCCEED par",
    ]
    assert len(calls) <= 3


async def test_a10_waiting_branch_suspends_the_whole_parallel() -> None:
    async def slow(ctx: DurableContext) -> str:
        await ctx.wait(Duration(2))
        return "slow"

    async def fast(ctx: DurableContext) -> str:
        return "fast"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        return (await context.parallel([slow, fast], name="par")).get_results()

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    b0, b1 = branch_id(ROOT1, 0), branch_id(ROOT1, 1)
    [first] = updates_of(driver.service)
    branch = {"ParentId": ROOT1, "Type": "CONTEXT", "SubType": "ParallelBranch"}
    assert first[0] == {
        "Id": ROOT1,
        "Type": "CONTEXT",
        "Action": "START",
        "Name": "par",
        "SubType": "Parallel",
    }
    assert unordered(first) == unordered(
        [
            first[0],
            {"Id": b0, "Action": "START", "Name": "parallel-branch-0", **branch},
            {
                "Id": operation_id(b0, 1),
                "ParentId": b0,
                "Type": "WAIT",
                "Action": "START",
                "SubType": "Wait",
                "WaitOptions": {"WaitSeconds": 2},
            },
            {"Id": b1, "Action": "START", "Name": "parallel-branch-1", **branch},
            {
                "Id": b1,
                "Action": "SUCCEED",
                "Name": "parallel-branch-1",
                "Payload": '"fast"',
                "ContextOptions": {"ReplayChildren": False},
                **branch,
            },
        ]
    )
    driver.advance()
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '["slow", "fast"]'}
    later = [update for call in updates_of(driver.service)[1:] for update in call]
    # one call or two: the branch's SUCCEED need not be durable before the container's is queued
    assert [short(u) for u in later] == ["CONTEXT SUCCEED parallel-branch-0", "CONTEXT SUCCEED par"]
    assert later[0]["Payload"] == '"slow"'


async def test_timed_branch_resumes_in_process_after_a_refresh_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While another branch still runs, a branch whose wait is due resumes in the same
    invocation: an empty checkpoint fetches the completed wait (§8.6). Time is virtual."""
    driver_box: list[Driver] = []
    slept: list[float] = []

    async def virtual_sleep_until(deadline: float) -> None:
        slept.append(deadline)
        driver = driver_box[0]
        driver.service.clock.advance_to(driver.service.next_timer(driver.arn) or 0)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(coordinator, "sleep_until", virtual_sleep_until)
    waited = anyio.Event()

    async def sleeper(ctx: DurableContext) -> str:
        await ctx.wait(Duration(30), name="nap")
        waited.set()
        return "rested"

    async def worker(ctx: DurableContext) -> str:
        await waited.wait()  # keeps running until the other branch came back from its wait
        return await ctx.step(lambda _: "worked", name="work")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        return (await context.parallel([sleeper, worker], name="par")).get_results()

    driver = Driver(handler)
    driver_box.append(driver)
    driver.start()
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '["rested", "worked"]'}
    assert len(slept) == 1
    calls = updates_of(driver.service)
    assert [] in calls  # the refresh: a checkpoint with no updates
    refresh = calls.index([])
    assert "WAIT START nap" in [short(u) for call in calls[:refresh] for u in call]
    after = [short(u) for call in calls[refresh + 1 :] for u in call]
    assert after[-1] == "CONTEXT SUCCEED par"
    assert "CONTEXT SUCCEED parallel-branch-0" in after


async def test_default_is_all_successful() -> None:
    async def ok(ctx: DurableContext) -> int:
        return 1

    async def bad(ctx: DurableContext) -> int:
        raise ValueError("broken branch")

    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        config = ParallelConfig(max_concurrency=1)
        seen.append(await context.parallel([ok, bad, ok], config=config))
        return "ok"

    assert (await LocalRunner(handler).run()).status == "SUCCEEDED"
    [result] = seen
    assert result.completion_reason is CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    assert [i.status for i in result.all] == [BatchItemStatus.SUCCEEDED, BatchItemStatus.FAILED]
    assert result.status is BatchItemStatus.FAILED


async def test_branch_names() -> None:
    @durable_parallel_branch(name="fetch-user")
    async def fetch(ctx: DurableContext, user: str) -> str:
        return f"user {user}"

    @durable_parallel_branch()
    async def anonymous(ctx: DurableContext) -> str:
        return "anon"

    async def plain(ctx: DurableContext) -> str:
        return "plain"

    branch = fetch("jane")
    assert isinstance(branch, ParallelBranch) and branch.name == "fetch-user"
    assert anonymous().name is None

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        branches = [branch, anonymous(), ParallelBranch(plain, name=""), plain]
        config = ParallelConfig(max_concurrency=1)
        return (await context.parallel(branches, config=config)).get_results()

    runner = LocalRunner(handler)
    assert (await runner.run()).result == ["user jane", "anon", "plain", "plain"]
    starts = [u for u in everything(runner.service) if u["Action"] == "START"][1:]
    assert [u.get("Name") for u in starts] == [
        "fetch-user",
        "parallel-branch-1",
        None,  # an explicit "" writes no name
        "parallel-branch-3",
    ]


async def test_invalid_branches_are_rejected_before_an_id_is_used() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        with pytest.raises(ValidationError, match="branch 1"):
            _ = context.parallel([lambda ctx: None, 42])
        too_many = ParallelConfig(completion_config=CompletionConfig(min_successful=2))
        with pytest.raises(ValidationError, match="min_successful"):
            _ = context.parallel([lambda ctx: None], config=too_many)
        return await context.step(lambda _: 1, name="first")

    runner = LocalRunner(handler)
    assert (await runner.run()).result == 1
    assert updates_of(runner.service)[0][0]["Id"] == ROOT1


async def test_first_successful_cancels_the_others() -> None:
    cancelled: list[int] = []
    ready = anyio.Event()

    async def winner(ctx: DurableContext) -> str:
        await ready.wait()
        return "won"

    async def loser(ctx: DurableContext) -> str:
        try:
            ready.set()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(1)
            raise
        return "never"

    seen: list[BatchResult[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        config = ParallelConfig(completion_config=CompletionConfig.first_successful())
        seen.append(await context.parallel([winner, loser], config=config))
        return "ok"

    runner = LocalRunner(handler)
    assert (await runner.run()).status == "SUCCEEDED"
    assert cancelled == [1]
    [result] = seen
    assert result.get_results() == ["won"]
    assert result.started()[0].index == 1
    succeeded = [short(u) for u in everything(runner.service) if u["Action"] == "SUCCEED"]
    assert "CONTEXT SUCCEED parallel-branch-1" not in succeeded


async def test_nested_map_inside_parallel_ids_and_parents() -> None:
    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        return await ctx.step(lambda _: value * 3, name="triple")

    async def mapper(ctx: DurableContext) -> list[Any]:
        return (await ctx.map([1, 2], item, name="inner")).get_results()

    async def flat_mapper(ctx: DurableContext) -> list[Any]:
        config = MapConfig(nesting_type=NestingType.FLAT)
        return (await ctx.map([3], item, name="flat", config=config)).get_results()

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        return (await context.parallel([mapper, flat_mapper], name="outer")).get_results()

    runner = LocalRunner(handler)
    assert (await runner.run()).result == [[3, 6], [9]]
    parents = {
        (u["Id"], u["Type"]): u.get("ParentId")
        for u in everything(runner.service)
        if u["Action"] == "START"
    }
    b0, b1 = branch_id(ROOT1, 0), branch_id(ROOT1, 1)
    inner, flat = operation_id(b0, 1), operation_id(b1, 1)
    assert parents[(inner, "CONTEXT")] == b0
    for index in (0, 1):
        item_id = branch_id(inner, index)
        assert parents[(item_id, "CONTEXT")] == inner
        assert parents[(operation_id(item_id, 1), "STEP")] == item_id
    assert parents[(flat, "CONTEXT")] == b1
    # FLAT: no iteration context, the step hangs off the flat map with the branch's prefix.
    assert (branch_id(flat, 0), "CONTEXT") not in parents
    assert parents[(operation_id(branch_id(flat, 0), 1), "STEP")] == flat


async def test_nested_suspension_resumes_across_invocations() -> None:
    runs: list[str] = []

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> int:
        runs.append(f"item{index}")
        if index == 0:
            await ctx.wait(Duration(7))
        return value

    async def mapper(ctx: DurableContext) -> list[Any]:
        return (await ctx.map([4, 5], item, name="inner")).get_results()

    async def quick(ctx: DurableContext) -> str:
        runs.append("quick")
        return "q"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        return (await context.parallel([mapper, quick], name="outer")).get_results()

    result = await LocalRunner(handler).run()
    assert (result.status, result.result, result.invocations) == ("SUCCEEDED", [[4, 5], "q"], 2)
    assert sorted(runs) == ["item0", "item0", "item1", "quick"]


async def test_item_serdes_applies_to_branch_payloads() -> None:
    from adurable import JsonSerDes

    async def branch(ctx: DurableContext) -> dict[str, int]:
        return {"n": 1}

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        config = ParallelConfig(item_serdes=JsonSerDes())
        return (await context.parallel([branch], name="p", config=config)).get_results()

    runner = LocalRunner(handler)
    assert (await runner.run()).result == [{"n": 1}]
    payloads = {u["Name"]: u["Payload"] for u in everything(runner.service) if "Payload" in u}
    assert payloads["parallel-branch-0"] == '{"n": 1}'
    assert payloads["p"].startswith('{"t":"br"')


async def test_an_earlier_deadline_re_arms_the_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    driver_box: list[Driver] = []
    slept: list[float] = []
    timer_armed, short_done = anyio.Event(), anyio.Event()

    async def virtual_sleep_until(deadline: float) -> None:
        slept.append(deadline)
        if len(slept) == 1:
            timer_armed.set()  # sleeping until the long wait is due
        if len(slept) != 2:
            await anyio.sleep_forever()  # cut short by the earlier deadline / the end of the run
        driver = driver_box[0]
        driver.service.clock.advance_to(driver.service.next_timer(driver.arn) or 0)

    monkeypatch.setattr(coordinator, "sleep_until", virtual_sleep_until)
    runs: list[str] = []

    async def long(ctx: DurableContext) -> str:
        runs.append("long")
        await ctx.wait(Duration(60), name="long")
        return "long"

    async def short_branch(ctx: DurableContext) -> str:
        runs.append("short")
        await timer_armed.wait()
        await ctx.wait(Duration(10), name="short")
        short_done.set()
        return "short"

    async def busy(ctx: DurableContext) -> str:
        await short_done.wait()
        return "busy"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        branches = [long, short_branch, busy]
        return (await context.parallel(branches, name="par")).get_results()

    driver = Driver(handler)
    driver_box.append(driver)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}  # the long wait is still due
    assert slept[1] < slept[0]  # re-armed for the short wait, which resumed in process
    assert runs == ["long", "short", "short"]
    driver.advance()
    output = await driver.invoke()
    assert output == {"Status": "SUCCEEDED", "Result": '["long", "short", "busy"]'}


async def test_untimed_branch_suspension_suspends_the_whole_operation() -> None:
    async def outside(ctx: DurableContext) -> str:
        await ctx._scope.suspend("waiting for the outside world")  # as a callback would
        return "never"

    async def done(ctx: DurableContext) -> str:
        return "done"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        return (await context.parallel([outside, done], name="par")).get_results()

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    statuses = {op.name: op.status.value for op in driver.service.operations(driver.arn)}
    assert statuses["parallel-branch-1"] == "SUCCEEDED"
    assert statuses["par"] == "STARTED"


async def test_nested_step_retry_resumes_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retrying step inside a map inside a parallel branch: the inner map suspends as a
    whole (timed), the outer branch with it, and the refresh at the due time finds the step
    READY while the other outer branch still runs."""
    driver_box: list[Driver] = []

    async def virtual_sleep_until(deadline: float) -> None:
        driver = driver_box[0]
        driver.service.clock.advance_to(driver.service.next_timer(driver.arn) or 0)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(coordinator, "sleep_until", virtual_sleep_until)
    attempts: list[int] = []
    recovered = anyio.Event()

    def flaky(step: Any) -> str:
        attempts.append(step.attempt)
        if step.attempt == 1:
            raise ValueError("first attempt fails")
        return "ok"

    retry_once = StepConfig(retry_strategy=lambda e, n: RetryDecision.retry(Duration(3)))

    async def item(ctx: DurableContext, value: int, index: int, items: list[int]) -> str:
        result = await ctx.step(flaky, name="flaky", config=retry_once)
        recovered.set()
        return result

    async def mapper(ctx: DurableContext) -> list[Any]:
        return (await ctx.map([1], item, name="inner")).get_results()

    async def watcher(ctx: DurableContext) -> str:
        await recovered.wait()
        return "saw it"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        return (await context.parallel([mapper, watcher], name="outer")).get_results()

    driver = Driver(handler)
    driver_box.append(driver)
    driver.start()
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '[["ok"], "saw it"]'}
    assert attempts == [1, 2]
    assert [] in updates_of(driver.service)  # the refresh checkpoint


async def test_a_suspended_branch_stops_all_it_started_even_if_it_swallows_the_suspension() -> None:
    """A branch that suspends is cancelled as a whole — its own tasks, and code that catches the
    suspension and tries to go on — while the other branches and later runs on the same worker
    carry on (workers share one cancel scope across runs until a run suspends)."""
    seen: list[str] = []

    async def with_background(ctx: DurableContext) -> str:
        async def background() -> None:
            try:
                await anyio.Event().wait()
            finally:
                seen.append("background stopped")

        async with anyio.create_task_group() as tg:
            tg.start_soon(background)
            await ctx.wait(Duration(5))
            tg.cancel_scope.cancel()
        return "waited"

    async def swallowing(ctx: DurableContext) -> str:
        try:
            await ctx.wait(Duration(5))
        except BaseException:  # the point of the test
            seen.append("swallowed")
        await anyio.lowlevel.checkpoint()  # cancelled here: the branch's scope was cancelled
        seen.append("went on")
        return "swallowed"

    async def quick(ctx: DurableContext) -> str:
        return await ctx.step(lambda _: "quick", name="quick")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        result = await context.parallel([with_background, swallowing, quick] * 2, name="par")
        return result.get_results()

    outcome = await LocalRunner(handler).run()
    assert outcome.status == "SUCCEEDED"
    assert outcome.result == ["waited", "swallowed", "quick"] * 2
    # the first invocation: both swallowing runs caught the suspension and went no further;
    # the second (waits over): both went on normally
    assert seen.count("swallowed") == 2
    assert seen.count("went on") == 2
    assert seen.index("went on") > max(i for i, s in enumerate(seen) if s == "swallowed")
    assert seen.count("background stopped") == 4  # suspended, then finished, twice each
