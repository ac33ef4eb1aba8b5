"""Requirements 1-x: step."""

from __future__ import annotations

from typing import Any

from tests.conformance._registry import requirement

from adurable import DurableContext, durable_execution


@requirement("1-1")
@durable_execution
async def step_basic(event: Any, context: DurableContext) -> str:
    return await context.step(lambda _: f"Hello, {event}!", name="greet")
