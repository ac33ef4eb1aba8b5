"""Durable handlers the server tests register with the engine."""

from __future__ import annotations

import queue
from typing import Any

from adurable import DurableContext, Duration, durable_execution


def make_functions(callback_ids: queue.Queue[str]) -> dict[str, Any]:
    """``greet`` (a step, a 5 minute wait, a step) and ``approval`` (waits for a callback whose
    id it hands to ``callback_ids``), plus ``echo``, a plain (non-durable) function."""

    @durable_execution
    async def greet(event: Any, context: DurableContext) -> dict[str, str]:
        name = await context.step(lambda _: event.get("name", "world"), name="read-name")
        await context.wait(Duration.from_minutes(5), name="pause")
        greeting = await context.step(lambda _: f"hello {name}", name="greet")
        return {"greeting": greeting}

    @durable_execution
    async def approval(event: Any, context: DurableContext) -> dict[str, Any]:
        def submit(callback_id: str, _: Any) -> None:
            callback_ids.put(callback_id)

        answer = await context.wait_for_callback(submit, name="approve")
        return {"answer": answer}

    @durable_execution
    async def fails(event: Any, context: DurableContext) -> None:
        await context.step(lambda _: None, name="first")
        raise ValueError("no luck")

    return {"greet": greet, "approval": approval, "fails": fails}
