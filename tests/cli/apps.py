"""Handlers the CLI tests run and serve (loaded by path: ``tests/cli/apps.py:NAME``)."""

from __future__ import annotations

from typing import Any

from adurable import DurableContext, Duration, durable_execution


@durable_execution
async def greet(event: Any, context: DurableContext) -> dict[str, str]:
    name = await context.step(lambda _: event.get("name", "world"), name="read-name")
    await context.wait(Duration.from_hours(2), name="pause")
    return {"greeting": f"hello {name}"}


@durable_execution
async def approval(event: Any, context: DurableContext) -> dict[str, Any]:
    answer = await context.wait_for_callback(lambda callback_id, _: None, name="approve")
    return {"answer": answer}


@durable_execution
async def fails(event: Any, context: DurableContext) -> None:
    await context.step(lambda _: "ok", name="first")
    raise ValueError("the order is invalid")


def plain(event: Any, context: Any) -> dict[str, Any]:
    """A plain (non-durable) Lambda function."""
    return {"echo": event}
