"""The scheduler: what it runs when, how virtual time jumps, and how it waits on real time."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from typing import Any

import anyio
import pytest
from tests.local import apps

from adurable.local import LocalEngine, RealClock, VirtualClock

pytestmark = pytest.mark.anyio

START = 1_767_225_600.0


class SteppedClock:
    """Wall time under the test's control: the scheduler sleeps on it like on a RealClock."""

    virtual = False

    def __init__(self) -> None:
        self._now = START
        self.requests: list[float | None] = []
        self._tick: anyio.Event | None = None

    def now(self) -> float:
        return self._now

    def now_datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._now, tz=dt.UTC)

    async def sleep_until(self, t: float | None, wake: anyio.Event) -> None:
        self.requests.append(t)
        tick = self._tick = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def woken() -> None:
                await wake.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(woken)
            await tick.wait()
            tg.cancel_scope.cancel()

    def tick_to(self, t: float) -> None:
        self._now = t
        if self._tick is not None:
            self._tick.set()


async def until(engine: LocalEngine, condition: Any) -> None:
    while not condition():
        await engine.scheduler.changed().wait()


def sleeper(seconds: int) -> bytes:
    return json.dumps({"seconds": seconds}).encode()


async def test_virtual_time_jumps_timer_by_timer_across_executions() -> None:
    engine = LocalEngine()
    engine.register("sleeper", apps.sleeper)
    long = await engine.invoke("sleeper:1", sleeper(20), invocation_type="Event")
    short = await engine.invoke("sleeper:1", sleeper(10), invocation_type="Event")
    assert engine.clock.now() == START
    await engine.wait_until_done(str(long.durable_execution_arn))
    assert engine.clock.now() == START + 20
    for result, seconds in ((short, 10), (long, 20)):
        arn = str(result.durable_execution_arn)
        [done] = [e for e in engine.get_history(arn)["Events"] if e["EventType"] == "WaitSucceeded"]
        assert done["EventTimestamp"].timestamp() == START + seconds
        assert engine.get_execution(arn)["Status"] == "SUCCEEDED"


async def test_callback_timeouts_are_reached_only_when_asked() -> None:
    engine = LocalEngine()
    engine.register("cb", apps.callback_with_timeouts)
    arn = str((await engine.invoke("cb:1", b"{}", invocation_type="Event")).durable_execution_arn)
    await engine.wait_until_done(arn)
    assert engine.get_execution(arn)["Status"] == "RUNNING"  # waiting on the outside world
    assert engine.clock.now() == START
    engine.time_out_callbacks = True
    await engine.wait_until_done(arn)
    assert engine.clock.now() == START + 60  # the heartbeat timeout
    assert engine.get_execution(arn)["Status"] == "FAILED"


async def test_time_passing_elsewhere_runs_out_a_callback_timeout() -> None:
    engine = LocalEngine()
    engine.register("cb", apps.callback_with_timeouts)
    engine.register("sleeper", apps.sleeper)
    cb = str((await engine.invoke("cb:1", b"{}", invocation_type="Event")).durable_execution_arn)
    await engine.invoke("sleeper:1", sleeper(100))  # 100 s pass: the 60 s heartbeat expires
    await engine.wait_until_done(cb)
    events = engine.get_history(cb)["Events"]
    [timed_out] = [e for e in events if e["EventType"] == "CallbackTimedOut"]
    assert timed_out["EventTimestamp"].timestamp() == START + 60


async def test_on_wall_time_the_scheduler_sleeps_until_the_timer() -> None:
    clock = SteppedClock()
    engine = LocalEngine(clock=clock)
    engine.register("sleeper", apps.sleeper)
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run)
        arn = str(
            (
                await engine.invoke("sleeper:1", sleeper(30), invocation_type="Event")
            ).durable_execution_arn
        )
        await until(engine, lambda: START + 30 in clock.requests)
        assert engine.get_execution(arn)["Status"] == "RUNNING"
        clock.tick_to(START + 29)  # not yet
        await until(engine, lambda: len(clock.requests) > clock.requests.index(START + 30) + 1)
        assert engine.get_execution(arn)["Status"] == "RUNNING"
        clock.tick_to(START + 30)
        await until(engine, lambda: engine.get_execution(arn)["Status"] != "RUNNING")
        tg.cancel_scope.cancel()
    assert engine.get_execution(arn)["Status"] == "SUCCEEDED"


async def test_news_wakes_a_sleeping_scheduler() -> None:
    clock = SteppedClock()
    engine = LocalEngine(clock=clock)
    engine.register("approver", apps.approver)
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run)
        result = await engine.invoke("approver:1", b"{}", invocation_type="Event")
        arn = str(result.durable_execution_arn)
        await until(engine, lambda: apps.waiting_on_the_world(engine.service, arn))
        [op] = [op for op in engine.service.operations(arn) if op.type.value == "CALLBACK"]
        assert op.callback_details is not None
        engine.send_callback_success(str(op.callback_details.callback_id), b'"ok"')
        await until(engine, lambda: engine.get_execution(arn)["Status"] != "RUNNING")
        tg.cancel_scope.cancel()
    assert engine.get_execution(arn)["Status"] == "SUCCEEDED"
    assert clock.now() == START  # no time had to pass


