"""Forced replay (``replay="always"``): every example gives the same outcome as a normal run.

In that mode the service withdraws the checkpoint token after every checkpoint that changed
something, so each invocation makes one step of progress and the next one replays everything
before it from the start.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from adurable.testing import LocalRunner

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CASES: list[tuple[str, Any]] = [
    ("order_workflow", {"order_id": "o-7", "items": [{"sku": "tea", "price": 4, "qty": 3}]}),
    ("multi_step", {"user_id": "u-1"}),
    ("agent_loop", {"prompt": "weather?"}),
    ("saga", {"fail": []}),
    ("saga", {"fail": ["car"]}),
    ("map_fanout", {"items": [{"id": i, "value": i, "broken": i == 3} for i in range(10)]}),
    ("parallel_branches", {}),
]


def load(name: str) -> ModuleType:
    """A fresh copy of an example module (its module-level state starts empty)."""
    spec = importlib.util.spec_from_file_location(f"replay_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outcome(name: str, result: Any) -> Any:
    """What must not depend on the replay mode. A map that stops at ``min_successful`` may
    finish a few more items than needed, depending on how its branches interleave."""
    value = result.result
    if name == "map_fanout":
        value = {k: v for k, v in value.items() if k not in ("succeeded", "results")}
        assert result.result["succeeded"] >= 8
    return result.status, value, result.error


@pytest.mark.parametrize(("name", "event"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
async def test_examples_give_the_same_outcome_under_forced_replay(name: str, event: Any) -> None:
    normal = await LocalRunner(load(name).handler).run(input=event)
    forced = await LocalRunner(load(name).handler, replay="always").run(input=event)
    assert outcome(name, forced) == outcome(name, normal)
    assert forced.status == "SUCCEEDED"
    assert forced.invocations > normal.invocations  # it really did replay more
    if name != "map_fanout":  # the same operations, ids included, end the same way
        assert shape(forced) == shape(normal)


def shape(result: Any) -> list[tuple[str, str | None, str, str]]:
    return [(op.id, op.name, op.type.value, op.status.value) for op in result.operations[1:]]


@pytest.mark.parametrize("answer", [b'"APPROVED"', b'"NO"'])
async def test_human_approval_under_forced_replay(answer: bytes) -> None:
    results = []
    for replay in ("auto", "always"):
        example = load("human_approval")
        runner = LocalRunner(example.handler, replay=replay)  # type: ignore[arg-type]
        waiting = await runner.run(input={"service": "billing", "approver_email": "a@b.c"})
        assert waiting.status == "RUNNING"
        _, callback_id = example.outbox[-1]
        runner.service.send_callback_success(callback_id, answer)
        results.append(await runner.resume(waiting.arn))
        assert len(example.outbox) == 1  # the submitter step ran once, replays or not
    normal, forced = results
    assert (forced.status, forced.result) == (normal.status, normal.result)


async def test_every_invocation_makes_exactly_one_checkpoint_under_forced_replay() -> None:
    runner = LocalRunner(load("multi_step").handler, replay="always")
    result = await runner.run(input={"user_id": "u-1"})
    history = runner.service.history(result.arn)
    completed = sum(e["EventType"] == "InvocationCompleted" for e in history)
    assert completed == result.invocations
    calls = [c for c in runner.service.calls if c.api == "checkpoint" and c.request.get("Updates")]
    withdrawn = [c for c in calls if c.response is not None and "CheckpointToken" not in c.response]
    assert len(withdrawn) == len(calls)  # every token was withdrawn after one checkpoint
    normal = await LocalRunner(load("multi_step").handler).run(input={"user_id": "u-1"})
    assert result.result == normal.result
