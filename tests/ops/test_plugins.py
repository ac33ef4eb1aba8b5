"""Plugin hooks around invocations, operations and user functions (PROTOCOL §13.2)."""

from __future__ import annotations

from typing import Any

import pytest

from adurable import (
    DurableContext,
    Duration,
    RetryDecision,
    StepConfig,
    durable_execution,
)
from adurable.plugins import DurablePlugin
from adurable.testing import LocalRunner

pytestmark = pytest.mark.anyio


class Recorder(DurablePlugin):
    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        self.log = log

    def on_invocation_start(self, info: Any) -> None:
        self.log.append(("invocation-start", info.is_first_invocation))

    def on_operation_start(self, info: Any) -> None:
        self.log.append(("op-start", info.name, info.status.value, info.is_replayed))

    def on_user_function_start(self, info: Any) -> None:
        self.log.append(("fn-start", info.name, info.attempt))

    def on_user_function_end(self, info: Any) -> None:
        self.log.append(("fn-end", info.name, info.attempt, info.outcome.value))

    def on_operation_end(self, info: Any) -> None:
        self.log.append(("op-end", info.name, info.status.value))

    def on_invocation_end(self, info: Any) -> None:
        self.log.append(("invocation-end", info.status.value, info.execution_result))


class Factory:
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def create_plugin(self, info: Any, /) -> Recorder:
        return Recorder(self.log)


def retry_once(error: Exception, attempts: int) -> RetryDecision:
    return RetryDecision.retry(Duration(1)) if attempts < 2 else RetryDecision.no_retry()


async def test_hooks_fire_in_order_across_a_retry() -> None:
    factory = Factory()
    calls: list[int] = []

    @durable_execution(plugins=[factory])
    async def handler(event: Any, context: DurableContext) -> str:
        def flaky(step: Any) -> str:
            calls.append(step.attempt)
            if step.attempt == 1:
                raise ValueError("first time")
            return "ok"

        return await context.step(flaky, name="flaky", config=StepConfig(retry_strategy=retry_once))

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert factory.log == [
        ("invocation-start", True),
        ("op-start", "flaky", "STARTED", False),
        ("fn-start", "flaky", 1),
        ("fn-end", "flaky", 1, "FAILED"),
        ("invocation-end", "PENDING", None),
        ("invocation-start", False),
        ("op-start", "flaky", "STARTED", True),
        ("fn-start", "flaky", 2),
        ("fn-end", "flaky", 2, "SUCCEEDED"),
        ("op-end", "flaky", "SUCCEEDED"),
        ("invocation-end", "SUCCEEDED", '"ok"'),
    ]


async def test_wait_gets_start_on_replay_and_end_when_completed_while_suspended() -> None:
    factory = Factory()

    @durable_execution(plugins=[factory])
    async def handler(event: Any, context: DurableContext) -> None:
        await context.wait(Duration(5), name="nap")
        await context.wait(Duration(5), name="nap2")

    await LocalRunner(handler).run()
    ops = [entry for entry in factory.log if entry[0] in ("op-start", "op-end")]
    assert ops == [
        ("op-start", "nap", "STARTED", False),
        ("op-end", "nap", "SUCCEEDED"),  # replay reaches it: it completed while suspended
        ("op-start", "nap2", "STARTED", False),
        ("op-end", "nap2", "SUCCEEDED"),
    ]


async def test_failing_plugins_never_break_the_handler() -> None:
    class Broken(DurablePlugin):
        def on_operation_start(self, info: Any) -> None:
            raise RuntimeError("plugin bug")

        def on_user_function_end(self, info: Any) -> None:
            raise RuntimeError("plugin bug")

    class BrokenFactory:
        def create_plugin(self, info: Any, /) -> Broken:
            return Broken()

    @durable_execution(plugins=[BrokenFactory()])
    async def handler(event: Any, context: DurableContext) -> int:
        return await context.step(lambda _: 3, name="s")

    result = await LocalRunner(handler).run()
    assert (result.status, result.result) == ("SUCCEEDED", 3)


async def test_propagation_metadata_becomes_the_invoke_trace_header() -> None:
    from adurable.plugins import PropagationMetadata

    class Tracer(DurablePlugin):
        def provide_propagation_metadata(self, info: Any) -> PropagationMetadata:
            return PropagationMetadata(x_amzn_trace_id=f"Root=1-{info.operation_id[:8]}")

    class TracerFactory:
        def create_plugin(self, info: Any, /) -> Tracer:
            return Tracer()

    @durable_execution(plugins=[TracerFactory()])
    async def handler(event: Any, context: DurableContext) -> Any:
        return await context.invoke("target:$LATEST", {"x": 1}, name="call")

    runner = LocalRunner(handler)
    runner.register("target", lambda event, ctx: {"echo": event})
    result = await runner.run()
    assert result.result == {"echo": {"x": 1}}
    start = next(
        u
        for call in runner.service.calls
        if call.api == "checkpoint"
        for u in call.request.get("Updates") or []
        if u["Type"] == "CHAINED_INVOKE"
    )
    assert start["ChainedInvokeOptions"]["XAmznTraceId"] == "Root=1-1ced8f5b"