async def test_cancelling_the_scheduler_mid_invocation_leaves_a_crash_record() -> None:
    started = anyio.Event()

    class Stuck:
        async def run(self, event: Any, lambda_context: Any, *, client: Any) -> Any:
            started.set()
            await anyio.sleep_forever()

    engine = LocalEngine()
    engine.register("stuck", Stuck())
    arn = str(
        (await engine.invoke("stuck:1", b"{}", invocation_type="Event")).durable_execution_arn
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run)
        await started.wait()
        tg.cancel_scope.cancel()
    [completed] = [
        e for e in engine.get_history(arn)["Events"] if e["EventType"] == "InvocationCompleted"
    ]
    assert completed["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"] == (
        "Runtime.ExitError"
    )
    assert engine.service.needs_invocation(arn)  # due again at once, not counted as a failure
    assert engine.service.execution(arn).consecutive_failures == 0


async def test_sys_exit_in_a_handler_is_a_lambda_crash_not_the_engines() -> None:
    from adurable import DurableContext, StepConfig, StepContext, StepSemantics, durable_execution

    def flaky(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            sys.exit(3)  # the runtime process exits mid-step
        return "done"

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        config = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
        return await context.step(flaky, name="flaky", config=config)

    engine = LocalEngine()
    engine.register("crasher", handler)
    result = await engine.invoke("crasher:1", b"{}")
    arn = str(result.durable_execution_arn)
    assert engine.get_execution(arn)["Status"] == "SUCCEEDED"
    events = engine.get_history(arn)["Events"]
    crash = events[2]["InvocationCompletedDetails"]["Error"]["Payload"]
    assert crash["ErrorType"] == "Runtime.ExitError"
    assert crash["ErrorMessage"].endswith("Runtime exited with error: exit status 3")
    assert len(engine.invocation_errors(arn)) == 1  # the SystemExit, kept for inspection
    assert engine.service.execution(arn).consecutive_failures == 0


async def test_one_scheduler_at_a_time() -> None:
    engine = LocalEngine()
    async with anyio.create_task_group() as tg:
        await tg.start(engine.scheduler.run)
        with pytest.raises(RuntimeError, match="already running"):
            await engine.run()
        tg.cancel_scope.cancel()


async def test_max_invocations_stops_a_looping_handler() -> None:
    class Looping:
        async def run(self, event: Any, lambda_context: Any, *, client: Any) -> Any:
            raise ConnectionError("again")

    engine = LocalEngine(max_invocations=2)
    engine.service.invocation_retry_delay = 1.0
    engine.register("loop", Looping())
    arn = str((await engine.invoke("loop:1", b"{}", invocation_type="Event")).durable_execution_arn)
    with pytest.raises(RuntimeError, match="max_invocations"):
        await engine.wait_until_done(arn)
    assert engine.service.execution(arn).invocations == 2
    engine.scheduler.reset_counts()
    with pytest.raises(RuntimeError, match="max_invocations"):  # two more, per reset
        await engine.wait_until_done(arn)
    assert engine.service.execution(arn).invocations == 4
    engine.scheduler.max_invocations = None
    engine.scheduler.reset_counts()
    await engine.wait_until_done(arn)  # five failed invocations in a row: FAILED
    assert engine.get_execution(arn)["Status"] == "FAILED"


async def test_sqlite_store_calls_leave_the_event_loop(tmp_path: Any, monkeypatch: Any) -> None:
    from adurable.local import SqliteStore

    engine = LocalEngine(store=SqliteStore(tmp_path / "db.sqlite"))
    engine.register("sleeper", apps.sleeper)
    threads: set[int] = set()
    write = engine.service.store.write

    def spy(rows: Any) -> None:
        import threading

        threads.add(threading.get_ident())
        write(rows)

    monkeypatch.setattr(engine.service.store, "write", spy)
    import threading

    loop_thread = threading.get_ident()
    arn = str(
        (
            await engine.invoke("sleeper:1", sleeper(5), invocation_type="Event")
        ).durable_execution_arn
    )
    threads.clear()
    await engine.wait_until_done(arn)
    assert engine.get_execution(arn)["Status"] == "SUCCEEDED"
    assert threads and loop_thread not in threads


# ---------------------------------------------------------------------------- clocks


async def test_virtual_clock_jumps_and_waits_only_for_news() -> None:
    clock = VirtualClock(100.0)
    wake = anyio.Event()
    await clock.sleep_until(250.0, wake)
    assert clock.now() == 250.0
    await clock.sleep_until(10.0, wake)  # the past: no jump back
    assert clock.now() == 250.0
    wake.set()
    await clock.sleep_until(None, wake)  # nothing scheduled: returns on news only
    assert clock.virtual and repr(clock).startswith("VirtualClock(250.0)")


async def test_real_clock_sleeps_until_then_or_until_woken() -> None:
    clock = RealClock()
    assert not clock.virtual
    assert abs(clock.now() - time.time()) < 1
    assert clock.now_datetime().tzinfo is dt.UTC
    wake = anyio.Event()
    before = time.monotonic()
    await clock.sleep_until(clock.now() + 0.01, wake)  # a tiny real sleep: unavoidable here
    assert time.monotonic() - before >= 0.005
    wake.set()
    with anyio.fail_after(5):
        await clock.sleep_until(clock.now() + 3600, wake)  # woken at once
        await clock.sleep_until(None, wake)
    await clock.sleep_until(clock.now() - 10, anyio.Event())  # the past: returns at once
    assert repr(clock) == "RealClock()"
