"""Fan out over items with map: at most 5 at a time, done once 8 succeed, 2 failures tolerated."""

from __future__ import annotations

from typing import Any

import anyio

from adurable import (
    CompletionConfig,
    DurableContext,
    MapConfig,
    RetryPresets,
    StepConfig,
    durable_execution,
)

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())  # a broken item fails at once


async def process_item(ctx: DurableContext, item: dict[str, Any], index: int, items: Any) -> Any:
    def work(_: Any) -> dict[str, Any]:
        if item.get("broken"):
            raise ValueError(f"item {index} is broken")
        return {"id": item["id"], "doubled": item["value"] * 2}

    return await ctx.step(work, name=f"process-{index}", config=NO_RETRY)


@durable_execution
async def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    results = await context.map(
        event["items"],
        process_item,
        name="process-items",
        config=MapConfig(
            max_concurrency=5,
            completion_config=CompletionConfig(min_successful=8, tolerated_failure_count=2),
        ),
    )
    return {
        "succeeded": results.success_count,
        "failed": results.failure_count,
        "reason": results.completion_reason.value,
        "results": results.get_results(),
    }


async def main() -> None:
    from adurable.testing import LocalRunner

    items = [{"id": i, "value": i, "broken": i == 3} for i in range(10)]
    result = await LocalRunner(handler).run(input={"items": items})
    print(result.status, result.result)


if __name__ == "__main__":
    anyio.run(main)
