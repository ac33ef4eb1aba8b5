"""step: success, retries, failure, semantics, sync and async callables (PROTOCOL §7.1)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from tests.helpers import Driver, short, updates_of

from adurable import (
    DurableContext,
    Duration,
    JitterStrategy,
    RetryDecision,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    StepSemantics,
    create_retry_strategy,
    durable_execution,
    durable_step,
)
from adurable.testing import LocalRunner

pytestmark = pytest.mark.anyio

STEP_ERROR = "aws_durable_execution_sdk_python.exceptions.StepError"
ID1 = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"
ID2 = "c5faca15ac2f93578b39ef4b6bbb871bdedce4ddd584fd31f0bb66fade3947e6"


def no_retry(error: Exception, attempts: int) -> RetryDecision:
    return RetryDecision.no_retry()


@durable_step
def add(step: StepContext, a: int, b: int) -> int:
    return a + b


@durable_step
async def greet(step: StepContext, who: str) -> str:
    return f"hello {who}"


async def test_sync_and_async_steps_succeed_in_one_call_each() -> None:
    threads: list[str] = []

    def where(_: StepContext) -> str:
        threads.append(threading.current_thread().name)
        return "ok"

    @durable_execution
    async def handler(event: dict[str, Any], context: DurableContext) -> list[Any]:
        total = await context.step(add(1, 2))
        text = await context.step(greet(event["who"]))
        plain = await context.step(where, name="where")
        return [total, text, plain]

    runner = LocalRunner(handler)
    result = await runner.run(input={"who": "trio"})
    assert result.status == "SUCCEEDED"
    assert result.result == [3, "hello trio", "ok"]
    assert threads and threads[0] != threading.main_thread().name  # sync steps run in a worker
    calls = updates_of(runner.service)
    assert [[short(u) for u in call] for call in calls] == [
        ["STEP START add", "STEP SUCCEED add"],
        ["STEP START greet", "STEP SUCCEED greet"],
        ["STEP START where", "STEP SUCCEED where"],
    ]
    assert calls[0][1] == {
        "Id": ID1,
        "Type": "STEP",
        "Action": "SUCCEED",
        "Name": "add",
        "SubType": "Step",
        "Payload": "3",
    }


async def test_unnamed_plain_function_has_no_name() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        return await context.step(lambda _: 5)

    runner = LocalRunner(handler)
    assert (await runner.run()).result == 5
    start = updates_of(runner.service)[0][0]
    assert start == {"Id": ID1, "Type": "STEP", "Action": "START", "SubType": "Step"}


async def test_retry_then_succeed_matches_appendix_a1() -> None:
    attempts: list[int] = []
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=5, initial_delay=Duration(1), jitter_strategy=JitterStrategy.NONE
        )
    )

    @durable_step
    def flaky(step: StepContext) -> int:
        attempts.append(step.attempt)
        if step.attempt < 3:
            raise ValueError(f"boom {step.attempt}")
        return step.attempt

    @durable_step
    def bad(step: StepContext) -> None:
        raise KeyError("nope")

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> dict[str, Any]:
        value = await context.step(flaky(), config=StepConfig(retry_strategy=strategy))
        try:
            await context.step(bad(), config=StepConfig(retry_strategy=no_retry))
        except Exception as exc:
            return {"value": value, "error": type(exc).__name__, "type": exc.error_type}  # type: ignore[attr-defined]
        return {}

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.result == {"value": 3, "error": "StepError", "type": "KeyError"}
    assert attempts == [1, 2, 3]
    assert result.invocations == 3
    base = {"Id": ID1, "Type": "STEP", "Name": "flaky", "SubType": "Step"}
    start = {**base, "Action": "START"}
    assert updates_of(runner.service) == [
        [
            start,
            {
                **base,
                "Action": "RETRY",
                "Error": {"ErrorMessage": "boom 1", "ErrorType": "ValueError"},
                "StepOptions": {"NextAttemptDelaySeconds": 1},
            },
        ],
        [
            start,
            {
                **base,
                "Action": "RETRY",
                "Error": {"ErrorMessage": "boom 2", "ErrorType": "ValueError"},
                "StepOptions": {"NextAttemptDelaySeconds": 2},
            },
        ],
        [start, {**base, "Action": "SUCCEED", "Payload": "3"}],
        [
            {"Id": ID2, "Type": "STEP", "Action": "START", "Name": "bad", "SubType": "Step"},
            {
                "Id": ID2,
                "Type": "STEP",
                "Action": "FAIL",
                "Name": "bad",
                "SubType": "Step",
                "Error": {"ErrorMessage": "'nope'", "ErrorType": "KeyError"},
            },
        ],
    ]


async def test_retries_exhausted_fail_the_execution_with_step_error() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> None:
        def boom(_: StepContext) -> None:
            raise RuntimeError("down")

        strategy = create_retry_strategy(
            RetryStrategyConfig(max_attempts=2, initial_delay=Duration(1))
        )
        await context.step(boom, name="boom", config=StepConfig(retry_strategy=strategy))

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert result.error == {"ErrorMessage": "down", "ErrorType": STEP_ERROR}
    step = result.get_step("boom")
    assert step.status.value == "FAILED"
    assert step.step_details is not None and step.step_details.attempt == 2
    assert (
        step.step_details.error is not None and step.step_details.error.error_type == "RuntimeError"
    )


async def test_failed_step_raises_the_same_error_on_replay() -> None:
    seen: list[tuple[str, str | None]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        try:
            await context.step(
                lambda _: 1 / 0, name="div", config=StepConfig(retry_strategy=no_retry)
            )
        except Exception as exc:
            seen.append((type(exc).__name__, exc.error_type))  # type: ignore[attr-defined]
        await context.wait(Duration(5))
        return "done"

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert seen == [("StepError", "ZeroDivisionError")] * 2


async def test_default_retry_strategy_retries_six_times() -> None:
    calls: list[int] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> None:
        def always(step: StepContext) -> None:
            calls.append(step.attempt)
            raise ValueError("no")

        await context.step(always, name="always")

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert calls == [1, 2, 3, 4, 5, 6]


async def test_at_most_once_sends_start_alone_then_succeed() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        config = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
        return await context.step(lambda _: 7, name="once", config=config)

    runner = LocalRunner(handler)
    assert (await runner.run()).result == 7
    assert [[short(u) for u in c] for c in updates_of(runner.service)] == [
        ["STEP START once"],
        ["STEP SUCCEED once"],
    ]


async def crash_when(started: Any, driver: Driver) -> None:
    """Run one invocation and kill it (a Lambda timeout) once ``started`` is set."""
    import anyio

    event = driver.service.invocation_event(driver.arn)
    async with anyio.create_task_group() as tg:

        async def crash() -> None:
            await started.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(crash)
        await driver.handler.run(event, None, client=driver.service)
    driver.service.fail_invocation(driver.arn, TimeoutError("Task timed out"))


@pytest.mark.parametrize("retry", [False, True])
async def test_at_most_once_interrupted_goes_through_the_retry_strategy(retry: bool) -> None:
    import anyio

    started = anyio.Event()
    runs: list[int] = []

    async def body(step: StepContext) -> str:
        runs.append(step.attempt)
        if len(runs) == 1:
            started.set()
            await anyio.sleep_forever()  # the invocation dies here
        return "charged"

    strategy = (
        create_retry_strategy(RetryStrategyConfig(max_attempts=2, initial_delay=Duration(1)))
        if retry
        else no_retry
    )

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        config = StepConfig(
            step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry_strategy=strategy
        )
        return await context.step(body, name="charge", config=config)

    driver = Driver(handler)
    driver.start()
    await crash_when(started, driver)

    output = await driver.invoke()
    if not retry:
        assert output["Status"] == "FAILED"
        assert output["Error"]["ErrorType"] == STEP_ERROR
        step = driver.service.operations(driver.arn)[1]
        assert step.step_details is not None and step.step_details.error is not None
        assert step.step_details.error.error_type == (
            "aws_durable_execution_sdk_python.exceptions.StepInterruptedError"
        )
        assert runs == [1]
        return
    assert output == {"Status": "PENDING"}
    driver.advance()
    output = await driver.invoke()
    assert output == {"Status": "SUCCEEDED", "Result": '"charged"'}
    assert runs == [1, 2]


async def test_at_least_once_step_reruns_after_a_crash() -> None:
    import anyio

    started = anyio.Event()
    runs: list[int] = []

    async def body(step: StepContext) -> str:
        runs.append(step.attempt)
        if len(runs) == 1:
            started.set()
            await anyio.sleep_forever()
        return "sent"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        await context.step(lambda _: "before", name="before")
        return await context.step(body, name="email")

    driver = Driver(handler)
    driver.start()
    await crash_when(started, driver)
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '"sent"'}
    assert runs == [1, 1]  # same attempt number: the interrupted attempt runs again


class Reject(Exception):
    pass


class BrokenSerDes:
    """A custom serdes whose failures are permanent or transient on demand."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def serialize(self, value: Any, context: Any) -> str:
        raise self.error

    def deserialize(self, data: str, context: Any) -> Any:
        raise self.error


