"""Requirements 6-x: wait_for_condition."""

from __future__ import annotations

import base64
from typing import Any

from tests.conformance._registry import requirement

from adurable import (
    DurableContext,
    Duration,
    JitterStrategy,
    SerDes,
    SerDesContext,
    WaitForConditionCheckContext,
    WaitForConditionConfig,
    WaitForConditionDecision,
    WaitForConditionError,
    WaitStrategyConfig,
    create_wait_strategy,
    durable_execution,
)


def increment(state: int, context: WaitForConditionCheckContext) -> int:
    """Check: the counter plus one."""
    return state + 1


def poll_until(threshold: int, delay: int = 1) -> Any:
    """A wait strategy polling every ``delay`` s while the state is below ``threshold``."""
    return create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda state: state < threshold,
            initial_delay=Duration(delay),
            backoff_rate=1.0,
            jitter_strategy=JitterStrategy.NONE,
        )
    )


def count_to(threshold: int, initial_state: int = 0) -> WaitForConditionConfig:
    """Count up from ``initial_state`` until ``threshold``."""
    return WaitForConditionConfig(wait_strategy=poll_until(threshold), initial_state=initial_state)


@requirement("6-1")
@durable_execution
async def count_to_input(event: int, context: DurableContext) -> Any:
    """Count from 0 up to the input threshold, one poll per invocation."""
    return await context.wait_for_condition(increment, count_to(event))


@requirement("6-2")
@durable_execution
async def already_met(event: int, context: DurableContext) -> Any:
    """Start at 5 with an unchanging check; the condition (state >= 5) holds at once."""
    config = WaitForConditionConfig(
        wait_strategy=create_wait_strategy(
            WaitStrategyConfig(should_continue_polling=lambda state: state < event)
        ),
        initial_state=5,
    )
    return await context.wait_for_condition(lambda state, _: state, config)


@requirement("6-3")
@durable_execution
async def named_poll(event: int, context: DurableContext) -> Any:
    """Count from 0 up to the input threshold in an operation named "poll-status"."""
    return await context.wait_for_condition(increment, count_to(event), name="poll-status")


@requirement("6-4")
@durable_execution
async def custom_initial_state(event: int, context: DurableContext) -> Any:
    """Count from 5 up to the input threshold."""
    return await context.wait_for_condition(increment, count_to(event, initial_state=5))


@requirement("6-5")
@durable_execution
async def fixed_delay(event: int, context: DurableContext) -> Any:
    """Count from 0 up to the input threshold, polling every 2 s exactly."""
    config = WaitForConditionConfig(wait_strategy=poll_until(event, delay=2), initial_state=0)
    return await context.wait_for_condition(increment, config)


@requirement("6-6")
@durable_execution
async def max_attempts_exceeded(event: int, context: DurableContext) -> Any:
    """Poll a condition that never holds with at most 3 attempts; the strategy gives up."""
    config = WaitForConditionConfig(
        wait_strategy=create_wait_strategy(
            WaitStrategyConfig(
                should_continue_polling=lambda state: True,
                max_attempts=3,
                initial_delay=Duration(1),
                backoff_rate=1.0,
                jitter_strategy=JitterStrategy.NONE,
            )
        ),
        initial_state=event,
    )
    return await context.wait_for_condition(increment, config)


def broken_check(state: Any, context: WaitForConditionCheckContext) -> Any:
    """Check: always raises."""
    raise RuntimeError("check failed")


@requirement("6-7")
@durable_execution
async def check_raises(event: Any, context: DurableContext) -> Any:
    """The check raises on its first attempt; the error fails the execution."""
    return await context.wait_for_condition(broken_check, count_to(1))


@requirement("6-8")
@durable_execution
async def check_raises_caught(event: Any, context: DurableContext) -> Any:
    """The check raises on its first attempt; the handler catches it and recovers."""
    try:
        return await context.wait_for_condition(broken_check, count_to(1))
    except WaitForConditionError:
        return "recovered"


def advance_job(state: dict[str, Any], context: WaitForConditionCheckContext) -> dict[str, Any]:
    """Check: one more attempt; the job is DONE after two."""
    attempts = state["attempts"] + 1
    return {"status": "DONE" if attempts >= 2 else "PENDING", "attempts": attempts}


@requirement("6-9")
@durable_execution
async def object_state(event: Any, context: DurableContext) -> dict[str, Any]:
    """Thread a {status, attempts} object through the polls until status is DONE."""
    config = WaitForConditionConfig(
        wait_strategy=create_wait_strategy(
            WaitStrategyConfig(
                should_continue_polling=lambda state: state["status"] == "PENDING",
                initial_delay=Duration(1),
            )
        ),
        initial_state={"status": "PENDING", "attempts": 0},
    )
    result: dict[str, Any] = await context.wait_for_condition(advance_job, config)
    return result


@requirement("6-10")
@durable_execution
async def null_state(event: Any, context: DurableContext) -> Any:
    """The check returns null and the strategy stops at once; the result is null."""
    config = WaitForConditionConfig(
        wait_strategy=lambda state, attempt: WaitForConditionDecision.stop_polling(),
        initial_state=None,
    )
    return await context.wait_for_condition(lambda state, _: None, config)


class Base64SerDes(SerDes[str]):
    """Stores a string state as base64."""

    def serialize(self, value: str, context: SerDesContext) -> str | None:
        return base64.b64encode(value.encode()).decode()

    def deserialize(self, data: str, context: SerDesContext) -> str:
        return base64.b64decode(data).decode()


@requirement("6-11")
@durable_execution
async def custom_serdes(event: Any, context: DurableContext) -> str:
    """Append "x" to a string state stored through a base64 serdes until it is "xx"."""
    config = WaitForConditionConfig(
        wait_strategy=lambda state, attempt: (
            WaitForConditionDecision.continue_waiting(Duration(1))
            if len(state) < 2
            else WaitForConditionDecision.stop_polling()
        ),
        initial_state="",
        serdes=Base64SerDes(),
    )
    result: str = await context.wait_for_condition(lambda state, _: state + "x", config)
    return result


@requirement("6-12")
@durable_execution
async def then_step(event: int, context: DurableContext) -> int:
    """Count up to the input threshold, then multiply the result by 10 in a step."""
    reached = await context.wait_for_condition(increment, count_to(event))
    result: int = await context.step(lambda _: reached * 10, name="multiply")
    return result


@requirement("6-13")
@durable_execution
async def two_polls(event: Any, context: DurableContext) -> int:
    """Count 0 → 2, then from there → 4, in two wait_for_condition operations."""
    first = await context.wait_for_condition(increment, count_to(2))
    second: int = await context.wait_for_condition(increment, count_to(4, initial_state=first))
    return second
