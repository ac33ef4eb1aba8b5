"""wait_for_condition and create_wait_strategy (PROTOCOL §7.8)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from tests.helpers import Driver, short, updates_of

from adurable import (
    DurableContext,
    Duration,
    JitterStrategy,
    JsonSerDes,
    SuspendExecution,
    ValidationError,
    WaitForConditionCheckContext,
    WaitForConditionConfig,
    WaitForConditionDecision,
    WaitForConditionError,
    WaitStrategyConfig,
    create_wait_strategy,
    durable_execution,
)
from adurable._errors import TimedSuspendExecution
from adurable._serde import EXTENDED_TYPES_SERDES
from adurable.testing import LocalRunner

pytestmark = pytest.mark.anyio

ID1 = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"
OFFICIAL = "aws_durable_execution_sdk_python.exceptions."


def encoded(value: Any) -> str:
    return EXTENDED_TYPES_SERDES.serialize(value)


def until(limit: int, delay: int = 2) -> Any:
    """A strategy polling every ``delay`` s until the state's ``n`` reaches ``limit``."""

    def strategy(state: Any, attempt: int) -> WaitForConditionDecision:
        if state["n"] >= limit:
            return WaitForConditionDecision.stop_polling()
        return WaitForConditionDecision.continue_waiting(Duration(delay))

    return strategy


def bump(state: dict[str, int], ctx: WaitForConditionCheckContext) -> dict[str, int]:
    return {"n": state["n"] + 1, "attempt": ctx.attempt}


# ---------------------------------------------------------------------------- the operation


async def test_state_travels_in_retry_payloads_until_the_strategy_stops() -> None:
    checks: list[tuple[dict[str, int], int]] = []

    async def check(state: dict[str, int], ctx: WaitForConditionCheckContext) -> dict[str, int]:
        checks.append((state, ctx.attempt))
        return bump(state, ctx)

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = WaitForConditionConfig(wait_strategy=until(3), initial_state={"n": 0})
        return await context.wait_for_condition(check, config, name="poll")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert (result.status, result.result, result.invocations) == (
        "SUCCEEDED",
        {"n": 3, "attempt": 3},
        3,
    )
    assert checks == [({"n": 0}, 1), ({"n": 1, "attempt": 1}, 2), ({"n": 2, "attempt": 2}, 3)]
    base = {"Id": ID1, "Name": "poll", "Type": "STEP", "SubType": "WaitForCondition"}
    start = {**base, "Action": "START"}

    def retry(state: Any) -> dict[str, Any]:
        options = {"NextAttemptDelaySeconds": 2}
        return {**base, "Action": "RETRY", "Payload": encoded(state), "StepOptions": options}

    assert updates_of(runner.service) == [
        [start, retry({"n": 1, "attempt": 1})],
        [start, retry({"n": 2, "attempt": 2})],
        [start, {**base, "Action": "SUCCEED", "Payload": encoded({"n": 3, "attempt": 3})}],
    ]
    step = result.get_step("poll")
    assert step.step_details is not None and step.step_details.attempt == 3


async def test_succeeded_condition_replays_without_running_the_check() -> None:
    calls: list[int] = []
    results: list[Any] = []

    def check(state: int, ctx: WaitForConditionCheckContext) -> int:
        calls.append(ctx.attempt)
        return state + 1

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        stop = lambda state, attempt: WaitForConditionDecision.stop_polling()  # noqa: E731
        config = WaitForConditionConfig(wait_strategy=stop, initial_state=(1,))
        results.append(await context.wait_for_condition(lambda s, c: s, config))
        results.append(await context.wait_for_condition(check, WaitForConditionConfig(stop, 1)))
        await context.wait(Duration(5))
        return "done"

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert calls == [1]
    assert results == [(1,), 2, (1,), 2]  # the tuple round-trips, first run and replay alike


async def test_pending_poll_suspends_until_the_next_attempt_without_checking() -> None:
    calls: list[int] = []
    suspensions: list[BaseException] = []

    def check(state: dict[str, int], ctx: WaitForConditionCheckContext) -> dict[str, int]:
        calls.append(ctx.attempt)
        return bump(state, ctx)

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = WaitForConditionConfig(until(2, delay=30), {"n": 0})
        try:
            return await context.wait_for_condition(check, config, name="poll")
        except SuspendExecution as exc:
            suspensions.append(exc)
            raise

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    due = driver.service.next_timer(driver.arn)
    assert due == driver.service.clock.now() + 30
    assert await driver.invoke() == {"Status": "PENDING"}  # woken early: still PENDING
    assert calls == [1]
    assert len(updates_of(driver.service)) == 1
    assert all(isinstance(s, TimedSuspendExecution) for s in suspensions)
    # on replay the resume time is the recorded NextAttemptTimestamp
    assert suspensions[1].scheduled_timestamp == due  # type: ignore[attr-defined]
    driver.advance()
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '{"n": 2, "attempt": 2}'}


