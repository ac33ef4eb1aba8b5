"""Requirements 1-x: step."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

from tests.conformance._registry import requirement

from adurable import (
    DurableContext,
    Duration,
    JitterStrategy,
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    SerDes,
    SerDesContext,
    StepConfig,
    StepContext,
    StepError,
    StepSemantics,
    create_retry_strategy,
    durable_execution,
)

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


class TransientError(Exception):
    """A failure worth retrying (1-15, 1-16)."""


@requirement("1-1")
@durable_execution
async def step_basic(event: Any, context: DurableContext) -> str:
    """One step that greets the input."""
    return await context.step(lambda _: f"Hello, {event}!", name="greet")


@requirement("1-2")
@durable_execution
async def step_with_name(event: Any, context: DurableContext) -> str:
    """One step with an explicit name."""
    return await context.step(lambda _: f"Hello, {event}!", name="custom_step_name")


@requirement("1-3")
@durable_execution
async def sequential_steps(event: Any, context: DurableContext) -> str:
    """Two steps, the second one using the first one's result."""
    first: str = await context.step(lambda _: "first", name="step_one")
    return await context.step(lambda _: f"{first}_second", name="step_two")


@requirement("1-4")
@durable_execution
async def complex_result(event: Any, context: DurableContext) -> dict[str, Any]:
    """A step returning a nested object."""

    def build_response(_: StepContext) -> dict[str, Any]:
        return {"user": {"name": event["name"], "tags": event["tags"]}, "count": len(event["tags"])}

    return await context.step(build_response, name="build_response")


@requirement("1-5")
@durable_execution
async def none_result(event: Any, context: DurableContext) -> None:
    """A step returning None."""
    return await context.step(lambda _: None, name="do_nothing")


class UppercaseSerDes(SerDes[Any]):
    """JSON-ish codec that upper-cases strings when it writes them."""

    def serialize(self, value: Any, context: SerDesContext) -> str | None:
        return json.dumps(value.upper() if isinstance(value, str) else value)

    def deserialize(self, data: str, context: SerDesContext) -> Any:
        return json.loads(data)


@requirement("1-6")
@durable_execution
async def custom_serdes(event: Any, context: DurableContext) -> Any:
    """A step whose custom serdes writes its (string) result in upper case."""
    return await context.step(
        lambda _: event, name="return_input", config=StepConfig(serdes=UppercaseSerDes())
    )


@requirement("1-7")
@durable_execution
async def step_logger(event: Any, context: DurableContext) -> str:
    """A step that logs through its step context logger."""

    def greet(step_context: StepContext) -> str:
        step_context.logger.info(f"Greeting step started for: {event}")
        greeting = f"Hello, {event}!"
        step_context.logger.info(f"Greeting step completed with: {greeting}")
        return greeting

    return await context.step(greet, name="greet")


@requirement("1-8")
@durable_execution
async def step_then_wait(event: Any, context: DurableContext) -> str:
    """A step, then a 2 s wait; the replay skips the step."""
    result: str = await context.step(lambda _: "computed", name="compute")
    await context.wait(Duration.from_seconds(2))
    return result


@requirement("1-9")
@durable_execution
async def replay_skips_succeeded_step(event: Any, context: DurableContext) -> str:
    """A succeeded step is not run again on replay: its cached value comes back."""

    def compute(step_context: StepContext) -> str:
        step_context.logger.info("step executed")
        return "cached_value"

    result: str = await context.step(compute, name="compute")
    await context.wait(Duration.from_seconds(1))
    return result


@requirement("1-10")
@durable_execution
async def replay_rethrows_failed_step(event: Any, context: DurableContext) -> None:
    """A failed step raises the same StepError again on replay, without running."""

    def fail(step_context: StepContext) -> None:
        step_context.logger.info("step executed")
        raise RuntimeError("permanent failure")

    with contextlib.suppress(StepError):
        await context.step(fail, name="failing_step", config=NO_RETRY)
    await context.wait(Duration.from_seconds(1))


ONE_SECOND_RETRIES = RetryStrategyConfig(
    initial_delay=Duration.from_seconds(1), backoff_rate=1, jitter_strategy=JitterStrategy.NONE
)


