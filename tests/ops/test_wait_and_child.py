"""wait and run_in_child_context (PROTOCOL §7.3, §7.5, Appendix A.2, A.7)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers import short, updates_of

from adurable import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    Duration,
    RetryDecision,
    StepConfig,
    ValidationError,
    durable_execution,
    durable_with_child_context,
)
from adurable.testing import LocalRunner

pytestmark = pytest.mark.anyio

ROOT3 = "6f760b9e9eac89f07ab0223b0f4acb04d1e355d893a1b86a83f4d4b405adee99"
INNER = "4fcce65ec00309c63e7973cc7ba98d082f6db23ff491f8ae0d358d94a449573f"
WAIT4 = "e8e70dc1"


async def test_wait_suspends_and_completes_on_virtual_time() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        await context.wait(Duration.from_days(7), name="week")
        return "later"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert (result.status, result.result, result.invocations) == ("SUCCEEDED", "later", 2)
    [[start]] = updates_of(runner.service)
    assert start == {
        "Id": "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97",
        "Type": "WAIT",
        "Action": "START",
        "Name": "week",
        "SubType": "Wait",
        "WaitOptions": {"WaitSeconds": 604800},
    }


async def test_short_wait_is_rejected_before_an_id_is_used() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        with pytest.raises(ValidationError, match="at least 1 second"):
            context.wait(Duration.from_seconds(0.5))
        return await context.step(lambda _: 1, name="first")

    runner = LocalRunner(handler)
    assert (await runner.run()).result == 1
    assert updates_of(runner.service)[0][0]["Id"].startswith("1ced8f5b")


async def test_child_context_and_wait_match_appendix_a2() -> None:
    @durable_with_child_context
    async def kid(child: DurableContext) -> str:
        return await child.step(lambda _: "inner", name="inner-step")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        await context.step(lambda _: None, name="a")
        await context.step(lambda _: None, name="b")
        value = await context.run_in_child_context(kid())
        await context.wait(Duration(1), name="w")
        return value

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "inner"
    calls = updates_of(runner.service)
    assert calls[2] == [
        {
            "Id": ROOT3,
            "Type": "CONTEXT",
            "Action": "START",
            "Name": "kid",
            "SubType": "RunInChildContext",
        },
        {
            "Id": INNER,
            "ParentId": ROOT3,
            "Type": "STEP",
            "Action": "START",
            "Name": "inner-step",
            "SubType": "Step",
        },
        {
            "Id": INNER,
            "ParentId": ROOT3,
            "Type": "STEP",
            "Action": "SUCCEED",
            "Name": "inner-step",
            "SubType": "Step",
            "Payload": '"inner"',
        },
    ]
    assert calls[3] == [
        {
            "Id": ROOT3,
            "Type": "CONTEXT",
            "Action": "SUCCEED",
            "Name": "kid",
            "SubType": "RunInChildContext",
            "Payload": '"inner"',
            "ContextOptions": {"ReplayChildren": False},
        },
    ]
    assert calls[4][0]["Id"].startswith(WAIT4)
    assert len(calls) == 5  # the replay after the wait records nothing new


async def test_failing_child_raises_child_context_error_with_the_inner_type() -> None:
    caught: list[tuple[str, str | None, str]] = []

    async def kid(child: DurableContext) -> None:
        await child.step(
            lambda _: int("x"),
            name="parse",
            config=StepConfig(retry_strategy=lambda e, n: RetryDecision.no_retry()),
        )

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        try:
            await context.run_in_child_context(kid, name="kid")
        except ChildContextError as exc:
            caught.append((type(exc.__cause__).__name__, exc.error_type, str(exc)))
        await context.wait(Duration(1))
        return "ok"

    runner = LocalRunner(handler)
    assert (await runner.run()).status == "SUCCEEDED"
    expected = (
        "StepError",
        "aws_durable_execution_sdk_python.exceptions.StepError",
        "invalid literal for int() with base 10: 'x'",
    )
    assert caught == [expected, expected]  # first run and replay alike
    fail = updates_of(runner.service)[1][0]
    assert fail["Action"] == "FAIL" and fail["Error"]["ErrorType"] == expected[1]


@pytest.mark.parametrize("summary", [None, "len=300000"])
async def test_large_child_result_replays_children(summary: str | None) -> None:
    runs: list[int] = []

    async def big(child: DurableContext) -> str:
        runs.append(1)
        return await child.step(lambda _: "q" * 300_000, name="make")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        config = ChildConfig(summary_generator=(lambda v: summary) if summary else None)
        value = await context.run_in_child_context(big, name="big", config=config)
        await context.wait(Duration(1))
        return len(value)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == 300_000
    succeed = updates_of(runner.service)[1][0]
    assert succeed["Payload"] == (summary or "")
    assert succeed["ContextOptions"] == {"ReplayChildren": True}
    assert runs == [1, 1]  # the body re-ran on replay, its step replayed from its checkpoint
    assert len(updates_of(runner.service)) == 3


async def test_virtual_child_writes_no_context() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        async def group(child: DurableContext) -> int:
            return await child.step(lambda _: 2, name="inside")

        return await context.run_in_child_context(
            group, name="g", config=ChildConfig(is_virtual=True)
        )

    runner = LocalRunner(handler)
    assert (await runner.run()).result == 2
    [[start, succeed]] = updates_of(runner.service)
    assert "ParentId" not in start and start["Type"] == "STEP"
    assert start["Id"] == "974bfc6321e227b0ff101342eaf19b336f002dc6cc99c18f0941a7755cc20fc4"
    assert short(succeed) == "STEP SUCCEED inside"


async def test_lambda_returning_a_coroutine_works_on_every_backend() -> None:
    async def body(child: DurableContext) -> int:
        return await child.step(lambda _: 4, name="four")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        return await context.run_in_child_context(lambda c: body(c), name="lam")

    assert (await LocalRunner(handler).run()).result == 4