async def test_started_poll_runs_the_check_on_the_stored_state_without_a_new_start() -> None:
    seen: list[tuple[Any, int]] = []

    def check(state: dict[str, int], ctx: WaitForConditionCheckContext) -> dict[str, int]:
        seen.append((state, ctx.attempt))
        return bump(state, ctx)

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = WaitForConditionConfig(until(9), {"n": 0})
        return await context.wait_for_condition(check, config, name="poll")

    driver = Driver(handler)
    driver.start()
    # An earlier invocation polled once (RETRY with state n=5), then crashed mid-check after
    # its START was made durable: the operation is STARTED with the state of the last RETRY.
    service = driver.service
    base = {"Id": ID1, "Name": "poll", "Type": "STEP", "SubType": "WaitForCondition"}
    token = service.invocation_event(driver.arn)["CheckpointToken"]
    retry = {"NextAttemptDelaySeconds": 1}
    response = service.checkpoint(
        DurableExecutionArn=driver.arn,
        CheckpointToken=token,
        Updates=[
            {**base, "Action": "START"},
            {**base, "Action": "RETRY", "Payload": encoded({"n": 5}), "StepOptions": retry},
        ],
    )
    driver.advance()
    service.checkpoint(
        DurableExecutionArn=driver.arn,
        CheckpointToken=response["CheckpointToken"],
        Updates=[{**base, "Action": "START"}],
    )
    service.calls.clear()
    assert await driver.invoke() == {"Status": "PENDING"}
    assert seen == [({"n": 5}, 2)]
    assert [[short(u) for u in c] for c in updates_of(service)] == [["STEP RETRY poll"]]


