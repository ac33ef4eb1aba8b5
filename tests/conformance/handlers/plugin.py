"""Requirements 10-x: instrumentation plugins (``adurable.plugins``).

The plugins print one JSON object per hook to stdout, stamped with the execution ARN they were
given by ``on_invocation_start``. Operation and attempt hooks only report STEP operations.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conformance._registry import requirement

from adurable import (
    DurableContext,
    Duration,
    JitterStrategy,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
)
from adurable.plugins import (
    DurablePlugin,
    InvocationEndInfo,
    InvocationStartInfo,
    OperationEndInfo,
    OperationStartInfo,
    OperationType,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
)


class ConfPlugin(DurablePlugin):
    """Prints invocation, operation and attempt hooks as JSON records tagged ``label``."""

    def __init__(self, label: str, info: InvocationStartInfo) -> None:
        self.label = label
        self.arn = info.execution_arn

    def emit(self, hook: str, **fields: Any) -> None:
        record = {"plugin": self.label, "hook": hook, **fields, "durableExecutionArn": self.arn}
        print(json.dumps(record))  # noqa: T201 -- the requirement: JSON lines on plain stdout

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.arn = info.execution_arn
        self.emit("invocation-start", first=info.is_first_invocation)

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self.emit("invocation-end", status=info.status.value)

    def on_operation_start(self, info: OperationStartInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit("operation-start", op=info.operation_id)

    def on_operation_end(self, info: OperationEndInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit("operation-end", op=info.operation_id, status=info.status.value)

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit("attempt-start", n=info.attempt, op=info.operation_id)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit(
                "attempt-end", n=info.attempt, outcome=info.outcome.value, op=info.operation_id
            )


class FaultyPlugin(ConfPlugin):
    """Like ConfPlugin, but every hook raises after printing its record."""

    def emit(self, hook: str, **fields: Any) -> None:
        super().emit(hook)
        raise RuntimeError(f"{self.label} fails in {hook}")


class Factory:
    """Makes a fresh ``plugin_class(label, info)`` for every invocation."""

    def __init__(self, label: str, plugin_class: type[ConfPlugin] = ConfPlugin) -> None:
        self.label = label
        self.plugin_class = plugin_class

    def create_plugin(self, info: InvocationStartInfo, /) -> ConfPlugin:
        return self.plugin_class(self.label, info)


def greet(name: Any) -> Any:
    """The step function of ``context.step(greet(event))``: logs, then greets."""

    def run(step: StepContext) -> str:
        step.logger.info("Greeting step running for: %s", name)
        return f"Hello, {name}!"

    return run


@requirement("10-1")
@durable_execution(plugins=[Factory("CONFPLUGIN")])
async def plugin_invocation_hooks(event: Any, context: DurableContext) -> str:
    """One greeting step under a plugin reporting its invocation hooks."""
    return await context.step(greet(event), name="greet")


@requirement("10-2")
@durable_execution(plugins=[Factory("CONFPLUGIN")])
async def plugin_operation_hooks(event: Any, context: DurableContext) -> str:
    """One greeting step under a plugin reporting its operation start and end."""
    return await context.step(greet(event), name="greet")


RETRY_ONCE = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3, initial_delay=Duration(1), jitter_strategy=JitterStrategy.NONE
        )
    )
)


@requirement("10-3")
@durable_execution(plugins=[Factory("CONFPLUGIN")])
async def plugin_attempt_hooks(event: Any, context: DurableContext) -> str:
    """A step failing on attempt 1 and succeeding on attempt 2, its attempts reported."""

    def unreliable(step: StepContext) -> str:
        if step.attempt < 2:
            raise RuntimeError("first attempt fails")
        return "Operation succeeded"

    return await context.step(unreliable, name="unreliable", config=RETRY_ONCE)


@requirement("10-4")
@durable_execution(plugins=[Factory("CONFPLUGIN-FAULTY", FaultyPlugin)])
async def plugin_faulty(event: Any, context: DurableContext) -> str:
    """One greeting step under a plugin whose every hook raises (ignored by adurable)."""
    return await context.step(greet(event), name="greet")


@requirement("10-5")
@durable_execution(plugins=[Factory("CONFPLUGIN-A"), Factory("CONFPLUGIN-B")])
async def plugin_two(event: Any, context: DurableContext) -> str:
    """One greeting step under two plugins, registered A then B."""
    return await context.step(greet(event), name="greet")


@requirement("10-6")
@durable_execution(plugins=[Factory("CONFPLUGIN")])
async def plugin_first_invocation(event: Any, context: DurableContext) -> None:
    """A 2-second wait: the plugin sees a first invocation, then a replay."""
    await context.wait(Duration(2))


@requirement("10-7")
@durable_execution(plugins=[Factory("CONFPLUGIN")])
async def plugin_terminal_failure(event: Any, context: DurableContext) -> str:
    """A step failing without retry: the plugin sees the invocation end FAILED."""

    def failing(step: StepContext) -> str:
        raise RuntimeError("this step always fails")

    return await context.step(failing, name="failing", config=StepConfig(RetryPresets.none()))
