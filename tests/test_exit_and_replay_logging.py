"""``set_logger(..., log_during_replay=True)``, ``sys.exit`` in user code, and plugins whose
``on_invocation_start`` raises."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from adurable import DurableContext, Duration, StepContext, durable_execution
from adurable.plugins import DurablePlugin
from adurable.testing import LocalRunner

pytestmark = pytest.mark.anyio


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def collect() -> Any:
    handler = Collect()
    target = logging.getLogger("tests.replay_logging")
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    yield handler
    target.removeHandler(handler)


async def test_log_during_replay_keeps_replayed_lines_and_children_inherit_it(
    collect: Collect,
) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> None:
        context.set_logger(logging.getLogger("tests.replay_logging"), log_during_replay=True)
        context.logger.info("root")

        async def body(child: DurableContext) -> None:
            child.logger.info("child")

        # ReplayChildren (large result): the body re-runs on replay, still replaying.
        await context.run_in_child_context(lambda c: _large(body, c), name="large")
        await context.wait(Duration(1))

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert collect.messages == ["root", "child", "root", "child"]


async def _large(body: Any, child: DurableContext) -> str:
    await body(child)
    return "x" * 300_000


async def test_default_logger_still_drops_replayed_lines(collect: Collect) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> None:
        context.set_logger(logging.getLogger("tests.replay_logging"))
        context.logger.info("root")
        await context.wait(Duration(1))

    await LocalRunner(handler).run()
    assert collect.messages == ["root"]


async def test_sys_exit_in_a_step_sends_the_queued_starts_first() -> None:
    exited: list[bool] = []

    def exit_once(step: StepContext) -> str:
        if not exited:
            exited.append(True)
            sys.exit(1)
        return "done"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        async def body(child: DurableContext) -> str:
            return await child.step(exit_once, name="s")

        return await context.run_in_child_context(body, name="c")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert (result.status, result.result) == ("SUCCEEDED", "done")
    events = runner.engine.get_history(result.arn)["Events"]
    assert [e["EventType"] for e in events[1:5]] == [
        "ContextStarted",
        "StepStarted",
        "InvocationCompleted",
        "StepSucceeded",
    ]
    assert events[3]["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"] == (
        "Runtime.ExitError"
    )


async def test_a_plugin_whose_start_hook_raises_still_gets_its_other_hooks() -> None:
    hooks: list[str] = []

    class Faulty(DurablePlugin):
        def on_invocation_start(self, info: Any) -> None:
            hooks.append("start")
            raise RuntimeError("plugin bug")

        def on_user_function_start(self, info: Any) -> None:
            hooks.append("function")

        def on_invocation_end(self, info: Any) -> None:
            hooks.append(f"end {info.status.value}")

    class Factory:
        def create_plugin(self, info: Any, /) -> Faulty:
            return Faulty()

    @durable_execution(plugins=[Factory()])
    async def handler(event: Any, context: DurableContext) -> int:
        return await context.step(lambda _: 3, name="s")

    result = await LocalRunner(handler).run()
    assert (result.status, result.result) == ("SUCCEEDED", 3)
    assert hooks == ["start", "function", "end SUCCEEDED"]
