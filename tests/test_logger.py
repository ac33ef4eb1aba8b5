"""context.logger is replay-aware and leaves the root logger alone (PROTOCOL §6.4)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from adurable import DurableContext, Duration, StepContext, durable_execution
from adurable.testing import LocalRunner

pytestmark = pytest.mark.anyio


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_logs_once_per_execution_not_once_per_invocation() -> None:
    collect = Collect()
    target = logging.getLogger("adurable.context")
    target.addHandler(collect)
    target.setLevel(logging.INFO)
    root_handlers = list(logging.getLogger().handlers)

    def work(step: StepContext) -> int:
        step.logger.info("in step attempt %d", step.attempt)
        return 1

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        context.logger.info("before")
        await context.step(work, name="work")
        await context.wait(Duration(5), name="w1")
        context.logger.info("between")
        await context.wait(Duration(5), name="w2")
        context.logger.info("after")
        return "ok"

    try:
        result = await LocalRunner(handler).run()
    finally:
        target.removeHandler(collect)
    assert result.invocations == 3
    messages = [r.getMessage() for r in collect.records]
    assert messages == ["before", "in step attempt 1", "between", "after"]
    step_record = collect.records[1]
    assert step_record.operationName == "work"  # type: ignore[attr-defined]
    assert step_record.attempt == 1  # type: ignore[attr-defined]
    assert step_record.executionArn == result.arn  # type: ignore[attr-defined]
    assert logging.getLogger().handlers == root_handlers


async def test_set_logger_accepts_any_object_with_log_methods() -> None:
    lines: list[tuple[str, dict[str, Any]]] = []

    class Sink:
        def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
            lines.append((msg % args, kwargs.get("extra", {})))

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> None:
        context.set_logger(Sink())
        context.logger.info("hello %s", "there")

    await LocalRunner(handler).run()
    assert lines[0][0] == "hello there"
    assert "executionArn" in lines[0][1]
