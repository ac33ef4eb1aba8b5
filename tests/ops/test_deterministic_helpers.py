"""context.random() / context.uuid4(): same values on replay, different across executions."""

from __future__ import annotations

from typing import Any

import pytest

from adurable import DurableContext, Duration, durable_execution
from adurable.testing import FakeService, LocalRunner

pytestmark = pytest.mark.anyio


async def test_values_repeat_on_replay_and_differ_between_executions() -> None:
    seen: list[tuple[str, float]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> list[Any]:
        first = (str(context.uuid4()), context.random().random())
        seen.append(first)
        await context.wait(Duration(5), name="w")
        second = (str(context.uuid4()), context.random().random())
        seen.append(second)
        return [first, second]

    service = FakeService()
    one = await LocalRunner(handler, service=service).run()
    two = await LocalRunner(handler, service=service).run()
    assert one.status == two.status == "SUCCEEDED"
    # Invocation 1 drew `first`; invocation 2 replayed and drew the same `first`, then `second`.
    assert seen[0] == seen[1]
    assert one.result[0] != one.result[1]  # different positions give different values
    assert one.result != two.result  # different executions give different values
    assert one.result[0][0][14] == "4"  # a version-4 UUID
    assert not [c for c in service.calls if c.api == "checkpoint" and not c.request["Updates"]]
