"""Checkpoint batching (PROTOCOL §8): group commit, limits, token chaining."""

from __future__ import annotations

import itertools
import math
from typing import Any

import anyio
import pytest

from adurable import DurableContext, durable_execution
from adurable.testing import LocalRunner

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("steps", [1, 124, 125, 300, 1000])
async def test_concurrent_steps_take_ceil_updates_over_250_calls(steps: int) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        async def one(i: int) -> None:
            await context.step(_ident(i), name=f"s{i}")

        async with anyio.create_task_group() as tg:
            for i in range(steps):
                tg.start_soon(one, i)
        return steps

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    checkpoints = [c for c in runner.service.calls if c.api == "checkpoint"]
    updates = sum(len(c.request["Updates"]) for c in checkpoints)
    assert updates == 2 * steps
    assert len(checkpoints) == math.ceil(updates / 250)
    assert all(len(c.request["Updates"]) <= 250 for c in checkpoints)


def _ident(i: int) -> Any:
    async def run(_: Any) -> int:
        return i

    return run


async def test_tokens_chain_and_every_call_gets_a_fresh_client_token() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> None:
        for i in range(3):
            await context.step(_ident(i), name=f"s{i}")

    runner = LocalRunner(handler)
    await runner.run()
    calls = [c for c in runner.service.calls if c.api == "checkpoint"]
    assert len(calls) == 3
    for previous, current in itertools.pairwise(calls):
        assert previous.response is not None
        assert current.request["CheckpointToken"] == previous.response["CheckpointToken"]
    assert len({c.request["ClientToken"] for c in calls}) == 3


async def test_big_payloads_split_by_bytes() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> None:
        async def one(i: int) -> None:
            await context.step(lambda _: "x" * 200_000, name=f"big{i}")

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(one, i)

    runner = LocalRunner(handler)
    await runner.run()
    for call in runner.service.calls:
        size = sum(len(str(u)) for u in call.request.get("Updates") or [])
        assert size < 800_000 or len(call.request["Updates"]) == 1
    assert len([c for c in runner.service.calls if c.api == "checkpoint"]) >= 3


class _RecordingService:
    """A DurableService that answers at once and records each call's updates."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    async def send_checkpoint(self, arn: str, token: str, updates: Any, client_token: str) -> Any:
        from adurable._service import CheckpointReply

        self.calls.append(list(updates))
        return CheckpointReply(f"{token}+", [], "")

    async def fetch_state(self, arn: str, token: str, marker: str, max_items: int = 0) -> Any:
        raise AssertionError("not paged")


async def test_a_full_call_of_async_updates_goes_out_without_waiting_for_a_sync_one() -> None:
    # Nobody waits on async updates, so the batcher lets more join for a while; but a full
    # call's worth can only go out as it is: it is sent at once (a map's last item SUCCEEDs
    # then ride while the map builds its result).
    from adurable._batcher import CheckpointBatcher
    from adurable._enums import OperationAction, OperationType
    from adurable._fastwire import Update
    from adurable._journal import Journal

    service = _RecordingService()
    batcher = CheckpointBatcher(service, "arn", "t0", Journal(), idle=3600)  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.run)
        for i in range(260):
            batcher.checkpoint(
                Update(f"id{i}", OperationType.STEP, OperationAction.START), sync=False
            )
        await anyio.wait_all_tasks_blocked()
        assert [len(call) for call in service.calls] == [250]  # the rest waits for company
        batcher.close()
