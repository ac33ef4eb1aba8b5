"""Requirements 7-x: wait_for_callback (a WaitForCallback context: callback + submitter step)."""

from __future__ import annotations

import json
from typing import Any

from tests.conformance._registry import requirement

from adurable import (
    CallbackError,
    DurableContext,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    SerDes,
    SerDesContext,
    WaitForCallbackConfig,
    WaitForCallbackContext,
    create_retry_strategy,
    durable_execution,
)


def register(callback_id: str, context: WaitForCallbackContext) -> None:
    """A submitter that only receives the callback id (nothing durable happens)."""


@requirement("7-1", "7-15")
@durable_execution
async def wait_for_callback_basic(event: Any, context: DurableContext) -> Any:
    """One wait_for_callback named after the input; return the callback's result."""
    return await context.wait_for_callback(register, name=event)


@requirement("7-2")
@durable_execution
async def wait_for_callback_named(event: Any, context: DurableContext) -> Any:
    """One wait_for_callback named "approval"; return the callback's result."""
    return await context.wait_for_callback(register, name="approval")


@requirement("7-3")
@durable_execution
async def wait_for_callback_anonymous(event: Any, context: DurableContext) -> Any:
    """One wait_for_callback with only an inline submitter and no name."""
    return await context.wait_for_callback(lambda callback_id, ctx: None)


@requirement("7-4")
@durable_execution
async def wait_for_callback_failure(event: Any, context: DurableContext) -> Any:
    """The external system fails the callback; the error is not caught."""
    return await context.wait_for_callback(register, name=event)


@requirement("7-5")
@durable_execution
async def wait_for_callback_timeout(event: Any, context: DurableContext) -> Any:
    """A 3-second timeout nobody beats; the timeout error is not caught."""
    config = WaitForCallbackConfig(timeout=Duration.from_seconds(3))
    return await context.wait_for_callback(register, name=event, config=config)


@requirement("7-6")
@durable_execution
async def wait_for_callback_failure_caught(event: Any, context: DurableContext) -> Any:
    """Catch the external failure and return "recovered"."""
    try:
        return await context.wait_for_callback(register, name=event)
    except CallbackError:
        return "recovered"


@requirement("7-7")
@durable_execution
async def wait_for_callback_submitter_exhausted(event: Any, context: DurableContext) -> Any:
    """The submitter always raises; 2 attempts, 1 second apart, then the execution fails."""

    def submit(callback_id: str, ctx: WaitForCallbackContext) -> None:
        raise RuntimeError("submitter failed")

    retry = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=2,
            initial_delay=Duration.from_seconds(1),
            max_delay=Duration.from_seconds(1),
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    config = WaitForCallbackConfig(retry_strategy=retry)
    return await context.wait_for_callback(submit, name=event, config=config)


@requirement("7-8")
@durable_execution
async def wait_for_callback_in_child(event: Any, context: DurableContext) -> Any:
    """A wait_for_callback inside a child context named "wrapper"."""

    async def wrapper(child: DurableContext) -> Any:
        return await child.wait_for_callback(register, name=event)

    return await context.run_in_child_context(wrapper, name="wrapper")


@requirement("7-9")
@durable_execution
async def wait_for_callback_twice(event: Any, context: DurableContext) -> Any:
    """Two sequential wait_for_callback operations, "first" then "second"."""
    await context.wait_for_callback(register, name="first")
    return await context.wait_for_callback(register, name="second")


@requirement("7-10")
@durable_execution
async def wait_for_callback_after_wait_and_step(event: Any, context: DurableContext) -> Any:
    """A 1-second wait, a step returning fixed data, then a wait_for_callback."""
    await context.wait(Duration.from_seconds(1))
    await context.step(lambda _: {"fixed": "data"}, name="fixed")
    return await context.wait_for_callback(register, name=event)


class JsonObjectSerDes(SerDes[Any]):
    """Reads the callback payload as JSON instead of the default raw string."""

    def serialize(self, value: Any, context: SerDesContext) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, context: SerDesContext) -> Any:
        return json.loads(data)


@requirement("7-11")
@durable_execution
async def wait_for_callback_json(event: Any, context: DurableContext) -> Any:
    """Decode the callback payload as a JSON object and return its "status"."""
    config = WaitForCallbackConfig(serdes=JsonObjectSerDes())
    result = await context.wait_for_callback(register, name=event, config=config)
    return result["status"]


@requirement("7-12")
@durable_execution
async def wait_for_callback_heartbeat_timeout(event: Any, context: DurableContext) -> Any:
    """A 5-second heartbeat timeout and no heartbeat; the error is not caught."""
    config = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
    return await context.wait_for_callback(register, name=event, config=config)


@requirement("7-13")
@durable_execution
async def wait_for_callback_heartbeat_then_success(event: Any, context: DurableContext) -> Any:
    """A 10-second heartbeat timeout, kept alive by a heartbeat, then completed."""
    config = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(10))
    return await context.wait_for_callback(register, name=event, config=config)


@requirement("7-14")
@durable_execution
async def wait_for_callback_timeout_caught(event: Any, context: DurableContext) -> Any:
    """Catch the 3-second timeout and return "timed-out-handled"."""
    config = WaitForCallbackConfig(timeout=Duration.from_seconds(3))
    try:
        return await context.wait_for_callback(register, name=event, config=config)
    except CallbackError:
        return "timed-out-handled"
