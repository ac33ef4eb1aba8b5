"""The benchmark workloads written for adurable (async steps; the official twins are in
``workloads_official.py`` and do the same work with the same operations on the wire)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from adurable import (
    DurableContext,
    MapConfig,
    NestingType,
    ParallelConfig,
    durable_execution,
)


async def _value(value: int, _step_context: Any) -> int:
    return value


def _step_of(value: int) -> Callable[[Any], Any]:
    # A partial has no _original_name, so the step carries no Name (same as the official twin).
    return functools.partial(_value, value)


def make_handler(workload: str, params: dict[str, Any], client: Any) -> Any:
    """The durable handler of ``workload`` using ``client`` as its service client."""
    n = params.get("n", 0)

    if workload == "map":
        config = MapConfig(
            max_concurrency=params.get("concurrency"),
            nesting_type=NestingType[params.get("nesting", "NESTED")],
        )

        async def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
            return await ctx.step(_step_of(value))

        async def map_handler(event: Any, ctx: DurableContext) -> dict[str, int]:
            result = await ctx.map(range(event["n"]), item, config=config)
            return {"ok": result.success_count, "sum": sum(result.get_results())}

        return durable_execution(client=client)(map_handler)

    if workload in ("sequential", "replay", "chain"):

        async def chain_handler(event: Any, ctx: DurableContext) -> dict[str, int]:
            total = 0
            for i in range(event["n"]):
                total += await ctx.step(_step_of(i))
            return {"ok": event["n"], "sum": total}

        return durable_execution(client=client)(chain_handler)

    if workload == "parallel":

        async def branch(ctx: DurableContext) -> int:
            return await ctx.step(_step_of(1))

        async def parallel_handler(event: Any, ctx: DurableContext) -> dict[str, int]:
            result = await ctx.parallel([branch] * event["n"], config=ParallelConfig())
            return {"ok": result.success_count, "sum": sum(result.get_results())}

        return durable_execution(client=client)(parallel_handler)

    if workload == "one_step":

        async def one_step(event: Any, ctx: DurableContext) -> dict[str, int]:
            return {"ok": 1, "sum": await ctx.step(_step_of(1))}

        return durable_execution(client=client)(one_step)

    raise ValueError(f"unknown workload {workload!r} (n={n})")
