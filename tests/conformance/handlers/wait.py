"""Requirements 2-x: wait."""

from __future__ import annotations

from typing import Any

from tests.conformance._registry import requirement

from adurable import DurableContext, Duration, durable_execution


@requirement("2-1")
@durable_execution
async def wait_basic(event: Any, context: DurableContext) -> None:
    """One 2 s wait."""
    await context.wait(Duration.from_seconds(2))


@requirement("2-2")
@durable_execution
async def wait_with_name(event: Any, context: DurableContext) -> None:
    """One 2 s wait with an explicit name."""
    await context.wait(Duration.from_seconds(2), name="custom_wait_name")


@requirement("2-3")
@durable_execution
async def sequential_waits(event: Any, context: DurableContext) -> dict[str, int]:
    """Two 2 s waits, one after the other."""
    await context.wait(Duration.from_seconds(2), name="wait-1")
    await context.wait(Duration.from_seconds(2), name="wait-2")
    return {"completedWaits": 2}


@requirement("2-4")
@durable_execution
async def wait_minutes(event: Any, context: DurableContext) -> None:
    """A wait of one minute (60 s on the wire)."""
    await context.wait(Duration.from_minutes(1))


@requirement("2-5")
@durable_execution
async def wait_hours(event: Any, context: DurableContext) -> None:
    """A wait of one hour (3600 s on the wire)."""
    await context.wait(Duration.from_hours(1))
