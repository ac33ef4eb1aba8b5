"""Stores and the service's state round trip through them (write-through, reload)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from adurable.local import LocalService, MemoryStore, SqliteStore, Store, VirtualClock
from adurable.local._persist import decode, encode
from adurable.local._store import Rows

START = 1_767_225_600.0


def rows() -> Rows:
    return Rows(
        meta={"seq": "3"},
        executions=[
            ("arn-b", 2, "f", "1", "b", "RUNNING", 2.0, "{}"),
            ("arn-a", 1, "f", "1", "a", "RUNNING", 1.0, "{}"),
        ],
        operations=[("arn-a", "x", 1, "{}", "{}"), ("arn-a", "w", 0, "{}", "{}")],
        events=[("arn-a", 2, "{}"), ("arn-a", 1, "{}")],
        timers=[("arn-a", "wait", "w", 10.0, 1)],
        callbacks=[("cb", "arn-a", "x")],
        timers_of={"arn-a"},
    )


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SqliteStore(tmp_path / "rows.db")


def test_rows_round_trip_in_order(store: Store) -> None:
    assert not store.load()
    store.write(rows())
    loaded = store.load()
    assert loaded.meta == {"seq": "3"}
    assert [e[0] for e in loaded.executions] == ["arn-a", "arn-b"]  # creation order
    assert [o[1] for o in loaded.operations] == ["w", "x"]  # position order
    assert [e[1] for e in loaded.events] == [1, 2]
    assert loaded.timers == [("arn-a", "wait", "w", 10.0, 1)]
    assert loaded.callbacks == [("cb", "arn-a", "x")]
    # timers are replaced per execution; other rows are upserted
    store.write(
        Rows(timers_of={"arn-a"}, executions=[("arn-a", 1, "f", "1", "a", "FAILED", 1.0, "{}")])
    )
    loaded = store.load()
    assert loaded.timers == []
    assert [e[5] for e in loaded.executions] == ["FAILED", "RUNNING"]
    store.close()


def test_sqlite_schema_version_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(RuntimeError, match="schema version 99"):
        SqliteStore(path)


def test_sqlite_write_is_atomic(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "atomic.db")
    bad = rows()
    bad.events.append(("arn-a", 3, None))  # type: ignore[arg-type]  # NOT NULL violation
    with pytest.raises(sqlite3.IntegrityError):
        store.write(bad)
    assert not store.load()
    assert repr(store).startswith("SqliteStore(")


def test_codec_keeps_datetimes() -> None:
    when = dt.datetime(2026, 1, 1, 0, 0, 0, 250_000, tzinfo=dt.UTC)
    value = {"EventTimestamp": when, "nested": [{"at": when}], "plain": {"x": 1}}
    assert decode(encode(value)) == value
    with pytest.raises(TypeError, match="cannot store"):
        encode({"x": object()})


# ---------------------------------------------------------------------------- service state


def upd(op_id: str, type_: str, action: str, **fields: Any) -> dict[str, Any]:
    return {"Id": op_id, "Type": type_, "Action": action, **fields}


def build(store: Store) -> tuple[LocalService, str, dict[str, Any]]:
    """A service with one execution holding every kind of state, mid-invocation or not."""
    service = LocalService(store=store, clock=VirtualClock())
    service.register_function("plain", durable=False)
    arn = service.start_execution('{"in": 1}', function_name="orders", qualifier="3")
    event = service.invocation_event(arn)
    token = event["CheckpointToken"]
    response = service.checkpoint(
        DurableExecutionArn=arn,
        CheckpointToken=token,
        ClientToken="c-1",
        Updates=[
            upd("s", "STEP", "START", SubType="Step", Name="flaky"),
            upd(
                "s",
                "STEP",
                "RETRY",
                SubType="Step",
                Name="flaky",
                Error={"ErrorType": "E", "ErrorMessage": "boom"},
                StepOptions={"NextAttemptDelaySeconds": 7},
            ),
            upd("w", "WAIT", "START", SubType="Wait", WaitOptions={"WaitSeconds": 30}),
            upd(
                "c",
                "CALLBACK",
                "START",
                SubType="Callback",
                CallbackOptions={"TimeoutSeconds": 100, "HeartbeatTimeoutSeconds": 20},
            ),
            upd(
                "i",
                "CHAINED_INVOKE",
                "START",
                SubType="ChainedInvoke",
                Payload="5",
                ChainedInvokeOptions={"FunctionName": "plain:2", "TenantId": "t"},
            ),
            upd("ctx", "CONTEXT", "START", SubType="RunInChildContext"),
        ],
    )
    service.finish_invocation(arn, {"Status": "PENDING"})
    service.clock.advance(7)  # type: ignore[attr-defined]
    service.fire_due_timers()  # the retry becomes READY: news for the next invocation
    return service, arn, {"token": token, "response": response}


def state(service: LocalService, arn: str) -> Any:
    view = service.execution(arn)
    fields = {k: v for k, v in vars(view).items() if k != "operations"}
    return (
        fields,
        service.operations(arn),
        service.history(arn),
        [service.next_timer(arn, callbacks=c, deadline=d) for c in (0, 1) for d in (0, 1)],
        service.needs_invocation(arn),
        service.pending_plain_invokes(),
    )


def test_service_state_survives_a_reload(store: Store, tmp_path: Path) -> None:
    service, arn, first = build(store)
    before = state(service, arn)
    if isinstance(store, SqliteStore):
        store = SqliteStore(store.path)  # a new connection, as a restarted process has
    again = LocalService(store=store, clock=VirtualClock())
    assert again.clock.now() == START + 7  # the virtual clock's time is part of the state
    assert state(again, arn) == before
    assert again.find_execution("orders", "3", service.execution(arn).execution_name) == arn
    # the ClientToken replay cache survived: the very same answer comes back
    replay = again.checkpoint(
        DurableExecutionArn=arn, CheckpointToken=first["token"], ClientToken="c-1"
    )
    assert replay == first["response"]
    # callbacks are addressable and timers keep running
    [callback] = [op for op in again.operations(arn) if op.id == "c"]
    assert callback.callback_details is not None
    again.send_callback_heartbeat(str(callback.callback_details.callback_id))
    assert again.next_timer(arn) == START + 7 + 20
    event = again.invocation_event(arn)
    assert event["UpdatedOperationIds"] == ["s"]
    assert event["CheckpointToken"] != first["token"]
    again.register_function("plain", durable=False)
    again.complete_chained_invoke(arn, "i", result="10")
    assert again.pending_plain_invokes() == []


def test_every_change_is_written_before_the_call_returns(store: Store) -> None:
    service, arn, _ = build(store)
    written = store.load()
    assert {row[0] for row in written.executions} == {arn}
    assert len(written.events) == len(service.history(arn))
    assert len(written.operations) == len(service.operations(arn))
    assert {row[2] for row in written.timers} == {"", "w", "c"}  # step retry fired already
    assert [row[2] for row in written.callbacks] == ["c"]


def test_rejected_calls_write_nothing(store: Store) -> None:
    service, arn, _ = build(store)
    before = store.load()
    event = service.invocation_event(arn)
    after_event = store.load()
    assert after_event != before  # a new invocation is a change (token, counters)
    with pytest.raises(Exception, match="Invalid parent"):
        service.checkpoint(
            DurableExecutionArn=arn,
            CheckpointToken=event["CheckpointToken"],
            Updates=[upd("x", "STEP", "START", ParentId="nope")],
        )
    assert store.load() == after_event
