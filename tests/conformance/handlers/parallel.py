"""Requirements 8-x: parallel."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conformance._registry import requirement
from tests.conformance.handlers._batch import FULL, projection

from adurable import (
    CompletionConfig,
    DurableContext,
    Duration,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    SerDes,
    SerDesContext,
    durable_execution,
)

Branch = Callable[[DurableContext], Awaitable[Any]]


def _returns(value: Any) -> Branch:
    """A branch that returns ``value`` directly, without any inner operation."""

    async def branch(_: DurableContext) -> Any:
        return value

    return branch


def _step_returns(value: Any) -> Branch:
    """A branch that runs one step returning ``value``."""

    async def branch(ctx: DurableContext) -> Any:
        return await ctx.step(lambda _: value)

    return branch


def _fails(index: int) -> Branch:
    """A branch that raises."""

    async def branch(_: DurableContext) -> Any:
        raise ValueError(f"branch {index} failed")

    return branch


def _sequential(completion: CompletionConfig | None = None, **options: Any) -> ParallelConfig:
    """max_concurrency=1 (deterministic order), with an optional completion config."""
    if completion is not None:
        options["completion_config"] = completion
    return ParallelConfig(max_concurrency=1, **options)


_NO_STATUS = ("completionReason", "successCount", "failureCount", "totalCount")


@requirement("8-1")
@durable_execution
async def parallel_basic(event: Any, context: DurableContext) -> list[Any]:
    """Two branches, each one step, run one at a time; returns the results in order."""
    result = await context.parallel(
        [_step_returns("task-1"), _step_returns("task-2")], name="parallel", config=_sequential()
    )
    return result.get_results()


@requirement("8-2")
@durable_execution
async def parallel_unnamed(event: Any, context: DurableContext) -> list[Any]:
    """Parallel without an operation name; branches return constants."""
    result = await context.parallel([_returns("alpha"), _returns("beta")], config=_sequential())
    return result.get_results()


@requirement("8-3")
@durable_execution
async def parallel_named_branches(event: Any, context: DurableContext) -> list[Any]:
    """Branches given as ParallelBranch objects with names."""
    branches = [
        ParallelBranch(_returns("one"), name="first"),
        ParallelBranch(_returns("two"), name="second"),
    ]
    result = await context.parallel(branches, name="named", config=_sequential())
    return result.get_results()


@requirement("8-4")
@durable_execution
async def parallel_heterogeneous(event: Any, context: DurableContext) -> list[Any]:
    """Branches returning a string, a number and an object."""
    result = await context.parallel(
        [_returns("hello"), _returns(42), _returns({"k": "v"})],
        name="hetero",
        config=_sequential(),
    )
    return result.get_results()


@requirement("8-5")
@durable_execution
async def parallel_empty(event: Any, context: DurableContext) -> list[Any]:
    """Parallel with no branches completes at once."""
    result = await context.parallel([], name="empty")
    return result.get_results()


@requirement("8-6")
@durable_execution
async def parallel_fail_fast(event: Any, context: DurableContext) -> dict[str, Any]:
    """tolerated_failure_count=0: the second branch fails, the third never starts."""
    result = await context.parallel(
        [_returns("ok"), _fails(1), _returns("never")],
        name="failfast",
        config=_sequential(CompletionConfig(tolerated_failure_count=0)),
    )
    return projection(result, *FULL)


@requirement("8-7")
@durable_execution
async def parallel_throw_if_error(event: Any, context: DurableContext) -> list[Any]:
    """The first branch fails; ``throw_if_error`` rethrows it and fails the execution."""
    result = await context.parallel(
        [_fails(0), _returns("never")],
        name="throwing",
        config=_sequential(CompletionConfig(tolerated_failure_count=0)),
    )
    result.throw_if_error()
    return result.get_results()


@requirement("8-8")
@durable_execution
async def parallel_min_successful(event: Any, context: DurableContext) -> dict[str, Any]:
    """min_successful=2 stops after the first two branches succeed."""
    result = await context.parallel(
        [_returns(f"r{i}") for i in range(4)],
        name="min-successful",
        config=_sequential(CompletionConfig(min_successful=2)),
    )
    return projection(result, "completionReason", "successCount", "totalCount")


@requirement("8-9")
@durable_execution
async def parallel_tolerated(event: Any, context: DurableContext) -> dict[str, Any]:
    """One failure within tolerated_failure_count=1: all branches run."""
    result = await context.parallel(
        [_returns("a"), _fails(1), _returns("c")],
        name="tolerated",
        config=_sequential(CompletionConfig(tolerated_failure_count=1)),
    )
    return projection(result, *FULL)


@requirement("8-10")
@durable_execution
async def parallel_tolerated_exceeded(event: Any, context: DurableContext) -> dict[str, Any]:
    """Two failures exceed tolerated_failure_count=1: the third branch never starts."""
    result = await context.parallel(
        [_fails(0), _fails(1), _returns("never")],
        name="tolerated-exceeded",
        config=_sequential(CompletionConfig(tolerated_failure_count=1)),
    )
    return projection(result, *_NO_STATUS)


@requirement("8-11")
@durable_execution
async def parallel_concurrent(event: Any, context: DurableContext) -> list[Any]:
    """max_concurrency=2; results come back in branch order."""
    result = await context.parallel(
        [_returns("r0"), _returns("r1"), _returns("r2")],
        name="concurrent",
        config=ParallelConfig(max_concurrency=2),
    )
    return result.get_results()


@requirement("8-12")
@durable_execution
async def parallel_flat(event: Any, context: DurableContext) -> list[Any]:
    """FLAT nesting: branch steps are recorded directly under the Parallel context."""
    result = await context.parallel(
        [_step_returns("fa"), _step_returns("fb")],
        name="flat",
        config=_sequential(nesting_type=NestingType.FLAT),
    )
    return result.get_results()


@requirement("8-13")
@durable_execution
async def parallel_tolerated_percentage(event: Any, context: DurableContext) -> dict[str, Any]:
    """tolerated_failure_percentage=25 of 4 branches: the second failure exceeds it."""
    result = await context.parallel(
        [_fails(0), _fails(1), _returns("c"), _returns("d")],
        name="tolerated-pct",
        config=_sequential(CompletionConfig(tolerated_failure_percentage=25)),
    )
    return projection(result, *_NO_STATUS)


async def _wait_then_b1(ctx: DurableContext) -> str:
    """Wait 2 s, then return "b1"."""
    await ctx.wait(Duration.from_seconds(2))
    return "b1"


@requirement("8-14")
@durable_execution
async def parallel_replay(event: Any, context: DurableContext) -> list[Any]:
    """The second branch suspends on a wait; the replay skips the finished first branch."""
    result = await context.parallel(
        [_step_returns("b0"), _wait_then_b1], name="replay", config=_sequential()
    )
    return result.get_results()


class _WrappingSerDes(SerDes[Any]):
    """Stores ``v`` as ``{"wrapped": v}`` and reads it back as ``v``."""

    def serialize(self, value: Any, context: SerDesContext) -> str | None:
        return json.dumps({"wrapped": value})

    def deserialize(self, data: str, context: SerDesContext) -> Any:
        return json.loads(data)["wrapped"]


@requirement("8-15")
@durable_execution
async def parallel_item_serdes(event: Any, context: DurableContext) -> list[Any]:
    """A custom per-branch serdes wraps each recorded branch result."""
    result = await context.parallel(
        [_returns("x"), _returns("y")],
        name="serde",
        config=_sequential(item_serdes=_WrappingSerDes()),
    )
    return result.get_results()


@requirement("8-16")
@durable_execution
async def parallel_all_fail(event: Any, context: DurableContext) -> dict[str, Any]:
    """Every branch fails within tolerated_failure_count=3."""
    result = await context.parallel(
        [_fails(i) for i in range(3)],
        name="all-fail",
        config=_sequential(CompletionConfig(tolerated_failure_count=3)),
    )
    return projection(result, *FULL)


@requirement("8-17")
@durable_execution
async def parallel_min_not_reached(event: Any, context: DurableContext) -> dict[str, Any]:
    """min_successful=3 is never reached; without a failure tolerance all branches run."""
    result = await context.parallel(
        [_returns("a"), _fails(1), _returns("c")],
        name="min-not-reached",
        config=_sequential(CompletionConfig(min_successful=3)),
    )
    return projection(result, *FULL)


@requirement("8-18")
@durable_execution
async def parallel_combined(event: Any, context: DurableContext) -> dict[str, Any]:
    """min_successful=3 with tolerated_failure_count=1: the tolerance is exceeded first."""
    result = await context.parallel(
        [_fails(0), _fails(1), _returns("c"), _returns("d")],
        name="combined",
        config=_sequential(CompletionConfig(min_successful=3, tolerated_failure_count=1)),
    )
    return projection(result, *_NO_STATUS)


@requirement("8-19")
@durable_execution
async def parallel_bad_concurrency(event: Any, context: DurableContext) -> list[Any]:
    """max_concurrency=0 is rejected with a ValidationError before anything runs."""
    result = await context.parallel(
        [_returns("a"), _returns("b")],
        name="bad-concurrency",
        config=ParallelConfig(max_concurrency=0),
    )
    return result.get_results()


@requirement("8-20")
@durable_execution
async def parallel_accessors(event: Any, context: DurableContext) -> dict[str, Any]:
    """Projection built from has_failure, succeeded(), failed() and get_errors()."""
    result = await context.parallel(
        [_returns("a"), _fails(1), _returns("c")],
        name="accessors",
        config=_sequential(CompletionConfig(tolerated_failure_count=1)),
    )
    return {
        "hasFailure": result.has_failure,
        "successCount": len(result.succeeded()),
        "failureCount": len(result.failed()),
        "errorCount": len(result.get_errors()),
    }


async def _inner_parallel(ctx: DurableContext) -> list[Any]:
    """A branch running its own two-branch parallel of steps."""
    inner = await ctx.parallel(
        [_step_returns("i1"), _step_returns("i2")], name="inner", config=_sequential()
    )
    return inner.get_results()


@requirement("8-21")
@durable_execution
async def parallel_nested(event: Any, context: DurableContext) -> list[Any]:
    """An outer parallel whose single branch runs an inner parallel."""
    result = await context.parallel([_inner_parallel], name="outer", config=_sequential())
    return result.get_results()


@requirement("8-22")
@durable_execution
async def parallel_percentage_boundary(event: Any, context: DurableContext) -> dict[str, Any]:
    """One failure of four is exactly tolerated_failure_percentage=25: all branches run."""
    result = await context.parallel(
        [_fails(0), _returns("b"), _returns("c"), _returns("d")],
        name="pct-boundary",
        config=_sequential(CompletionConfig(tolerated_failure_percentage=25)),
    )
    return projection(result, *FULL)
