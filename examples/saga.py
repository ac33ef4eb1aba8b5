"""Saga: book flight, hotel and car; if a later booking fails, undo the earlier ones.

Each booking and each compensation is a step, so compensations run exactly as recorded even if
the invocation crashes halfway through undoing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from adurable import (
    DurableContext,
    RetryPresets,
    StepConfig,
    durable_execution,
)

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


def book(kind: str, event: dict[str, Any]) -> Callable[[Any], str]:
    def run(_: Any) -> str:
        if kind in event.get("fail", ()):
            raise RuntimeError(f"no {kind} available")
        return f"{kind}-booking"

    return run


@durable_execution
async def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    compensations: list[str] = []
    try:
        for kind in ("flight", "hotel", "car"):
            await context.step(book(kind, event), name=f"book-{kind}", config=NO_RETRY)
            compensations.append(kind)
        return {"success": True, "booked": compensations}
    except Exception as error:
        for kind in reversed(compensations):
            await context.step(lambda _, k=kind: f"cancelled {k}", name=f"cancel-{kind}")
        return {"success": False, "undone": list(reversed(compensations)), "reason": str(error)}


async def main() -> None:
    from adurable.testing import LocalRunner

    result = await LocalRunner(handler).run(input={"fail": ["car"]})
    print(result.status, result.result)


if __name__ == "__main__":
    anyio.run(main)
