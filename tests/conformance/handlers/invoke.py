"""Requirements 5-x: invoke (chained invokes of other durable functions).

The targets are durable functions (the suite's ChainedInvokeStarted events carry the target's
``DurableExecutionArn`` and ``ExecutedVersion``), registered per requirement through
``functions=`` and named in the handler with ``target(...)``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conformance._registry import requirement, target

from adurable import (
    DurableContext,
    Duration,
    InvokeConfig,
    InvokeError,
    SerDes,
    SerDesContext,
    durable_execution,
)

#: Characters in a payload just under the 1 MiB chained-invoke input limit (PROTOCOL §3.5).
LARGE_PAYLOAD_CHARS = 1_000_000


@durable_execution
async def echo(event: Any, context: DurableContext) -> Any:
    """Target: returns its input unchanged."""
    return event


@durable_execution
async def fail(event: Any, context: DurableContext) -> Any:
    """Target: always fails."""
    raise RuntimeError("target function failed")


@durable_execution
async def measure(event: Any, context: DurableContext) -> dict[str, int]:
    """Target: answers how many characters of data it received."""
    return {"received": len(event["data"])}


class UpperPayloadSerDes(SerDes[Any]):
    """Plain JSON, upper-cased on the way out (the target receives the upper-cased JSON)."""

    def serialize(self, value: Any, context: SerDesContext) -> str | None:
        return json.dumps(value).upper()

    def deserialize(self, data: str, context: SerDesContext) -> Any:
        return json.loads(data)


class UpperResultSerDes(SerDes[str]):
    """Hands back the raw result payload string, upper-cased (not JSON-decoded)."""

    def serialize(self, value: str, context: SerDesContext) -> str | None:
        return value

    def deserialize(self, data: str, context: SerDesContext) -> str:
        return data.upper()


@requirement("5-1", "5-3", functions={"echo": echo})
@durable_execution
async def invoke_echo(event: Any, context: DurableContext) -> Any:
    """Invoke the echo target with the event; return its result."""
    return await context.invoke(target("echo"), event)


@requirement("5-2", functions={"echo": echo})
@durable_execution
async def invoke_named(event: Any, context: DurableContext) -> Any:
    """Invoke the echo target with ``event['payload']`` under the name ``event['name']``."""
    return await context.invoke(target("echo"), event["payload"], name=event["name"])


@requirement("5-4", functions={"echo": echo})
@durable_execution
async def invoke_null(event: Any, context: DurableContext) -> Any:
    """Invoke the echo target with null; return its (null) result."""
    return await context.invoke(target("echo"), None)


@requirement("5-5", functions={"fail": fail})
@durable_execution
async def invoke_failing(event: Any, context: DurableContext) -> Any:
    """Invoke a failing target; the InvokeError fails the execution."""
    return await context.invoke(target("fail"), event)


@requirement("5-6", functions={"fail": fail})
@durable_execution
async def invoke_failing_caught(event: Any, context: DurableContext) -> str:
    """Invoke a failing target, catch the InvokeError and return a fallback."""
    try:
        await context.invoke(target("fail"), event)
    except InvokeError:
        return "fallback"
    return "unreachable"


@requirement("5-7", functions={"measure": measure})
@durable_execution
async def invoke_large_payload(event: Any, context: DurableContext) -> Any:
    """Invoke a target with a payload near the size limit; return what it measured."""
    return await context.invoke(target("measure"), {"data": "x" * LARGE_PAYLOAD_CHARS})


@requirement("5-8", functions={"echo": echo})
@durable_execution
async def invoke_tenant(event: Any, context: DurableContext) -> Any:
    """Invoke the echo target for tenant ``event['tenantId']`` with ``event['payload']``."""
    config = InvokeConfig(tenant_id=event["tenantId"])
    return await context.invoke(target("echo"), event["payload"], config=config)


@requirement("5-9", functions={"echo": echo})
@durable_execution
async def invoke_then_wait(event: Any, context: DurableContext) -> Any:
    """Invoke the echo target, then wait 1 s; the invoke replays from its record."""
    result = await context.invoke(target("echo"), "cached")
    await context.wait(Duration(1))
    return result


@requirement("5-10", functions={"fail": fail})
@durable_execution
async def invoke_failed_then_wait(event: Any, context: DurableContext) -> str:
    """Invoke a failing target (caught), then wait 1 s; the failure replays from its record."""
    try:
        await context.invoke(target("fail"), event)
    except InvokeError as exc:
        caught = exc.error_type or "InvokeError"
    else:
        caught = "none"
    await context.wait(Duration(1))
    return caught


@requirement("5-11", functions={"echo": echo})
@durable_execution
async def step_then_invoke(event: Any, context: DurableContext) -> Any:
    """Run a step, then invoke the echo target with the step's result."""
    value = await context.step(lambda _: "from-step", name="prepare")
    return await context.invoke(target("echo"), value)


@requirement("5-12", functions={"echo": echo})
@durable_execution
async def invoke_then_step(event: Any, context: DurableContext) -> Any:
    """Invoke the echo target, then hand its result to a step that returns it."""
    result = await context.invoke(target("echo"), "from-invoke")
    return await context.step(lambda _: result, name="process")


@requirement("5-13", functions={"echo": echo})
@durable_execution
async def invoke_in_child(event: Any, context: DurableContext) -> Any:
    """Invoke the echo target inside a child context that returns the invoke result."""

    async def child(child_context: DurableContext) -> Any:
        return await child_context.invoke(target("echo"), "in-child")

    return await context.run_in_child_context(child, name="child")


@requirement("5-14", functions={"echo": echo})
@durable_execution
async def invoke_twice(event: Any, context: DurableContext) -> list[Any]:
    """Invoke the echo target twice, one after the other."""
    first = await context.invoke(target("echo"), "first")
    second = await context.invoke(target("echo"), "second")
    return [first, second]


@requirement("5-15", functions={"echo": echo})
@durable_execution
async def invoke_payload_serdes(event: Any, context: DurableContext) -> Any:
    """Invoke the echo target with the event, serialized by an upper-casing payload serdes."""
    config = InvokeConfig(serdes_payload=UpperPayloadSerDes())
    return await context.invoke(target("echo"), event, config=config)


@requirement("5-16", functions={"echo": echo})
@durable_execution
async def invoke_result_serdes(event: Any, context: DurableContext) -> Any:
    """Invoke the echo target; the result serdes upper-cases the raw echoed payload, so the
    handler returns the string ``'"HELLO"'`` (quotes included) for input ``"hello"``."""
    config = InvokeConfig(serdes_result=UpperResultSerDes())
    return await context.invoke(target("echo"), event, config=config)
