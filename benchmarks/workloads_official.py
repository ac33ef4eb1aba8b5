"""The benchmark workloads written for the official SDK (``aws-durable-execution-sdk-python``
3.0.0, installed in ``benchmarks/.venv-official``). Same work, same operations on the wire as
``workloads_adurable.py``; the official SDK's API is synchronous, so its steps are plain
functions (it runs them inline on its worker threads)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import MapConfig, NestingType, ParallelConfig


def _value(value: int, _step_context: Any) -> int:
    return value


def _step_of(value: int) -> Callable[[Any], Any]:
    return functools.partial(_value, value)


def make_handler(workload: str, params: dict[str, Any], client: Any) -> Any:
    n = params.get("n", 0)

    if workload == "map":
        config = MapConfig(
            max_concurrency=params.get("concurrency"),
            nesting_type=NestingType[params.get("nesting", "NESTED")],
        )

        def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
            return ctx.step(_step_of(value))

        def map_handler(event: Any, ctx: DurableContext) -> dict[str, int]:
            result = ctx.map(list(range(event["n"])), item, config=config)
            return {"ok": result.success_count, "sum": sum(result.get_results())}

        return durable_execution(boto3_client=client)(map_handler)

    if workload in ("sequential", "replay", "chain"):

        def chain_handler(event: Any, ctx: DurableContext) -> dict[str, int]:
            total = 0
            for i in range(event["n"]):
                total += ctx.step(_step_of(i))
            return {"ok": event["n"], "sum": total}

        return durable_execution(boto3_client=client)(chain_handler)

    if workload == "parallel":

        def branch(ctx: DurableContext) -> int:
            return ctx.step(_step_of(1))

        def parallel_handler(event: Any, ctx: DurableContext) -> dict[str, int]:
            result = ctx.parallel([branch] * event["n"], config=ParallelConfig())
            return {"ok": result.success_count, "sum": sum(result.get_results())}

        return durable_execution(boto3_client=client)(parallel_handler)

    if workload == "one_step":

        def one_step(event: Any, ctx: DurableContext) -> dict[str, int]:
            return {"ok": 1, "sum": ctx.step(_step_of(1))}

        return durable_execution(boto3_client=client)(one_step)

    raise ValueError(f"unknown workload {workload!r} (n={n})")
