"""Durable handlers the engine tests drive (also imported by the killed child process)."""

from __future__ import annotations

import os
from typing import Any

import anyio

from adurable import (
    CallbackConfig,
    DurableContext,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    StepConfig,
    WaitForCallbackConfig,
    WaitForConditionConfig,
    WaitForConditionDecision,
    create_retry_strategy,
    durable_execution,
)

#: Set in the child process of the kill test: ``worker`` blocks in its step until killed.
BLOCK_ENV = "ADURABLE_TEST_BLOCK_WORKER"

submitted: list[str] = []


@durable_execution
async def napper(event: Any, context: DurableContext) -> Any:
    """A step, an hour-long wait, a step."""
    before = await context.step(lambda _: "before", name="before")
    await context.wait(Duration.from_hours(1), name="nap")
    after = await context.step(lambda _: "after", name="after")
    return {"before": before, "after": after, "input": event}


@durable_execution
async def approver(event: Any, context: DurableContext) -> Any:
    """Waits (up to a day) for an approval callback."""
    answer = await context.wait_for_callback(
        lambda callback_id, ctx: submitted.append(callback_id),
        name="approval",
        config=WaitForCallbackConfig(timeout=Duration.from_days(1)),
    )
    return {"answer": answer}


@durable_execution
async def worker(event: Any, context: DurableContext) -> Any:
    """One step that, in the kill test's child process, never finishes."""

    async def work(_: Any) -> str:
        if os.environ.get(BLOCK_ENV) == "1":
            await anyio.sleep_forever()
        return "worked"

    return await context.step(work, name="work")


@durable_execution
async def callback_with_timeouts(event: Any, context: DurableContext) -> Any:
    """A callback with a timeout and a heartbeat timeout."""
    config = CallbackConfig(timeout=Duration(300), heartbeat_timeout=Duration(60))
    callback = await context.create_callback("cb", config=config)
    return await callback.result()


FLAKY = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3,
            initial_delay=Duration(2),
            backoff_rate=1.0,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
)
attempts: list[int] = []


@durable_execution
async def flaky(event: Any, context: DurableContext) -> Any:
    """A step failing twice, succeeding on its third attempt."""

    def body(step: Any) -> str:
        attempts.append(step.attempt)
        if step.attempt < 3:
            raise ValueError(f"boom {step.attempt}")
        return "ok"

    return await context.step(body, name="flaky", config=FLAKY)


def _until_three(state: Any, attempt: int) -> WaitForConditionDecision:
    if state["n"] >= 3:
        return WaitForConditionDecision.stop_polling()
    return WaitForConditionDecision.continue_waiting(Duration(10))


@durable_execution
async def poller(event: Any, context: DurableContext) -> Any:
    """wait_for_condition: three polls, ten seconds apart."""
    config = WaitForConditionConfig(wait_strategy=_until_three, initial_state={"n": 0})
    return await context.wait_for_condition(
        lambda state, ctx: {"n": state["n"] + 1}, config=config, name="poll"
    )


@durable_execution
async def caller(event: Any, context: DurableContext) -> Any:
    """Chained-invokes ``event["target"]`` with ``event["payload"]``."""
    from adurable import InvokeConfig

    config = InvokeConfig(tenant_id=event.get("tenant"))
    return await context.invoke(event["target"], event.get("payload"), name="call", config=config)


@durable_execution
async def sleeper(event: Any, context: DurableContext) -> Any:
    """Waits ``event["seconds"]`` seconds."""
    await context.wait(Duration(event["seconds"]), name="sleep")
    return "rested"


def double(event: Any, context: Any) -> Any:
    """A plain function."""
    return {"double": event * 2}


async def explode(event: Any, context: Any) -> Any:
    """A plain async function that fails."""
    raise KeyError("boom")


class FrozenClock:
    """A clock that never moves: the scheduler sleeps until woken, timers never come due."""

    virtual = False

    def __init__(self, now: float = 1_767_225_600.0) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def now_datetime(self) -> Any:
        import datetime as dt

        return dt.datetime.fromtimestamp(self._now, tz=dt.UTC)

    async def sleep_until(self, t: float | None, wake: anyio.Event) -> None:
        await wake.wait()


def waiting_on_the_world(service: Any, arn: str) -> bool:
    """The execution's last invocation ended and something (a wait, a callback) is pending."""
    if service.in_flight(arn) or service.execution(arn).invocations == 0:
        return False
    ops = service.operations(arn)
    return any(op.type.value in ("WAIT", "CALLBACK") and op.status.value == "STARTED" for op in ops)


def step_started(service: Any, arn: str) -> bool:
    """An invocation is in flight and its step's START is recorded."""
    ops = service.operations(arn)
    return service.in_flight(arn) and any(op.type.value == "STEP" for op in ops)