async def test_permanent_serdes_failure_fails_the_step_without_retrying() -> None:
    from adurable import SerDesError

    runs: list[int] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        def work(step: StepContext) -> int:
            runs.append(step.attempt)
            return 1

        try:
            await context.step(work, name="w", config=StepConfig(serdes=BrokenSerDes(Reject("no"))))  # type: ignore[arg-type]
        except SerDesError as exc:
            return str(exc)
        return "unreachable"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.result.startswith("Serialization failed for id: ")
    assert runs == [1]
    fail = updates_of(runner.service)[0][-1]
    assert fail["Action"] == "FAIL"
    assert fail["Error"]["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.SerDesError"


async def test_transient_serdes_failure_retries_the_invocation_and_checkpoints_nothing() -> None:
    from adurable import RetryableSerDesError

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        serdes = BrokenSerDes(RetryableSerDesError("store unavailable"))
        return await context.step(lambda _: 1, name="w", config=StepConfig(serdes=serdes))  # type: ignore[arg-type]

    driver = Driver(handler)
    driver.start()
    with pytest.raises(RetryableSerDesError):
        await driver.invoke()
    assert [short(u) for call in updates_of(driver.service) for u in call] == []


async def test_custom_serdes_is_used_for_payloads() -> None:
    import json

    class Upper:
        def serialize(self, value: Any, context: Any) -> str:
            return json.dumps(value.upper())

        def deserialize(self, data: str, context: Any) -> Any:
            return json.loads(data).lower()

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        config = StepConfig(serdes=Upper())  # type: ignore[arg-type]
        return await context.step(lambda _: "quiet", name="u", config=config)

    runner = LocalRunner(handler)
    assert (await runner.run()).result == "quiet"
    assert updates_of(runner.service)[0][-1]["Payload"] == '"QUIET"'
