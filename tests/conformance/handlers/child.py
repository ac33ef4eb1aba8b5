"""Requirements 3-x: run_in_child_context."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from tests.conformance._registry import requirement

from adurable import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    Duration,
    JitterStrategy,
    RetryPresets,
    RetryStrategyConfig,
    SerDes,
    SerDesContext,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
)

#: Where the child contexts of 3-11 and 3-17 log, replays included.
LOG = logging.getLogger("conformance.child")

#: Fail at once: the first error is final.
NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())
#: Two attempts, one second apart (no jitter).
TWO_ATTEMPTS = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=2, initial_delay=Duration(1), jitter_strategy=JitterStrategy.NONE
        )
    )
)


def _fail(message: str) -> Any:
    def raise_(_: StepContext) -> Any:
        raise RuntimeError(message)

    return raise_


@requirement("3-1")
@durable_execution
async def child_basic(event: Any, context: DurableContext) -> Any:
    """A child context whose single step returns the input; the child returns that."""

    async def body(child: DurableContext) -> Any:
        return await child.step(lambda _: event)

    return await context.run_in_child_context(body)


@requirement("3-2")
@durable_execution
async def child_named(event: Any, context: DurableContext) -> Any:
    """A child context named after ``event["name"]`` whose step returns ``event["value"]``."""

    async def body(child: DurableContext) -> Any:
        return await child.step(lambda _: event["value"])

    return await context.run_in_child_context(body, name=event["name"])


@requirement("3-3")
@durable_execution
async def child_sequential_steps(event: Any, context: DurableContext) -> Any:
    """A child context with two steps, the second passing on the first one's result."""

    async def body(child: DurableContext) -> Any:
        first = await child.step(lambda _: event, name="first")
        return await child.step(lambda _: first, name="second")

    return await context.run_in_child_context(body, name="sequence")


@requirement("3-4")
@durable_execution
async def child_error(event: Any, context: DurableContext) -> Any:
    """A child context whose step fails without retry: the ChildContextError fails the run."""

    async def body(child: DurableContext) -> Any:
        return await child.step(_fail("step failed in child"), name="failing", config=NO_RETRY)

    return await context.run_in_child_context(body, name="failing-child")


@requirement("3-5")
@durable_execution
async def child_error_caught(event: Any, context: DurableContext) -> Any:
    """A failing child context caught by the handler, then a recovery step returning the input."""

    async def body(child: DurableContext) -> Any:
        return await child.step(_fail("step failed in child"), name="failing", config=NO_RETRY)

    with contextlib.suppress(ChildContextError):
        await context.run_in_child_context(body, name="failing-child")
    return await context.step(lambda _: event, name="recover")


@requirement("3-6")
@durable_execution
async def child_nested(event: Any, context: DurableContext) -> Any:
    """An outer child with a step and an inner child (with its own step) returning the input."""

    async def inner(child: DurableContext) -> Any:
        return await child.step(lambda _: event, name="inner-step")

    async def outer(child: DurableContext) -> Any:
        await child.step(lambda _: event, name="outer-step")
        return await child.run_in_child_context(inner, name="inner")

    return await context.run_in_child_context(outer, name="outer")


@requirement("3-7")
@durable_execution
async def child_step_retry(event: Any, context: DurableContext) -> Any:
    """A child context whose step fails on attempt 1 and returns the input on attempt 2."""

    def flaky(step: StepContext) -> Any:
        if step.attempt < 2:
            raise RuntimeError("first attempt fails")
        return event

    async def body(child: DurableContext) -> Any:
        return await child.step(flaky, name="flaky", config=TWO_ATTEMPTS)

    return await context.run_in_child_context(body, name="retrying-child")


@requirement("3-8")
@durable_execution
async def child_step_retry_exhausted(event: Any, context: DurableContext) -> Any:
    """A child context whose step always fails (2 attempts): the child and execution fail."""

    async def body(child: DurableContext) -> Any:
        return await child.step(_fail("always fails"), name="failing", config=TWO_ATTEMPTS)

    return await context.run_in_child_context(body, name="failing-child")


@requirement("3-9")
@durable_execution
async def child_replay_cached(event: Any, context: DurableContext) -> Any:
    """A child context (one step returning the input), then a wait; replay uses the record."""

    async def body(child: DurableContext) -> Any:
        return await child.step(lambda _: event)

    result = await context.run_in_child_context(body)
    await context.wait(Duration(1))
    return result


