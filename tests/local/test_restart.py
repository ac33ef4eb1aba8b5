"""Kill and restart: an engine on a SQLite file dies; a new one on the file finishes the work.

Nothing answered before the kill is lost: executions, operations, tokens, timers, callbacks,
history, invocation counters, and the virtual clock's time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.local import apps

from adurable.local import LocalEngine, MemoryStore, SqliteStore, Store, VirtualClock

pytestmark = pytest.mark.anyio

START = 1_767_225_600.0
T0 = dt.datetime.fromtimestamp(START, tz=dt.UTC)
ROOT = Path(__file__).resolve().parents[2]


def make_engine(store: Store, clock: Any = None) -> LocalEngine:
    engine = LocalEngine(store=store, clock=clock)
    for name in ("napper", "approver", "worker"):
        engine.register(name, getattr(apps, name))
    return engine


async def park(engine: LocalEngine) -> dict[str, str]:
    """Start a napper and an approver and run them until both wait (the clock is frozen)."""
    arns = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run)
        for name in ("napper", "approver"):
            result = await engine.invoke(f"{name}:1", b'{"n": 1}', invocation_type="Event")
            arns[name] = str(result.durable_execution_arn)
        while not all(apps.waiting_on_the_world(engine.service, a) for a in arns.values()):
            await engine.scheduler.changed().wait()
        tg.cancel_scope.cancel()
    return arns


def callback_id(engine: LocalEngine, arn: str) -> str:
    [op] = [op for op in engine.service.operations(arn) if op.type.value == "CALLBACK"]
    assert op.callback_details is not None and op.callback_details.callback_id is not None
    return op.callback_details.callback_id


def kinds(engine: LocalEngine, arn: str) -> list[tuple[int, str, str | None]]:
    return [
        (e["EventId"], e["EventType"], e.get("Name")) for e in engine.get_history(arn)["Events"]
    ]


async def finish_both(engine: LocalEngine, arns: dict[str, str]) -> None:
    engine.send_callback_success(callback_id(engine, arns["approver"]), b'"approved"')
    await engine.wait_until_done(arns["approver"])
    await engine.wait_until_done(arns["napper"])  # virtual time jumps the hour


NAPPER_EVENTS = [
    (1, "ExecutionStarted", None),
    (2, "StepStarted", "before"),
    (3, "StepSucceeded", "before"),
    (4, "WaitStarted", "nap"),
    (5, "InvocationCompleted", None),
    (6, "WaitSucceeded", "nap"),
    (7, "StepStarted", "after"),
    (8, "StepSucceeded", "after"),
    (9, "InvocationCompleted", None),
    (10, "ExecutionSucceeded", None),
]
APPROVER_EVENTS = [
    (1, "ExecutionStarted", None),
    (2, "ContextStarted", "approval"),
    (3, "CallbackStarted", "approval create callback id"),
    (4, "StepStarted", "approval submitter"),
    (5, "StepSucceeded", "approval submitter"),
    (6, "InvocationCompleted", None),
    (7, "CallbackSucceeded", "approval create callback id"),
    (8, "ContextSucceeded", "approval"),
    (9, "InvocationCompleted", None),
    (10, "ExecutionSucceeded", None),
]


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_dropped_engine_resumes_on_the_same_store(tmp_path: Path, kind: str) -> None:
    store: Store = SqliteStore(tmp_path / "state.db") if kind == "sqlite" else MemoryStore()
    first = make_engine(store, apps.FrozenClock(START))
    arns = await park(first)
    before = {name: first.get_history(arn) for name, arn in arns.items()}
    ops_before = {name: first.service.operations(arn) for name, arn in arns.items()}
    del first  # killed: no close, no goodbye

    if kind == "sqlite":
        store = SqliteStore(tmp_path / "state.db")
    second = make_engine(store, VirtualClock())
    for name, arn in arns.items():
        assert second.get_execution(arn)["Status"] == "RUNNING"
        assert second.get_history(arn) == before[name]
        assert second.service.operations(arn) == ops_before[name]
        assert second.service.execution(arn).invocations == 1
    assert second.service.next_timer(arns["napper"]) == START + 3600
    await finish_both(second, arns)

    assert kinds(second, arns["napper"]) == NAPPER_EVENTS
    assert kinds(second, arns["approver"]) == APPROVER_EVENTS
    napper = second.get_history(arns["napper"])["Events"]
    assert napper[5]["EventTimestamp"] == T0 + dt.timedelta(hours=1)  # WaitSucceeded on time
    assert napper[5]["WaitSucceededDetails"] == {"Duration": 3600}
    approver = second.get_history(arns["approver"])["Events"]
    assert approver[6]["CallbackSucceededDetails"] == {
        "Result": {"Payload": '"approved"', "Truncated": False}
    }
    assert json.loads(second.get_execution(arns["approver"])["Result"]) == {"answer": '"approved"'}
    assert second.get_execution(arns["napper"])["EndTimestamp"] == T0 + dt.timedelta(hours=1)
    assert second.service.execution(arns["napper"]).invocations == 2


async def test_virtual_time_and_ids_continue_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = LocalEngine(store=SqliteStore(db))
    first.register("sleeper", apps.sleeper)
    done = await first.invoke("sleeper:1", json.dumps({"seconds": 50}).encode())
    assert first.clock.now() == START + 50
    del first

    second = LocalEngine(store=SqliteStore(db))
    second.register("sleeper", apps.sleeper)
    assert second.clock.now() == START + 50  # the virtual clock resumed where it was
    again = await second.invoke("sleeper:1", json.dumps({"seconds": 10}).encode())
    assert second.clock.now() == START + 60
    assert again.durable_execution_arn != done.durable_execution_arn
    listed = second.list_executions("sleeper")["DurableExecutions"]
    assert [e["Status"] for e in listed] == ["SUCCEEDED", "SUCCEEDED"]


async def test_an_invocation_in_flight_at_the_kill_is_a_crash_record(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = make_engine(SqliteStore(db))
    arn = str(
        (await first.invoke("worker:1", b"{}", invocation_type="Event")).durable_execution_arn
    )
    event = first.service.invocation_event(arn)  # a Lambda is running it... then the kill
    del first

    second = make_engine(SqliteStore(db))
    history = second.get_history(arn)["Events"]
    crash = history[-1]
    assert crash["EventType"] == "InvocationCompleted"
    assert crash["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"] == (
        "Runtime.ExitError"
    )
    assert "RequestId" in crash["InvocationCompletedDetails"]
    stale = second.service
    with pytest.raises(Exception, match="Invalid checkpoint token"):
        stale.checkpoint(DurableExecutionArn=arn, CheckpointToken=event["CheckpointToken"])
    await second.wait_until_done(arn)
    assert second.get_execution(arn)["Result"] == '"worked"'


async def test_a_plain_chained_invoke_running_at_the_kill_is_called_again(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    started = anyio.Event()
    calls: list[Any] = []

    async def stuck(event: Any, context: Any) -> Any:
        started.set()
        await anyio.sleep_forever()

    def record(event: Any, context: Any) -> Any:
        calls.append(event)
        return {"seen": event}

    first = LocalEngine(store=SqliteStore(db), clock=apps.FrozenClock(START))
    first.register("caller", apps.caller)
    first.register("record", stuck)
    payload = json.dumps({"target": "record:1", "payload": 5}).encode()
    arn = str(
        (await first.invoke("caller:1", payload, invocation_type="Event")).durable_execution_arn
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.run)
        await started.wait()
        while first.service.in_flight(arn):
            await first.scheduler.changed().wait()
        tg.cancel_scope.cancel()
    assert [r.function_name for r in first.service.pending_plain_invokes()] == ["record"]
    del first

    second = LocalEngine(store=SqliteStore(db))
    second.register("caller", apps.caller)
    second.register("record", record)
    await second.wait_until_done(arn)
    assert calls == [5]
    assert json.loads(second.get_execution(arn)["Result"]) == {"seen": 5}


async def test_a_killed_process_loses_nothing(tmp_path: Path) -> None:
    """The real thing: SIGKILL a process with executions waiting on a timer and a callback
    and one stuck mid-invocation; a new engine on the file completes all three."""
    db = tmp_path / "state.db"
    child = await anyio.open_process(
        [sys.executable, "-m", "tests.local.kill_child", str(db)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        line = b""
        with anyio.fail_after(60):
            while not line.endswith(b"\n"):
                line += await child.stdout.receive()
        arns = json.loads(line)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
        await child.aclose()
    assert child.returncode == -signal.SIGKILL

    engine = make_engine(SqliteStore(db))
    worker = engine.get_history(arns["worker"])["Events"]
    assert [e["EventType"] for e in worker] == [
        "ExecutionStarted",
        "StepStarted",
        "InvocationCompleted",
    ]
    assert worker[-1]["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"] == (
        "Runtime.ExitError"
    )
    await finish_both(engine, arns)
    await engine.wait_until_done(arns["worker"])
    assert kinds(engine, arns["napper"]) == NAPPER_EVENTS
    assert kinds(engine, arns["approver"]) == APPROVER_EVENTS
    assert engine.get_execution(arns["worker"])["Result"] == '"worked"'
    assert [e["EventType"] for e in engine.get_history(arns["worker"])["Events"]][3:] == [
        "StepSucceeded",  # AT_LEAST_ONCE: the STARTED step runs again, no new StepStarted
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
