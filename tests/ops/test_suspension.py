"""Suspension ends the invocation and nothing outlives it (issue 2, item 9)."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import pytest
from tests.helpers import Driver, short, updates_of

from adurable import DurableContext, Duration, StepContext, durable_execution

pytestmark = pytest.mark.anyio


async def test_background_step_is_cancelled_at_suspension_and_never_checkpoints() -> None:
    body_started = anyio.Event()
    release = anyio.Event()
    cancelled: list[bool] = []
    completions: list[int] = []

    async def slow(step: StepContext) -> str:
        if not body_started.is_set():
            body_started.set()
            try:
                await release.wait()
            except anyio.get_cancelled_exc_class():
                cancelled.append(True)
                raise
        completions.append(step.attempt)
        return "slow-done"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        async with anyio.create_task_group() as tg:
            tg.start_soon(context.step, slow, "slow")  # position 1, allocated now
            await body_started.wait()
            await context.wait(Duration(30), name="nap")  # position 2: suspends
        return "unreachable on the first invocation"

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    release.set()  # too late: the step's task is gone
    await anyio.lowlevel.checkpoint()
    assert cancelled == [True]
    assert completions == []
    first = updates_of(driver.service)
    # The pending async START was flushed with the WAIT; no SUCCEED ever followed.
    assert [[short(u) for u in call] for call in first] == [["STEP START slow", "WAIT START nap"]]

    driver.advance()
    output = await driver.invoke()
    assert output["Status"] in {"PENDING", "SUCCEEDED"}
    actions = [short(u) for call in updates_of(driver.service) for u in call]
    assert actions.count("STEP SUCCEED slow") == 1  # exactly once, by the second invocation
    assert completions == [1]


async def test_suspension_cannot_be_swallowed_by_except_exception() -> None:
    after: list[str] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        try:
            await context.wait(Duration(5), name="w")
        except Exception:  # must not catch the suspension
            after.append("swallowed")
        after.append("continued")
        return "done"

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    assert after == []


async def test_even_base_exception_catchers_cannot_continue_durable_work() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        with contextlib.suppress(BaseException):
            await context.wait(Duration(5), name="w")
        await context.step(lambda _: "side effect", name="after")  # cancelled scope: never runs
        return "done"

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    assert [short(u) for call in updates_of(driver.service) for u in call] == ["WAIT START w"]
