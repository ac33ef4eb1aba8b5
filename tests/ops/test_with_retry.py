"""with_retry: retrying a block of durable code (PROTOCOL §7.2)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers import short, updates_of

from adurable import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    Duration,
    ExecutionError,
    JitterStrategy,
    RetryDecision,
    RetryStrategyConfig,
    StepError,
    ValidationError,
    WithRetryConfig,
    create_retry_strategy,
    durable_execution,
    with_retry,
)
from adurable.testing import LocalRunner

pytestmark = pytest.mark.anyio

ID1 = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"
ID2 = "c5faca15ac2f93578b39ef4b6bbb871bdedce4ddd584fd31f0bb66fade3947e6"
ID1_1 = "974bfc6321e227b0ff101342eaf19b336f002dc6cc99c18f0941a7755cc20fc4"
ID1_2 = "9d8bc609108ec7b3600d6cceec22d18553e3e1ec52a3568cb251464a3d39d24f"

ONE_SECOND = WithRetryConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(initial_delay=Duration(1), jitter_strategy=JitterStrategy.NONE)
    )
)


async def test_block_is_retried_after_durable_backoff_waits() -> None:
    runs: list[int] = []

    async def block(ctx: DurableContext, attempt: int) -> int:
        runs.append(attempt)
        value = await ctx.step(lambda _: attempt * 10, name=f"work-{attempt}")
        if attempt < 3:
            raise ValueError(f"not yet {attempt}")
        return value

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return await with_retry(context, block, ONE_SECOND, name="blk")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert (result.status, result.result, result.invocations) == ("SUCCEEDED", 30, 3)
    # every invocation replays the earlier attempts (their steps are not re-executed)
    assert runs == [1, 1, 2, 1, 2, 3]
    calls = updates_of(runner.service)
    assert [[short(u) for u in c] for c in calls] == [
        ["CONTEXT START blk", "STEP START work-1", "STEP SUCCEED work-1"],
        ["WAIT START blk-backoff-1"],
        ["STEP START work-2", "STEP SUCCEED work-2"],
        ["WAIT START blk-backoff-2"],
        ["STEP START work-3", "STEP SUCCEED work-3"],
        ["CONTEXT SUCCEED blk"],
    ]
    assert calls[1] == [
        {
            "Id": ID1_2,
            "ParentId": ID1,
            "Name": "blk-backoff-1",
            "Type": "WAIT",
            "SubType": "Wait",
            "Action": "START",
            "WaitOptions": {"WaitSeconds": 1},
        }
    ]
    assert calls[0][1]["Id"] == ID1_1
    assert result.get_wait("blk-backoff-2").wait_details is not None


async def test_exhausted_retries_fail_the_child_context_on_every_replay() -> None:
    seen: list[Any] = []

    async def block(ctx: DurableContext, attempt: int) -> None:
        raise KeyError(f"missing {attempt}")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        try:
            await with_retry(context, block, ONE_SECOND, name="blk")
        except ChildContextError as exc:
            seen.append([exc.error_type, exc.message])
        await context.wait(Duration(1))
        return "done"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert seen == [["KeyError", "'missing 3'"]] * 2  # 3 attempts (the default max)
    names = [short(u) for c in updates_of(runner.service) for u in c]
    assert names == [
        "CONTEXT START blk",
        "WAIT START blk-backoff-1",
        "WAIT START blk-backoff-2",
        "CONTEXT FAIL blk",
        "WAIT START",
    ]


async def test_unwrapped_block_runs_in_the_callers_context_and_raises_the_raw_error() -> None:
    async def block(ctx: DurableContext, attempt: int) -> None:
        await ctx.step(lambda _: attempt, name=f"s{attempt}")
        raise OSError("still broken")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        strategy = create_retry_strategy(
            RetryStrategyConfig(max_attempts=2, initial_delay=Duration(1))
        )
        config = WithRetryConfig(retry_strategy=strategy, wrap_with_run_in_child_context=False)
        try:
            await with_retry(context, block, config)
        except OSError as exc:
            return str(exc)
        return None

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "still broken"
    updates = [u for c in updates_of(runner.service) for u in c]
    assert [short(u) for u in updates] == [
        "STEP START s1",
        "STEP SUCCEED s1",
        "WAIT START",  # unnamed backoff without a name
        "STEP START s2",
        "STEP SUCCEED s2",
    ]
    assert all("ParentId" not in u for u in updates)
    assert updates[0]["Id"] == ID1 and updates[2]["Id"] == ID2


async def test_inner_step_error_is_retried_and_surfaces_as_the_cause() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        async def block(ctx: DurableContext, attempt: int) -> None:
            def fail(_: Any) -> None:
                raise ValueError("bad")

            await ctx.step(fail, name=f"s{attempt}", config=_no_retry_step())

        strategy = create_retry_strategy(
            RetryStrategyConfig(max_attempts=2, initial_delay=Duration(1))
        )
        try:
            await with_retry(context, block, WithRetryConfig(retry_strategy=strategy))
        except ChildContextError as exc:
            return [exc.error_type, type(exc.__cause__).__name__]
        return None

    result = await LocalRunner(handler).run()
    assert result.result == ["aws_durable_execution_sdk_python.exceptions.StepError", "StepError"]


def _no_retry_step() -> Any:
    from adurable import StepConfig

    return StepConfig(retry_strategy=lambda error, attempts: RetryDecision.no_retry())


async def test_execution_errors_are_never_retried() -> None:
    runs: list[int] = []

    async def block(ctx: DurableContext, attempt: int) -> None:
        runs.append(attempt)
        raise ExecutionError("fatal")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return await with_retry(context, block, ONE_SECOND)

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert result.error is not None and result.error["ErrorMessage"] == "fatal"
    assert runs == [1]


async def test_zero_delay_is_clamped_and_custom_child_config_applies() -> None:
    attempts: list[int] = []

    def strategy(error: Exception, attempts_made: int) -> RetryDecision:
        attempts.append(attempts_made)
        return RetryDecision.retry(Duration(0)) if attempts_made < 2 else RetryDecision.no_retry()

    async def block(ctx: DurableContext, attempt: int) -> str:
        if attempt == 1:
            raise RuntimeError("once")
        return "ok"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = WithRetryConfig(
            retry_strategy=strategy, child_context_config=ChildConfig(sub_type="Retrying")
        )
        return await with_retry(context, block, config, name="r")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "ok"
    assert attempts == [1, 1]  # asked again on replay of attempt 1
    updates = [u for c in updates_of(runner.service) for u in c]
    assert updates[0]["SubType"] == "Retrying"
    assert updates[1]["WaitOptions"] == {"WaitSeconds": 1}


async def test_position_is_allocated_at_call_time() -> None:
    async def block(ctx: DurableContext, attempt: int) -> int:
        return attempt

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        first = with_retry(context, block, name="first")
        second = with_retry(context, block, name="second")
        return [await second, await first]

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == [1, 1]
    ids = {u["Name"]: u["Id"] for c in updates_of(runner.service) for u in c}
    assert ids == {"first": ID1, "second": ID2}


def test_with_retry_validates_func() -> None:
    with pytest.raises(ValidationError):
        with_retry(None, None)  # type: ignore[arg-type]
    assert WithRetryConfig() == WithRetryConfig(None, True, None)


async def test_step_errors_stay_step_errors_when_unwrapped() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        async def block(ctx: DurableContext, attempt: int) -> None:
            await ctx.step(lambda _: 1 / 0, name=f"d{attempt}", config=_no_retry_step())

        config = WithRetryConfig(
            retry_strategy=lambda e, n: RetryDecision.no_retry(),
            wrap_with_run_in_child_context=False,
        )
        try:
            await with_retry(context, block, config)
        except StepError as exc:
            return exc.error_type
        return None

    assert (await LocalRunner(handler).run()).result == "ZeroDivisionError"