@requirement("1-11")
@durable_execution
async def retry_then_succeed(event: Any, context: DurableContext) -> str:
    """A step that fails its first attempt and succeeds on the retry."""

    def unreliable(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            raise RuntimeError("first attempt fails")
        return "Operation succeeded"

    strategy = create_retry_strategy(ONE_SECOND_RETRIES)
    return await context.step(
        unreliable, name="unreliable", config=StepConfig(retry_strategy=strategy)
    )


@requirement("1-12")
@durable_execution
async def retry_exhaustion(event: Any, context: DurableContext) -> None:
    """A step that always fails, retried until its 4 attempts are used up."""

    def always_fail(_: StepContext) -> None:
        raise RuntimeError("always fails")

    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=4,
            initial_delay=Duration.from_seconds(1),
            backoff_rate=1,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    await context.step(always_fail, name="always_fail", config=StepConfig(retry_strategy=strategy))


@requirement("1-13")
@durable_execution
async def default_retry(event: Any, context: DurableContext) -> str:
    """A step that fails twice, retried by the default strategy (no config)."""

    def unreliable(step_context: StepContext) -> str:
        if step_context.attempt < 3:
            raise RuntimeError(f"attempt {step_context.attempt} fails")
        return "succeeded on third attempt"

    return await context.step(unreliable, name="unreliable")


@requirement("1-14")
@durable_execution
async def custom_backoff(event: Any, context: DurableContext) -> str:
    """A step that fails twice, retried after 2 s then 6 s (backoff 3, no jitter)."""

    def unreliable(step_context: StepContext) -> str:
        if step_context.attempt < 3:
            raise RuntimeError(f"attempt {step_context.attempt} fails")
        return "succeeded on third attempt"

    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=5,
            initial_delay=Duration.from_seconds(2),
            backoff_rate=3,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return await context.step(
        unreliable, name="unreliable", config=StepConfig(retry_strategy=strategy)
    )


def retry_on_transient(error: Exception, attempts_made: int) -> RetryDecision:
    """Retry TransientError (after 1 s, up to 3 attempts); give up on anything else."""
    if isinstance(error, TransientError) and attempts_made < 3:
        return RetryDecision.retry(Duration.from_seconds(1))
    return RetryDecision.no_retry()


def no_retry_on_transient(error: Exception, attempts_made: int) -> RetryDecision:
    """Never retry TransientError; retry anything else after 1 s, up to 3 attempts."""
    if isinstance(error, TransientError) or attempts_made >= 3:
        return RetryDecision.no_retry()
    return RetryDecision.retry(Duration.from_seconds(1))


@requirement("1-15")
@durable_execution
async def retry_specific_error(event: Any, context: DurableContext) -> str:
    """A step that raises TransientError once; the strategy retries it."""

    def flaky(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            raise TransientError("temporary glitch")
        return "recovered"

    return await context.step(
        flaky, name="flaky", config=StepConfig(retry_strategy=retry_on_transient)
    )


@requirement("1-16")
@durable_execution
async def non_retryable_error(event: Any, context: DurableContext) -> str:
    """A step that raises TransientError, which its strategy does not retry."""

    def flaky(_: StepContext) -> str:
        raise TransientError("temporary glitch")

    return await context.step(
        flaky, name="flaky", config=StepConfig(retry_strategy=no_retry_on_transient)
    )


@requirement("1-17")
@durable_execution
async def at_most_once_interrupted(event: Any, context: DurableContext) -> str:
    """An at-most-once step whose Lambda dies mid-body: it is never re-run and, without
    retries, fails with StepInterruptedError."""

    async def crash(step_context: StepContext) -> str:
        step_context.logger.info(f"Processing input: {event}")
        sys.exit(1)  # the Lambda runtime process exits: Runtime.ExitError

    return await context.step(
        crash,
        name="at_most_once_flaky_step",
        config=StepConfig(
            retry_strategy=RetryPresets.none(),
            step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        ),
    )


@requirement("1-18")
@durable_execution
async def at_most_once_retried(event: Any, context: DurableContext) -> str:
    """An at-most-once step whose Lambda dies on the first attempt; the retry succeeds."""

    async def flaky(step_context: StepContext) -> str:
        step_context.logger.info(f"Processing input: {event}")
        if step_context.attempt == 1:
            sys.exit(1)  # the Lambda runtime process exits: Runtime.ExitError
        return "succeeded on second attempt"

    return await context.step(
        flaky,
        name="at_most_once_flaky_step",
        config=StepConfig(
            retry_strategy=create_retry_strategy(ONE_SECOND_RETRIES),
            step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        ),
    )


@requirement("1-19")
@durable_execution
async def permanent_failure(event: Any, context: DurableContext) -> None:
    """A step that raises, with no retries: the execution fails."""

    def failing(_: StepContext) -> None:
        raise RuntimeError("something went wrong")

    await context.step(failing, name="failing_func", config=NO_RETRY)


@requirement("1-20")
@durable_execution
async def error_caught(event: Any, context: DurableContext) -> str:
    """A failed step's StepError is caught; a second step then runs on a fallback value."""

    def failing(_: StepContext) -> str:
        raise RuntimeError("something went wrong")

    try:
        value: str = await context.step(failing, name="failing_func", config=NO_RETRY)
    except StepError:
        value = "fallback"
    return await context.step(lambda _: f"{value}_result", name="use_value")
