"""Requirements 9-x: map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.conformance._registry import requirement
from tests.conformance.handlers._batch import FULL, projection

from adurable import (
    EXTENDED_TYPES_SERDES,
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    Duration,
    MapConfig,
    NestingType,
    SerDes,
    SerDesContext,
    durable_execution,
)

SEQUENTIAL = MapConfig(max_concurrency=1)


def _config(completion: CompletionConfig) -> MapConfig:
    """A sequential map config with the given completion criteria."""
    return MapConfig(max_concurrency=1, completion_config=completion)


async def _ok_or_fail(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
    """Return ``item`` unless it is "fail", which raises."""
    if item == "fail":
        raise RuntimeError(f"item {index} failed")
    return item


@requirement("9-1")
@durable_execution
async def map_basic(event: Any, context: DurableContext) -> list[Any]:
    """Each item runs one greeting step; returns the ordered results."""

    async def greet(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        return await ctx.step(lambda _: f"Hello, {item}!")

    result = await context.map(event, greet, name="map", config=SEQUENTIAL)
    return result.get_results()


@requirement("9-2")
@durable_execution
async def map_items_only(event: Any, context: DurableContext) -> list[Any]:
    """Unnamed map doubling each item directly."""

    async def double(ctx: DurableContext, item: int, index: int, items: Sequence[int]) -> int:
        return item * 2

    result = await context.map(event, double, config=SEQUENTIAL)
    return result.get_results()


@requirement("9-3")
@durable_execution
async def map_item_and_index(event: Any, context: DurableContext) -> list[Any]:
    """The map function returns item + index."""

    async def add_index(ctx: DurableContext, item: int, index: int, items: Sequence[int]) -> int:
        return item + index

    result = await context.map(event, add_index, name="indexed", config=SEQUENTIAL)
    return result.get_results()


@requirement("9-4")
@durable_execution
async def map_empty(event: Any, context: DurableContext) -> list[Any]:
    """Map over an empty list completes immediately."""

    async def never(ctx: DurableContext, item: Any, index: int, items: Sequence[Any]) -> Any:
        return item

    result = await context.map(event, never, name="empty")
    return result.get_results()


@requirement("9-5")
@durable_execution
async def map_fail_fast(event: Any, context: DurableContext) -> dict[str, Any]:
    """tolerated_failure_count=0: item 1 fails, item 2 never starts; returns the projection."""
    result = await context.map(
        ["ok", "fail", "ok"],
        _ok_or_fail,
        name="failfast",
        config=_config(CompletionConfig(tolerated_failure_count=0)),
    )
    return projection(result, *FULL)


@requirement("9-6")
@durable_execution
async def map_throw_if_error(event: Any, context: DurableContext) -> None:
    """Item 0 fails under fail-fast; ``throw_if_error`` fails the execution."""
    result = await context.map(
        ["fail", "ok"],
        _ok_or_fail,
        name="throwing",
        config=_config(CompletionConfig(tolerated_failure_count=0)),
    )
    result.throw_if_error()


@requirement("9-7")
@durable_execution
async def map_min_successful(event: Any, context: DurableContext) -> dict[str, Any]:
    """min_successful=2 stops after two of four items."""
    result = await context.map(
        ["a", "b", "c", "d"],
        _ok_or_fail,
        name="min-successful",
        config=_config(CompletionConfig(min_successful=2)),
    )
    return projection(result, "completionReason", "successCount", "totalCount")


@requirement("9-8")
@durable_execution
async def map_tolerated_within(event: Any, context: DurableContext) -> dict[str, Any]:
    """tolerated_failure_count=1 with one failure: every item runs."""
    result = await context.map(
        ["ok", "fail", "ok"],
        _ok_or_fail,
        name="tolerated",
        config=_config(CompletionConfig(tolerated_failure_count=1)),
    )
    return projection(result, *FULL)


@requirement("9-9")
@durable_execution
async def map_tolerated_exceeded(event: Any, context: DurableContext) -> dict[str, Any]:
    """tolerated_failure_count=1 with two failures: stops before item 2."""
    result = await context.map(
        ["fail", "fail", "ok"],
        _ok_or_fail,
        name="tolerated-exceeded",
        config=_config(CompletionConfig(tolerated_failure_count=1)),
    )
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@requirement("9-10")
@durable_execution
async def map_tolerated_percentage(event: Any, context: DurableContext) -> dict[str, Any]:
    """tolerated_failure_percentage=25 of four items: stops after the second failure."""
    result = await context.map(
        ["fail", "fail", "ok", "ok"],
        _ok_or_fail,
        name="tolerated-pct",
        config=_config(CompletionConfig(tolerated_failure_percentage=25)),
    )
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@requirement("9-11")
@durable_execution
async def map_concurrent(event: Any, context: DurableContext) -> list[Any]:
    """max_concurrency=2; results come back in index order."""

    async def constant(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        return item

    result = await context.map(
        ["r0", "r1", "r2"], constant, name="concurrent", config=MapConfig(max_concurrency=2)
    )
    return result.get_results()


@requirement("9-12")
@durable_execution
async def map_flat(event: Any, context: DurableContext) -> list[Any]:
    """FLAT nesting: each item's step sits directly under the Map context."""

    async def run_step(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        return await ctx.step(lambda _: item)

    result = await context.map(
        ["fa", "fb"],
        run_step,
        name="flat",
        config=MapConfig(max_concurrency=1, nesting_type=NestingType.FLAT),
    )
    return result.get_results()


@requirement("9-13")
@durable_execution
async def map_item_namer(event: Any, context: DurableContext) -> list[Any]:
    """Iterations named by a custom item namer; returns item * 10."""

    async def times_ten(ctx: DurableContext, item: int, index: int, items: Sequence[int]) -> int:
        return item * 10

    result = await context.map(
        event,
        times_ten,
        name="named-items",
        config=MapConfig(max_concurrency=1, item_namer=lambda item, index: f"item-{item}"),
    )
    return result.get_results()


class WrappedSerDes(SerDes[str]):
    """Per-item serdes: ``"X"`` ⇄ ``"wrapped:X"``."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return f"wrapped:{value}"

    def deserialize(self, data: str, context: SerDesContext) -> str:
        return data.removeprefix("wrapped:")


async def _upper(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
    """Return the uppercased item."""
    return item.upper()


@requirement("9-14")
@durable_execution
async def map_item_serdes(event: Any, context: DurableContext) -> list[Any]:
    """Each iteration result goes through the custom per-item serdes."""
    result = await context.map(
        ["x", "y"],
        _upper,
        name="serdes",
        config=MapConfig(max_concurrency=1, item_serdes=WrappedSerDes()),
    )
    return result.get_results()


@requirement("9-15")
@durable_execution
async def map_suspend_in_iteration(event: Any, context: DurableContext) -> list[Any]:
    """Iteration 1 waits a second before its step; the execution suspends mid-map."""

    async def body(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        if index == 1:
            await ctx.wait(Duration.from_seconds(1))
        return await ctx.step(lambda _: item)

    result = await context.map(["r0", "r1"], body, name="suspend", config=SEQUENTIAL)
    return result.get_results()


@requirement("9-16")
@durable_execution
async def map_large_result(event: Any, context: DurableContext) -> dict[str, Any]:
    """Four ~70KB results exceed the checkpoint threshold; returns the counts."""

    async def large(ctx: DurableContext, item: int, index: int, items: Sequence[int]) -> str:
        return str(index) * 70_000

    result = await context.map([0, 1, 2, 3], large, name="large", config=SEQUENTIAL)
    return projection(result, "successCount", "totalCount")


@requirement("9-17")
@durable_execution
async def map_then_wait(event: Any, context: DurableContext) -> list[Any]:
    """A successful map followed by a 1 s wait; replay skips the map."""
    result = await context.map(["a", "b"], _upper, name="then-wait", config=SEQUENTIAL)
    await context.wait(Duration.from_seconds(1))
    return result.get_results()


@requirement("9-18")
@durable_execution
async def map_fail_then_wait(event: Any, context: DurableContext) -> dict[str, Any]:
    """A map with a tolerated failure followed by a 1 s wait; returns the projection."""
    result = await context.map(
        ["ok", "fail"],
        _ok_or_fail,
        name="fail-then-wait",
        config=_config(CompletionConfig(tolerated_failure_count=1)),
    )
    await context.wait(Duration.from_seconds(1))
    return projection(result, *FULL)


class OpSerDes(SerDes[BatchResult[str]]):
    """Whole-result serdes: a batch of successes ⇄ ``"OPSERDE:<comma-joined results>"``.

    As in the official SDK, ``MapConfig.serdes`` alone also encodes each item (backward
    compatibility), so the handlers pin ``item_serdes`` to the default codec.
    """

    PREFIX = "OPSERDE:"

    def serialize(self, value: BatchResult[str], context: SerDesContext) -> str:
        return self.PREFIX + ",".join(str(r) for r in value.get_results())

    def deserialize(self, data: str, context: SerDesContext) -> BatchResult[str]:
        body = data.removeprefix(self.PREFIX)
        results = body.split(",") if body else []
        items = [
            BatchItem(index, BatchItemStatus.SUCCEEDED, value)
            for index, value in enumerate(results)
        ]
        return BatchResult(items, CompletionReason.ALL_COMPLETED)


OP_SERDES_CONFIG = MapConfig(
    max_concurrency=1, serdes=OpSerDes(), item_serdes=EXTENDED_TYPES_SERDES
)


@requirement("9-19")
@durable_execution
async def map_op_serdes(event: Any, context: DurableContext) -> list[Any]:
    """The Map context payload is written by the operation-level serdes."""
    result = await context.map(["x", "y"], _upper, name="op-serde", config=OP_SERDES_CONFIG)
    return result.get_results()


@requirement("9-20")
@durable_execution
async def map_op_serdes_replay(event: Any, context: DurableContext) -> list[Any]:
    """As 9-19, then a 1 s wait: on replay the result is read back through the serdes."""
    result = await context.map(
        ["x", "y"],
        _upper,
        name="op-serde-replay",
        config=OP_SERDES_CONFIG,
    )
    await context.wait(Duration.from_seconds(1))
    return result.get_results()