async def test_exhausted_attempts_fail_the_operation_on_every_replay() -> None:
    errors: list[list[Any]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        strategy = create_wait_strategy(
            WaitStrategyConfig(
                should_continue_polling=lambda state: True,
                max_attempts=2,
                initial_delay=Duration(1),
            )
        )
        config = WaitForConditionConfig(strategy, 0)
        try:
            await context.wait_for_condition(lambda s, c: s + 1, config, name="poll")
        except WaitForConditionError as exc:
            errors.append([exc.message, exc.error_type, type(exc.__cause__).__name__])
        await context.wait(Duration(1))
        return "done"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    message = "wait_for_condition exhausted 2 attempts before the condition was met"
    wire_type = OFFICIAL + "WaitForConditionError"
    assert errors == [[message, wire_type, "WaitForConditionError"]] * 2
    fail = updates_of(runner.service)[1][-1]
    assert fail == {
        "Id": ID1,
        "Name": "poll",
        "Type": "STEP",
        "SubType": "WaitForCondition",
        "Action": "FAIL",
        "Error": {"ErrorMessage": message, "ErrorType": wire_type},
    }


async def test_a_failing_check_fails_with_the_inner_error_type() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        def check(state: Any, ctx: WaitForConditionCheckContext) -> Any:
            raise LookupError("no such order")

        config = WaitForConditionConfig(until(1), {"n": 0})
        await context.wait_for_condition(check, config)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "FAILED"
    assert result.error == {
        "ErrorMessage": "no such order",
        "ErrorType": OFFICIAL + "WaitForConditionError",
    }
    assert [[short(u) for u in c] for c in updates_of(runner.service)] == [
        ["STEP START", "STEP FAIL"]
    ]
    assert updates_of(runner.service)[0][1]["Error"]["ErrorType"] == "LookupError"


async def test_strategy_delay_below_one_second_is_clamped() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        def strategy(state: int, attempt: int) -> WaitForConditionDecision:
            if attempt >= 2:
                return WaitForConditionDecision.stop_polling()
            return WaitForConditionDecision.continue_waiting(Duration(0))

        return await context.wait_for_condition(
            lambda s, c: s, WaitForConditionConfig(strategy, "x")
        )

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "x"
    retry = updates_of(runner.service)[0][1]
    assert retry["StepOptions"] == {"NextAttemptDelaySeconds": 1}


async def test_custom_serdes_and_a_none_payload() -> None:
    class Nothing:
        def serialize(self, value: Any, context: Any) -> None:
            return None

        def deserialize(self, data: str, context: Any) -> Any:
            raise AssertionError("never called without a payload")

    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        def check(state: Any, ctx: WaitForConditionCheckContext) -> Any:
            seen.append(state)
            return "ignored"

        json_config = WaitForConditionConfig(until(1), {"n": 0}, serdes=JsonSerDes())
        first = await context.wait_for_condition(lambda s, c: {"n": 1}, json_config, name="j")

        def twice(state: Any, attempt: int) -> WaitForConditionDecision:
            if attempt >= 2:
                return WaitForConditionDecision.stop_polling()
            return WaitForConditionDecision.continue_waiting(Duration(1))

        none_config = WaitForConditionConfig(twice, "start", serdes=Nothing())  # type: ignore[arg-type]
        second = await context.wait_for_condition(check, none_config, name="none")
        return [first, second]

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == [{"n": 1}, None]
    assert seen == [None, None]  # no payload: the state is None (initial state included)
    calls = updates_of(runner.service)
    assert calls[0][1]["Payload"] == '{"n": 1}'
    assert "Payload" not in calls[1][1]


async def test_validation_happens_before_allocation() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        errors = []
        config = WaitForConditionConfig(until(1), {"n": 0})
        for args in ((None, config), (bump, None), (42, config)):
            try:
                context.wait_for_condition(*args)  # type: ignore[arg-type]
            except ValidationError:
                errors.append(1)
        await context.step(lambda _: 0, name="first")
        return len(errors)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == 3
    assert updates_of(runner.service)[0][0]["Id"] == ID1


async def test_check_logger_carries_the_attempt() -> None:
    extras: list[Any] = []

    class Capture:
        def info(self, msg: str, *args: Any, extra: Any = None) -> None:
            extras.append(extra)

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        context.set_logger(Capture())

        def check(state: Any, ctx: WaitForConditionCheckContext) -> Any:
            ctx.logger.info("polling")
            return state

        stop = lambda s, a: WaitForConditionDecision.stop_polling()  # noqa: E731
        return await context.wait_for_condition(check, WaitForConditionConfig(stop, 1), name="p")

    await LocalRunner(handler).run()
    [extra] = extras
    assert (extra["attempt"], extra["operationId"], extra["operationName"]) == (1, ID1, "p")


# ---------------------------------------------------------------------------- create_wait_strategy


def test_strategy_without_jitter_backs_off_to_the_cap() -> None:
    strategy = create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda state: True,
            max_attempts=100_000,
            max_delay=Duration(20),
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    delays = [strategy(None, n).delay.to_seconds() for n in range(1, 7)]
    assert delays == [5, 8, 12, 17, 20, 20]  # ceil(5 * 1.5 ** (n - 1)), capped at 20
    assert strategy(None, 10_000).delay.to_seconds() == 20  # no overflow


@pytest.mark.parametrize("jitter", [JitterStrategy.FULL, JitterStrategy.HALF])
def test_jitter_bounds(jitter: JitterStrategy) -> None:
    random.seed(7)
    strategy = create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda state: True,
            initial_delay=Duration(10),
            backoff_rate=2,
            jitter_strategy=jitter,
        )
    )
    for attempt, base in ((1, 10), (2, 20), (3, 40)):
        delays = {strategy(None, attempt).delay.to_seconds() for _ in range(300)}
        low = 1 if jitter is JitterStrategy.FULL else math.ceil(base / 2)
        assert min(delays) >= low
        assert max(delays) <= base
        assert len(delays) > 3  # actually random


def test_tiny_delays_are_at_least_one_second() -> None:
    strategy = create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda state: True,
            initial_delay=Duration(0),
            jitter_strategy=JitterStrategy.FULL,
        )
    )
    assert strategy(None, 1) == WaitForConditionDecision(True, Duration(1))


def test_condition_is_checked_before_the_attempt_limit() -> None:
    strategy = create_wait_strategy(
        WaitStrategyConfig(should_continue_polling=lambda state: state != "done", max_attempts=3)
    )
    assert strategy("done", 3) == WaitForConditionDecision.stop_polling()
    assert strategy("done", 99).should_continue is False
    with pytest.raises(WaitForConditionError, match="exhausted 3 attempts"):
        strategy("waiting", 3)
    assert strategy("waiting", 2).should_continue is True


def test_defaults_match_the_spec() -> None:
    config = WaitStrategyConfig(should_continue_polling=lambda state: True)
    assert (
        config.max_attempts,
        config.initial_delay,
        config.max_delay,
        config.backoff_rate,
        config.jitter_strategy,
    ) == (60, Duration(5), Duration(300), 1.5, JitterStrategy.FULL)