@requirement("3-10")
@durable_execution
async def child_step_and_wait(event: Any, context: DurableContext) -> Any:
    """A child context with a step and then a wait inside; the child returns the input."""

    async def body(child: DurableContext) -> Any:
        await child.step(lambda _: event, name="inner-step")
        await child.wait(Duration(1), name="inner-wait")
        return event

    return await context.run_in_child_context(body, name="step-and-wait")


LARGE = 300 * 1024  # characters: beyond the 256 KiB checkpoint limit


@requirement("3-11")
@durable_execution
async def child_large_result(event: Any, context: DurableContext) -> Any:
    """A child context building a >256 KiB result (ReplayChildren), logging the input; a wait."""

    async def body(child: DurableContext) -> Any:
        child.set_logger(LOG, log_during_replay=True)
        child.logger.info("child context running for: %s", event)
        small = await child.step(lambda _: event[:1], name="small")
        return small * LARGE

    large = await context.run_in_child_context(body, name="large-child")
    await context.wait(Duration(1))
    return len(large)


_CRASHED: set[str] = set()


@requirement("3-12")
@durable_execution
async def child_interrupted(event: Any, context: DurableContext) -> Any:
    """A child context whose step crashes the process once, after its START is durable."""
    arn = context.execution_context.durable_execution_arn

    def crash_once(_: StepContext) -> Any:
        if arn not in _CRASHED:
            _CRASHED.add(arn)
            raise SystemExit(1)
        return event

    async def body(child: DurableContext) -> Any:
        return await child.step(crash_once, name="crashing")

    return await context.run_in_child_context(body)


@requirement("3-13")
@durable_execution
async def child_wait_only(event: Any, context: DurableContext) -> Any:
    """A child context holding only a wait (returns the input), then a step outside it."""

    async def body(child: DurableContext) -> Any:
        await child.wait(Duration(1))
        return event

    await context.run_in_child_context(body, name="waiting-child")
    return await context.step(lambda _: event, name="after")


class _UpperSerDes(SerDes[str]):
    """Stores strings upper-cased, without JSON quoting."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return value.upper()

    def deserialize(self, data: str, context: SerDesContext) -> str:
        return data


@requirement("3-14")
@durable_execution
async def child_custom_serdes(event: Any, context: DurableContext) -> Any:
    """A child context whose result is stored by an upper-casing serdes."""

    async def body(child: DurableContext) -> Any:
        return await child.step(lambda _: event, name="echo")

    return await context.run_in_child_context(
        body, name="upper-child", config=ChildConfig(serdes=_UpperSerDes())
    )


@requirement("3-15")
@durable_execution
async def child_error_without_step(event: Any, context: DurableContext) -> Any:
    """A child context whose body raises at once, without any durable operation."""

    async def body(child: DurableContext) -> Any:
        raise RuntimeError("child body failed")

    return await context.run_in_child_context(body, name="raising-child")


@requirement("3-16")
@durable_execution
async def child_returns_none(event: Any, context: DurableContext) -> Any:
    """A child context returning None without any durable operation."""

    async def body(child: DurableContext) -> Any:
        return None

    return await context.run_in_child_context(body, name="none-child")


@requirement("3-17")
@durable_execution
async def child_logger_only(event: Any, context: DurableContext) -> Any:
    """A child context that only logs the input (replay logging on) and returns it; a wait."""

    async def body(child: DurableContext) -> Any:
        child.set_logger(LOG, log_during_replay=True)
        child.logger.info("child context logging: %s", event)
        return event

    result = await context.run_in_child_context(body, name="logging-child")
    await context.wait(Duration(1))
    return result


@requirement("3-18")
@durable_execution
async def child_mixed_replays(event: Any, context: DurableContext) -> Any:
    """A child with a step and a wait, then a step and a wait at the top level."""

    async def body(child: DurableContext) -> Any:
        await child.step(lambda _: event, name="inner-step")
        await child.wait(Duration(1), name="inner-wait")
        return event

    await context.run_in_child_context(body, name="mixed-child")
    result = await context.step(lambda _: event, name="outer-step")
    await context.wait(Duration(1), name="outer-wait")
    return result
