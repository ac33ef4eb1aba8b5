"""Parallel: fetch from two sources at once, each branch its own durable context."""

from __future__ import annotations

from typing import Any

import anyio

from adurable import DurableContext, ParallelBranch, ParallelConfig, durable_execution


async def fetch_profile(ctx: DurableContext) -> dict[str, Any]:
    return await ctx.step(lambda _: {"name": "Jane"}, name="fetch-profile")


async def fetch_orders(ctx: DurableContext) -> list[int]:
    return await ctx.step(lambda _: [101, 102], name="fetch-orders")


@durable_execution
async def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    results = await context.parallel(
        [
            ParallelBranch(fetch_profile, name="profile"),
            ParallelBranch(fetch_orders, name="orders"),
        ],
        name="fetch-all",
        config=ParallelConfig(max_concurrency=2),
    )
    results.throw_if_error()
    profile, orders = results.get_results()
    return {"profile": profile, "orders": orders}


async def main() -> None:
    from adurable.testing import LocalRunner

    result = await LocalRunner(handler).run(input={})
    print(result.status, result.result)


if __name__ == "__main__":
    anyio.run(main)
