"""Replay validation (PROTOCOL §6.2, Appendix A.9): changed code fails closed."""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers import Driver

from adurable import DurableContext, Duration, durable_execution

pytestmark = pytest.mark.anyio

ND = "aws_durable_execution_sdk_python.exceptions.NonDeterministicExecutionError"
ID1 = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"


@durable_execution
async def v1(event: Any, context: DurableContext) -> str:
    await context.step(lambda _: "x", name="s1")
    await context.wait(Duration(10), name="pause")
    return "v1"


@durable_execution
async def renamed(event: Any, context: DurableContext) -> str:
    await context.step(lambda _: "x", name="s2")
    await context.wait(Duration(10), name="pause")
    return "v2"


@durable_execution
async def step_became_wait(event: Any, context: DurableContext) -> str:
    await context.wait(Duration(3), name="s1")
    return "v3"


async def _deploy_between_invocations(new: Any) -> dict[str, Any]:
    driver = Driver(v1)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    driver.advance()
    return await driver.invoke(new)


async def test_renamed_step_fails_with_the_official_message() -> None:
    output = await _deploy_between_invocations(renamed)
    assert output["Status"] == "FAILED"
    error = output["Error"]
    assert error["ErrorType"] == ND
    assert error["ErrorMessage"].startswith(
        f"Non-deterministic operation identity at id='{ID1}': name checkpoint='s1' current='s2'"
    )
    assert "recorded STEP (Step) 's1'" in error["ErrorMessage"]
    assert "asked for STEP (Step) 's2'" in error["ErrorMessage"]


async def test_step_replaced_by_wait_fails() -> None:
    output = await _deploy_between_invocations(step_became_wait)
    assert output["Status"] == "FAILED"
    message = output["Error"]["ErrorMessage"]
    assert "type checkpoint='STEP' current='WAIT'" in message
    assert "subtype checkpoint='Step' current='Wait'" in message
    assert "recorded STEP (Step) 's1'" in message and "asked for WAIT (Wait) 's1'" in message


async def test_nondeterminism_is_not_caught_by_user_code() -> None:
    @durable_execution
    async def swallowing(event: Any, context: DurableContext) -> str:
        try:
            await context.step(lambda _: "x", name="other")
        except Exception:
            return "swallowed"
        return "ran"

    output = await _deploy_between_invocations(swallowing)
    # Catching the error does not make the replay valid: the execution still fails closed.
    assert output["Status"] == "FAILED"
    assert output["Error"]["ErrorType"] == ND
