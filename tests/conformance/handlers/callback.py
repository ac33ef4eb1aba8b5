"""Requirements 4-x: create_callback (Callback.result() for the outcome)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from tests.conformance._registry import requirement

from adurable import (
    CallbackConfig,
    CallbackError,
    DurableContext,
    Duration,
    SerDes,
    SerDesContext,
    durable_execution,
)


@requirement("4-1")
@durable_execution
async def callback_basic(event: Any, context: DurableContext) -> Any:
    """Create a callback named after the input and return its result."""
    callback = await context.create_callback(name=event)
    return await callback.result()


@requirement("4-2")
@durable_execution
async def callback_named(event: Any, context: DurableContext) -> Any:
    """Create a callback named "approval" and return its result."""
    callback = await context.create_callback(name="approval")
    return await callback.result()


@requirement("4-3")
@durable_execution
async def callback_timeout(event: Any, context: DurableContext) -> Any:
    """A callback with a 5-second timeout nobody completes: the execution fails."""
    config = CallbackConfig(timeout=Duration.from_seconds(5))
    callback = await context.create_callback(name=event, config=config)
    return await callback.result()


@requirement("4-4")
@durable_execution
async def callback_heartbeat_timeout(event: Any, context: DurableContext) -> Any:
    """A callback with a 5-second heartbeat timeout and no heartbeat: the execution fails."""
    config = CallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
    callback = await context.create_callback(name=event, config=config)
    return await callback.result()


@requirement("4-5")
@durable_execution
async def callback_heartbeat_then_success(event: Any, context: DurableContext) -> Any:
    """A callback with a 10-second heartbeat timeout, kept alive, then completed."""
    config = CallbackConfig(heartbeat_timeout=Duration.from_seconds(10))
    callback = await context.create_callback(name=event, config=config)
    return await callback.result()


@requirement("4-6")
@durable_execution
async def callback_failure(event: Any, context: DurableContext) -> Any:
    """The external system fails the callback; the error is not caught."""
    callback = await context.create_callback(name=event)
    return await callback.result()


@requirement("4-7")
@durable_execution
async def callback_step_failure(event: Any, context: DurableContext) -> Any:
    """Create a callback, run a step, then await the callback (which fails)."""
    callback = await context.create_callback(name=event)
    await context.step(lambda _: "stepped", name="work")
    return await callback.result()


@requirement("4-8")
@durable_execution
async def callback_step_timeout(event: Any, context: DurableContext) -> Any:
    """Create a callback with a 5-second timeout, run a step, then await it (it times out)."""
    config = CallbackConfig(timeout=Duration.from_seconds(5))
    callback = await context.create_callback(name=event, config=config)
    await context.step(lambda _: "stepped", name="work")
    return await callback.result()


@requirement("4-9", "4-10")
@durable_execution
async def callback_wait_then_result(event: Any, context: DurableContext) -> Any:
    """Create a callback, wait 5 seconds, then await the callback's result."""
    callback = await context.create_callback(name=event)
    await context.wait(Duration.from_seconds(5))
    return await callback.result()


@requirement("4-11")
@durable_execution
async def callback_timeout_during_wait(event: Any, context: DurableContext) -> Any:
    """A callback with a 3-second timeout, a 6-second wait, then the callback's result."""
    config = CallbackConfig(timeout=Duration.from_seconds(3))
    callback = await context.create_callback(name=event, config=config)
    await context.wait(Duration.from_seconds(6))
    return await callback.result()


@requirement("4-12")
@durable_execution
async def callback_then_wait(event: Any, context: DurableContext) -> Any:
    """Await a callback, wait 2 seconds, then return the callback's result."""
    callback = await context.create_callback(name=event)
    result = await callback.result()
    await context.wait(Duration.from_seconds(2))
    return result


@requirement("4-13")
@durable_execution
async def callback_failure_caught_then_wait(event: Any, context: DurableContext) -> Any:
    """Catch a callback failure, wait 2 seconds, then return the error message."""
    callback = await context.create_callback(name=event)
    try:
        message = await callback.result()
    except CallbackError as exc:
        message = f"callback failed: {exc}"
    await context.wait(Duration.from_seconds(2))
    return message


@requirement("4-14")
@durable_execution
async def callback_timeout_caught_then_wait(event: Any, context: DurableContext) -> Any:
    """Catch a callback timeout (3 seconds), wait 2 seconds, then return a message."""
    config = CallbackConfig(timeout=Duration.from_seconds(3))
    callback = await context.create_callback(name=event, config=config)
    try:
        message = await callback.result()
    except CallbackError as exc:
        message = f"callback timed out: {exc}"
    await context.wait(Duration.from_seconds(2))
    return message


@dataclass(frozen=True)
class Received:
    """The typed callback payload of 4-15: the ISO timestamp read as epoch seconds."""

    id: str
    message: str
    timestamp: int


class ReceivedSerDes(SerDes[Received]):
    """Reads the callback's raw JSON into a ``Received``."""

    def serialize(self, value: Received, context: SerDesContext) -> str:
        return json.dumps(asdict(value))

    def deserialize(self, data: str, context: SerDesContext) -> Received:
        raw = json.loads(data)
        stamp = dt.datetime.fromisoformat(raw["timestamp"].replace("Z", "+00:00"))
        return Received(str(raw["id"]), str(raw["message"]), int(stamp.timestamp()))


@requirement("4-15")
@durable_execution
async def callback_custom_serdes(event: Any, context: DurableContext) -> Any:
    """A callback whose custom serdes yields a typed object; return it as a structure."""
    config = CallbackConfig(serdes=ReceivedSerDes())
    callback = await context.create_callback(name=event, config=config)
    received = await callback.result()
    assert isinstance(received, Received)
    return {"received": asdict(received)}


class NumberSerDes(SerDes[float]):
    """Reads the callback's raw payload as a number."""

    def serialize(self, value: float, context: SerDesContext) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, context: SerDesContext) -> float:
        number = json.loads(data)
        return int(number) if float(number).is_integer() else float(number)


@requirement("4-16")
@durable_execution
async def callback_numeric_serdes(event: Any, context: DurableContext) -> Any:
    """A callback whose custom serdes yields a number; return it and its double."""
    callback = await context.create_callback(
        name=event, config=CallbackConfig(serdes=NumberSerDes())
    )
    count = await callback.result()
    assert count is not None
    return {"count": count, "doubled": count * 2}


@requirement("4-17")
@durable_execution
async def two_callbacks_sequential(event: Any, context: DurableContext) -> Any:
    """Create and await callback A, then create and await callback B."""
    first = await context.create_callback(name=event[0])
    a = await first.result()
    second = await context.create_callback(name=event[1])
    b = await second.result()
    return [a, b]


@requirement("4-18")
@durable_execution
async def two_callbacks_in_order(event: Any, context: DurableContext) -> Any:
    """Create callbacks A and B, then await A, then B."""
    first = await context.create_callback(name=event[0])
    second = await context.create_callback(name=event[1])
    a = await first.result()
    b = await second.result()
    return [a, b]


@requirement("4-19")
@durable_execution
async def two_callbacks_reverse(event: Any, context: DurableContext) -> Any:
    """Create callbacks A and B, then await B, then A."""
    first = await context.create_callback(name=event[0])
    second = await context.create_callback(name=event[1])
    b = await second.result()
    a = await first.result()
    return [a, b]
