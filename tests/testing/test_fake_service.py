"""FakeService: the service-side rules of PROTOCOL §2 to §4, §9.2 and §14, via its API."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from adurable._wire import (
    CheckpointResponse,
    GetStateResponse,
    InvocationInput,
    OperationStatus,
    OperationType,
)
from adurable.testing import FakeService, RecordedCall, ServiceError, VirtualClock

START = 1_767_225_600.0
T0 = dt.datetime.fromtimestamp(START, tz=dt.UTC)


# ---------------------------------------------------------------------------- helpers


def upd(op_id: str, type_: str, action: str, **fields: Any) -> dict[str, Any]:
    """One OperationUpdate as the SDK sends it (default SubType per type)."""
    sub = {
        "STEP": "Step",
        "WAIT": "Wait",
        "CALLBACK": "Callback",
        "CONTEXT": "RunInChildContext",
        "CHAINED_INVOKE": "ChainedInvoke",
    }.get(type_)
    base: dict[str, Any] = {"Id": op_id, "Type": type_, "Action": action}
    if sub is not None:
        base["SubType"] = sub
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def step(op_id: str, action: str, **fields: Any) -> dict[str, Any]:
    return upd(op_id, "STEP", action, **fields)


def retry(op_id: str, delay: int, **fields: Any) -> dict[str, Any]:
    fields.setdefault("Error", {"ErrorType": "ValueError", "ErrorMessage": "boom"})
    return step(op_id, "RETRY", StepOptions={"NextAttemptDelaySeconds": delay}, **fields)


def wait(op_id: str, seconds: int, **fields: Any) -> dict[str, Any]:
    return upd(op_id, "WAIT", "START", WaitOptions={"WaitSeconds": seconds}, **fields)


def callback(op_id: str, timeout: int = 0, heartbeat: int = 0, **fields: Any) -> dict[str, Any]:
    options = {"TimeoutSeconds": timeout, "HeartbeatTimeoutSeconds": heartbeat}
    return upd(op_id, "CALLBACK", "START", CallbackOptions=options, **fields)


def context(op_id: str, action: str, **fields: Any) -> dict[str, Any]:
    return upd(op_id, "CONTEXT", action, **fields)


class Session:
    """One invocation's view: chains the checkpoint token like the SDK does."""

    def __init__(self, service: FakeService, arn: str) -> None:
        self.service = service
        self.arn = arn
        self.event = service.invocation_event(arn)
        self.token: str | None = self.event["CheckpointToken"]

    def checkpoint(self, *updates: dict[str, Any], **kw: Any) -> dict[str, Any]:
        assert self.token is not None
        response = self.service.checkpoint(
            DurableExecutionArn=self.arn, CheckpointToken=self.token, Updates=list(updates), **kw
        )
        self.token = response.get("CheckpointToken")
        return response

    def get_state(self, marker: str | None = None, **kw: Any) -> dict[str, Any]:
        assert self.token is not None
        return self.service.get_state(
            DurableExecutionArn=self.arn, CheckpointToken=self.token, Marker=marker, **kw
        )

    def op(self, op_id: str) -> Any:
        return self.service.execution(self.arn).operations[op_id]


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def session(service: FakeService) -> Session:
    return Session(service, service.start_execution('{"x": 1}'))


def ids(response: dict[str, Any]) -> list[str]:
    return [op["Id"] for op in response["NewExecutionState"]["Operations"]]


def rejected(session: Session, *updates: dict[str, Any]) -> ServiceError:
    before = dict(session.service.execution(session.arn).operations)
    token = session.token
    with pytest.raises(ServiceError) as info:
        session.checkpoint(*updates)
    err = info.value
    assert (err.code, err.status) == ("InvalidParameterValueException", 400)
    # a rejected call changes nothing and does not consume the token
    assert session.service.execution(session.arn).operations == before
    assert session.token == token
    return err


# ---------------------------------------------------------------------------- clock


def test_virtual_clock_moves_only_forward() -> None:
    clock = VirtualClock()
    assert clock.now() == START
    assert clock.now_datetime() == T0
    clock.advance(1.5)
    assert clock.now() == START + 1.5
    clock.advance_to(START)  # the past: ignored
    assert clock.now() == START + 1.5
    clock.advance_to(START + 10)
    assert clock.now_datetime() == T0 + dt.timedelta(seconds=10)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    assert VirtualClock(5.0).now() == 5.0


# ---------------------------------------------------------------------------- executions


def test_start_execution_arn_and_execution_op(service: FakeService) -> None:
    arn = service.start_execution('{"a": 1}', function_name="orders", qualifier="7")
    pattern = (
        r"arn:aws:lambda:us-east-1:123456789012:function:orders:7"
        r"/durable-execution/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+"
    )
    assert re.fullmatch(pattern, arn)
    [op] = service.operations(arn)
    assert op.id == arn.split("/")[-1]
    assert op.type is OperationType.EXECUTION
    assert op.status is OperationStatus.STARTED
    assert op.execution_details is not None
    assert op.execution_details.input_payload == '{"a": 1}'
    assert op.start_timestamp == T0
    ex = service.execution(arn)
    assert (ex.status, ex.result, ex.error, ex.invocations) == ("RUNNING", None, None, 0)


def test_execution_name_is_an_idempotency_key(service: FakeService) -> None:
    arn = service.start_execution(execution_name="order-7")
    assert "/durable-execution/order-7/" in arn
    assert service.start_execution(execution_name="order-7") == arn
    assert service.start_execution(execution_name="order-8") != arn
    with pytest.raises(ValueError, match="execution_name"):
        service.start_execution(execution_name="bad name")
    with pytest.raises(ValueError, match="qualifier"):
        service.start_execution(qualifier="prod")


def test_unknown_arn(service: FakeService) -> None:
    with pytest.raises(KeyError, match="no execution"):
        service.execution("arn:nope")
    with pytest.raises(ServiceError, match="Unknown durable execution"):
        service.checkpoint(DurableExecutionArn="arn:nope", CheckpointToken="abc")


def test_invocation_event_envelope(service: FakeService) -> None:
    arn = service.start_execution('{"a": 1}')
    event = service.invocation_event(arn)
    assert set(event) == {
        "DurableExecutionArn",
        "CheckpointToken",
        "InitialExecutionState",
        "UpdatedOperationIds",
    }
    assert event["DurableExecutionArn"] == arn
    assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", event["CheckpointToken"])
    assert event["InitialExecutionState"]["NextMarker"] == ""
    assert event["UpdatedOperationIds"] == []
    [op] = event["InitialExecutionState"]["Operations"]
    assert op["StartTimestamp"] == int(START * 1000)  # epoch milliseconds
    assert isinstance(op["StartTimestamp"], int)
    assert json.loads(json.dumps(event)) == event  # plain JSON
    parsed = InvocationInput.parse_event(event)
    assert parsed.initial_execution_state.operations[0].start_timestamp == T0
    assert service.execution(arn).invocations == 1


def test_event_timestamps_are_milliseconds_response_timestamps_datetimes(
    session: Session,
) -> None:
    session.service.clock.advance(0.25)
    response = session.checkpoint(wait("w", 5))
    [op] = response["NewExecutionState"]["Operations"]
    assert op["StartTimestamp"] == T0 + dt.timedelta(seconds=0.25)
    assert op["WaitDetails"]["ScheduledEndTimestamp"] == T0 + dt.timedelta(seconds=5.25)
    CheckpointResponse.model_validate(response)  # parses as the SDK would
    session.service.finish_invocation(session.arn, {"Status": "PENDING"})
    event = session.service.invocation_event(session.arn)
    op = event["InitialExecutionState"]["Operations"][1]
    assert op["StartTimestamp"] == int(START * 1000) + 250
    assert op["WaitDetails"]["ScheduledEndTimestamp"] == int(START * 1000) + 5250


# ---------------------------------------------------------------------------- tokens


def test_token_chaining(session: Session) -> None:
    first = session.token
    response = session.checkpoint(step("s", "START"))
    assert response["CheckpointToken"] not in (None, first)
    # the consumed token is stale now
    with pytest.raises(ServiceError) as info:
        session.service.checkpoint(DurableExecutionArn=session.arn, CheckpointToken=first or "")
    err = info.value
    assert err.code == "InvalidParameterValueException"
    assert err.status == 400
    assert err.message.startswith("Invalid checkpoint token")
    assert err.response == {
        "Error": {"Code": "InvalidParameterValueException", "Message": err.message},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    # the new one works, and an empty checkpoint is legal
    assert session.checkpoint()["NewExecutionState"] == {"Operations": []}


@pytest.mark.parametrize("token", ["", "bm9wZQ==", "garbage"])
def test_unknown_tokens_are_invalid(session: Session, token: str) -> None:
    with pytest.raises(ServiceError, match="Invalid checkpoint token"):
        session.service.checkpoint(DurableExecutionArn=session.arn, CheckpointToken=token)
    with pytest.raises(ServiceError, match="Invalid checkpoint token"):
        session.service.get_state(DurableExecutionArn=session.arn, CheckpointToken=token)


def test_new_invocation_makes_older_tokens_stale(service: FakeService) -> None:
    arn = service.start_execution()
    old = Session(service, arn)
    new = Session(service, arn)
    with pytest.raises(ServiceError, match="Invalid checkpoint token"):
        old.checkpoint()
    with pytest.raises(ServiceError, match="Invalid checkpoint token"):
        old.get_state()
    new.checkpoint()


def test_get_state_does_not_consume_the_token(session: Session) -> None:
    session.get_state()
    session.get_state()
    session.checkpoint()


def test_finished_invocation_token_is_dead(session: Session) -> None:
    session.checkpoint(wait("w", 5))
    session.service.finish_invocation(session.arn, {"Status": "PENDING"})
    with pytest.raises(ServiceError, match="Invalid checkpoint token"):
        session.checkpoint()


# ---------------------------------------------------------------------------- ClientToken


def test_client_token_replays_cached_response(session: Session) -> None:
    token = session.token
    first = session.checkpoint(step("s", "START"), ClientToken="req-1")
    history = session.service.history(session.arn)
    again = session.service.checkpoint(
        DurableExecutionArn=session.arn,
        CheckpointToken=token or "",
        Updates=[step("s", "START")],
        ClientToken="req-1",
    )
    assert again == first
    assert session.service.history(session.arn) == history  # applied once
    assert len(session.service.calls) == 2
    # the same ClientToken with the fresh token is a new request
    session.checkpoint(step("s", "SUCCEED", Payload="1"), ClientToken="req-1")
    assert session.op("s").status is OperationStatus.SUCCEEDED
    # without the ClientToken a re-send is just a stale token
    with pytest.raises(ServiceError, match="Invalid checkpoint token"):
        session.service.checkpoint(DurableExecutionArn=session.arn, CheckpointToken=token or "")


def test_client_token_format(session: Session) -> None:
    with pytest.raises(ServiceError, match="ClientToken"):
        session.checkpoint(ClientToken="has space")


# ---------------------------------------------------------------------------- §3.7 validation


def test_execution_update_must_be_single(session: Session) -> None:
    err = rejected(
        session,
        upd("e1", "EXECUTION", "SUCCEED", Payload="1"),
        upd("e2", "EXECUTION", "SUCCEED", Payload="2"),
    )
    assert "At most one EXECUTION" in err.message


def test_execution_update_must_be_last(session: Session) -> None:
    err = rejected(session, upd("e1", "EXECUTION", "SUCCEED", Payload="1"), step("s", "START"))
    assert "must be the last" in err.message


@pytest.mark.parametrize(
    "updates",
    [
        pytest.param([wait("w", 1), wait("w", 1)], id="wait-twice"),
        pytest.param([callback("c"), callback("c")], id="callback-twice"),
        pytest.param([step("s", "START"), step("s", "START")], id="step-start-twice"),
        pytest.param(
            [step("s", "START"), step("s", "SUCCEED", Payload="1"), step("s", "FAIL")],
            id="step-three-updates",
        ),
        pytest.param(
            [context("c", "START"), context("c", "SUCCEED"), context("c", "FAIL")],
            id="context-three-updates",
        ),
    ],
)
def test_duplicate_ids_in_one_call(session: Session, updates: list[dict[str, Any]]) -> None:
    err = rejected(session, *updates)
    assert "duplicate operation id" in err.message


def test_step_non_start_then_start_is_a_duplicate(session: Session) -> None:
    session.checkpoint(step("s", "START"))
    err = rejected(session, step("s", "SUCCEED", Payload="1"), step("s", "FAIL"))
    assert "duplicate" in err.message


@pytest.mark.parametrize(
    "updates",
    [
        pytest.param([step("s", "START"), step("s", "SUCCEED", Payload="1")], id="step-succeed"),
        pytest.param([step("s", "START"), step("s", "FAIL", Error={})], id="step-fail"),
        pytest.param([step("s", "START"), retry("s", 1)], id="step-retry"),
        pytest.param([context("c", "START"), context("c", "SUCCEED")], id="context-succeed"),
        pytest.param([context("c", "START"), context("c", "FAIL")], id="context-fail"),
    ],
)
def test_start_plus_one_more_is_allowed(session: Session, updates: list[dict[str, Any]]) -> None:
    session.checkpoint(*updates)


def test_parent_must_be_a_known_context(session: Session) -> None:
    err = rejected(session, step("s", "START", ParentId="nope"))
    assert "Invalid parent operation id" in err.message
    session.checkpoint(step("plain", "START"))
    err = rejected(session, step("s", "START", ParentId="plain"))  # a STEP is not a parent
    assert "Invalid parent operation id" in err.message
    # a CONTEXT started earlier in the same call works, and so does an existing one
    session.checkpoint(context("ctx", "START"), step("s1", "START", ParentId="ctx"))
    session.checkpoint(step("s2", "START", ParentId="ctx"))
    assert session.op("s2").parent_id == "ctx"


def test_parent_started_later_in_the_call_is_invalid(session: Session) -> None:
    rejected(session, step("s", "START", ParentId="ctx"), context("ctx", "START"))


@pytest.mark.parametrize(
    ("change", "label"),
    [
        ({"Type": "CONTEXT"}, "Type"),
        ({"SubType": "WaitForCondition"}, "SubType"),
        ({"Name": "other"}, "Name"),
        ({"Name": None}, "Name"),
        ({"ParentId": "ctx"}, "ParentId"),
    ],
)
def test_inconsistent_metadata(session: Session, change: dict[str, Any], label: str) -> None:
    session.checkpoint(context("ctx", "START"), step("s", "START", Name="charge"))
    second = {**step("s", "SUCCEED", Name="charge", Payload="1"), **change}
    second = {k: v for k, v in second.items() if v is not None}
    err = rejected(session, second)
    assert f"Inconsistent operation {label}" in err.message


def test_update_reusing_the_execution_op_id_is_inconsistent(session: Session) -> None:
    execution_id = session.arn.split("/")[-1]
    err = rejected(session, step(execution_id, "START"))
    assert "Inconsistent operation Type" in err.message


@pytest.mark.parametrize(
    ("type_", "action"),
    [
        ("STEP", "CANCEL"),
        ("CONTEXT", "RETRY"),
        ("CONTEXT", "CANCEL"),
        ("WAIT", "SUCCEED"),
        ("WAIT", "FAIL"),
        ("WAIT", "RETRY"),
        ("CALLBACK", "SUCCEED"),
        ("CALLBACK", "FAIL"),
        ("CALLBACK", "CANCEL"),
        ("CHAINED_INVOKE", "SUCCEED"),
        ("CHAINED_INVOKE", "FAIL"),
        ("EXECUTION", "START"),
        ("EXECUTION", "RETRY"),
    ],
)
def test_action_invalid_for_type(session: Session, type_: str, action: str) -> None:
    err = rejected(session, upd("x", type_, action))
    assert "invalid action" in err.message


@pytest.mark.parametrize(
    ("setup", "update", "fragment"),
    [
        ([step("s", "START")], step("s", "START"), "START needs a new or READY step"),
        ([], step("s", "SUCCEED", Payload="1"), "never started"),
        ([], retry("s", 1), "never started"),
        ([step("s", "START"), step("s", "SUCCEED")], step("s", "FAIL"), "needs a STARTED"),
        ([step("s", "START"), retry("s", 5)], step("s", "START"), "this one is PENDING"),
        ([step("s", "START"), retry("s", 5)], step("s", "SUCCEED"), "this one is PENDING"),
        ([step("s", "START")], step("s", "RETRY"), "requires StepOptions"),
        ([step("s", "START")], retry("s", 1, Payload="1"), "both Error and Payload"),
        ([step("s", "START")], retry("s", 0), "NextAttemptDelaySeconds"),
        ([step("s", "START")], step("s", "SUCCEED", Error={}), "must not carry an Error"),
        ([step("s", "START")], step("s", "FAIL", Payload="1"), "must not carry a Payload"),
        ([wait("w", 5)], wait("w", 5), "already exists"),
        ([], upd("w", "WAIT", "START"), "requires WaitOptions"),
        ([], wait("w", 0), "WaitSeconds"),
        ([], upd("w", "WAIT", "CANCEL"), "CANCEL needs a STARTED wait"),
        ([callback("c")], callback("c"), "already exists"),
        ([], callback("c", timeout=-1), "TimeoutSeconds"),
        ([], upd("i", "CHAINED_INVOKE", "START"), "requires ChainedInvokeOptions"),
        ([context("c", "START")], context("c", "START"), "already exists"),
        ([context("c", "START"), context("c", "SUCCEED")], context("c", "FAIL"), "STARTED or new"),
        ([], context("c", "SUCCEED", Error={}), "must not carry an Error"),
        ([], context("c", "FAIL", Payload="x"), "must not carry a Payload"),
        ([], upd("e", "EXECUTION", "SUCCEED", Error={}), "must not carry an Error"),
        ([], upd("e", "EXECUTION", "FAIL", Payload="x"), "must not carry a Payload"),
    ],
)
def test_invalid_transitions(
    session: Session, setup: list[dict[str, Any]], update: dict[str, Any], fragment: str
) -> None:
    if setup:
        session.checkpoint(*setup)
    err = rejected(session, update)
    assert fragment in err.message


def test_wait_cancel_on_a_finished_wait(service: FakeService, session: Session) -> None:
    session.checkpoint(wait("w", 1))
    service.clock.advance(1)
    session.checkpoint()  # the service completes the due wait here
    err = rejected(session, upd("w", "WAIT", "CANCEL"))
    assert "CANCEL needs a STARTED wait (SUCCEEDED)" in err.message


def test_error_object_size_limit(session: Session) -> None:
    big = {"ErrorType": "E", "ErrorMessage": "x" * 32_768}
    err = rejected(session, step("s", "START"), step("s", "FAIL", Error=big))
    assert "32768" in err.message
    fits = {"ErrorMessage": "x" * (32_768 - len('{"ErrorMessage": ""}'))}
    session.checkpoint(step("s", "START"), step("s", "FAIL", Error=fits))


@pytest.mark.parametrize(
    ("update", "fragment"),
    [
        ({"Id": "s", "Action": "START"}, "malformed"),
        ({"Id": "s", "Type": "NOPE", "Action": "START"}, "malformed"),
        (step("bad id", "START"), "Id must match"),
        (step("s", "START", Name="\u00e9"), "Name must be"),
        (step("s", "START", SubType="x" * 33), "SubType must match"),
        (step("s", "START", ParentId="a/b"), "ParentId must match"),
    ],
)
def test_malformed_updates(session: Session, update: dict[str, Any], fragment: str) -> None:
    err = rejected(session, update)
    assert fragment in err.message


def test_rejection_is_atomic(session: Session) -> None:
    rejected(session, step("ok", "START"), wait("w", 5), upd("w2", "WAIT", "SUCCEED"))
    assert list(session.service.execution(session.arn).operations) == [session.arn.split("/")[-1]]
    assert [e["EventType"] for e in session.service.history(session.arn)] == ["ExecutionStarted"]
    assert session.service.next_timer(session.arn) is None


def test_chained_invoke_limits(session: Session) -> None:
    options = {"FunctionName": "target"}
    big = "x" * (1024 * 1024 + 1)
    err = rejected(
        session, upd("i", "CHAINED_INVOKE", "START", Payload=big, ChainedInvokeOptions=options)
    )
    assert "1 MiB" in err.message
    bad_tenant = {"FunctionName": "target", "TenantId": "a\tb"}
    rejected(session, upd("i", "CHAINED_INVOKE", "START", ChainedInvokeOptions=bad_tenant))


# ---------------------------------------------------------------------------- §4.7 state machines


def test_step_start_succeed(service: FakeService, session: Session) -> None:
    service.clock.advance(3)
    response = session.checkpoint(
        step("s", "START", Name="charge"), step("s", "SUCCEED", Name="charge", Payload='"ok"')
    )
    [wire] = response["NewExecutionState"]["Operations"]
    assert wire["Status"] == "SUCCEEDED"
    assert wire["StepDetails"] == {"Attempt": 1, "Result": '"ok"'}
    assert wire["EndTimestamp"] == T0 + dt.timedelta(seconds=3)
    op = session.op("s")
    assert op.name == "charge"
    assert op.sub_type == "Step"


def test_step_start_keeps_attempt_zero(session: Session) -> None:
    session.checkpoint(step("s", "START"))
    assert session.op("s").status is OperationStatus.STARTED
    assert session.op("s").step_details.attempt == 0
    session.checkpoint(step("s", "SUCCEED"))  # STARTED → SUCCEEDED in a later call (at most once)
    assert session.op("s").step_details.attempt == 1
    assert session.op("s").step_details.result is None


def test_step_retry_cycle_counts_attempts(service: FakeService, session: Session) -> None:
    error = {"ErrorType": "ValueError", "ErrorMessage": "boom 1"}
    session.checkpoint(step("s", "START"), retry("s", 2, Error=error))
    op = session.op("s")
    assert op.status is OperationStatus.PENDING
    assert op.step_details.attempt == 1
    assert op.step_details.next_attempt_timestamp == T0 + dt.timedelta(seconds=2)
    assert op.step_details.error.error_message == "boom 1"
    assert op.end_timestamp is None
    assert service.next_timer(session.arn) == START + 2

    service.clock.advance(1.999)
    service.fire_due_timers()
    assert session.op("s").status is OperationStatus.PENDING
    service.clock.advance(0.001)
    service.fire_due_timers()
    assert session.op("s").status is OperationStatus.READY
    assert service.has_ready_work(session.arn)

    session.checkpoint(step("s", "START"))
    assert session.op("s").status is OperationStatus.STARTED
    assert session.op("s").step_details.attempt == 1  # START keeps it
    session.checkpoint(retry("s", 1))
    assert session.op("s").step_details.attempt == 2
    service.clock.advance(1)
    service.fire_due_timers()
    session.checkpoint(step("s", "START"), step("s", "FAIL", Error={"ErrorType": "E"}))
    op = session.op("s")
    assert op.status is OperationStatus.FAILED
    assert op.step_details.attempt == 3
    assert op.step_details.error.error_type == "E"
    assert op.step_details.next_attempt_timestamp is None


def test_ready_step_may_complete_without_start(service: FakeService, session: Session) -> None:
    session.checkpoint(step("s", "START"), retry("s", 1))
    service.clock.advance(1)
    service.fire_due_timers()
    session.checkpoint(step("s", "SUCCEED", Payload="2"))
    assert session.op("s").step_details.attempt == 2


def test_wait_for_condition_retry_keeps_state(service: FakeService, session: Session) -> None:
    cond = {"SubType": "WaitForCondition"}
    session.checkpoint(
        step("s", "START", **cond),
        step("s", "RETRY", Payload='{"n": 1}', StepOptions={"NextAttemptDelaySeconds": 5}, **cond),
    )
    op = session.op("s")
    assert (op.status, op.step_details.result, op.step_details.error) == (
        OperationStatus.PENDING,
        '{"n": 1}',
        None,
    )
    service.clock.advance(5)
    session.checkpoint(step("s", "START", **cond))
    assert session.op("s").step_details.result == '{"n": 1}'  # READY → STARTED keeps the state


def test_wait_completes_on_time(service: FakeService, session: Session) -> None:
    session.checkpoint(wait("w", 10, Name="nap"))
    op = session.op("w")
    assert op.status is OperationStatus.STARTED
    assert op.wait_details.scheduled_end_timestamp == T0 + dt.timedelta(seconds=10)
    assert service.next_timer(session.arn) == START + 10
    service.finish_invocation(session.arn, {"Status": "PENDING"})
    assert not service.has_ready_work(session.arn)
    service.clock.advance(10)
    assert service.has_ready_work(session.arn)
    op = session.op("w")
    assert op.status is OperationStatus.SUCCEEDED
    assert op.end_timestamp == T0 + dt.timedelta(seconds=10)
    assert service.next_timer(session.arn) is None
    event = service.invocation_event(session.arn)
    assert event["UpdatedOperationIds"] == ["w"]
    assert event["InitialExecutionState"]["Operations"][1]["Status"] == "SUCCEEDED"
    assert not service.has_ready_work(session.arn)


def test_wait_cancel(service: FakeService, session: Session) -> None:
    session.checkpoint(wait("w", 10))
    session.checkpoint(upd("w", "WAIT", "CANCEL"))
    assert session.op("w").status is OperationStatus.CANCELLED
    assert service.next_timer(session.arn) is None
    assert service.history(session.arn)[-1]["EventType"] == "WaitCancelled"


def test_timers_fire_in_due_order_with_their_own_timestamps(
    service: FakeService, session: Session
) -> None:
    session.checkpoint(wait("late", 20), wait("early", 5), step("s", "START"), retry("s", 7))
    service.clock.advance(100)
    service.fire_due_timers()
    assert session.op("early").end_timestamp == T0 + dt.timedelta(seconds=5)
    assert session.op("late").end_timestamp == T0 + dt.timedelta(seconds=20)
    assert session.op("s").status is OperationStatus.READY
    events = [e["EventType"] for e in service.history(session.arn)]
    assert events[-2:] == ["WaitSucceeded", "WaitSucceeded"]
    assert [e.get("Id") for e in service.history(session.arn)][-2:] == ["early", "late"]


def test_callback_start_assigns_an_id(service: FakeService, session: Session) -> None:
    response = session.checkpoint(callback("c", Name="approval"))
    [wire] = response["NewExecutionState"]["Operations"]
    assert wire["Status"] == "STARTED"
    callback_id = wire["CallbackDetails"]["CallbackId"]
    assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", callback_id)
    base64.b64decode(callback_id, validate=True)
    assert service.next_timer(session.arn) is None  # no timeouts configured


def test_chained_invoke_start_and_completion(service: FakeService, session: Session) -> None:
    options = {"FunctionName": "target-fn", "TenantId": "t1"}
    session.checkpoint(
        upd("i", "CHAINED_INVOKE", "START", Payload='{"x": 1}', ChainedInvokeOptions=options)
    )
    assert session.op("i").status is OperationStatus.STARTED
    service.complete_chained_invoke(session.arn, "i", result='{"echo": 1}')
    op = session.op("i")
    assert op.status is OperationStatus.SUCCEEDED
    assert op.chained_invoke_details.result == '{"echo": 1}'
    assert service.has_ready_work(session.arn)
    assert ids(session.checkpoint()) == ["i"]
    with pytest.raises(ServiceError, match="No started chained invoke"):
        service.complete_chained_invoke(session.arn, "i", result="again")
    started = [e for e in service.history(session.arn) if e["EventType"] == "ChainedInvokeStarted"]
    assert started[0]["ChainedInvokeStartedDetails"] == {
        "FunctionName": "target-fn",
        "TenantId": "t1",
        "Input": {"Payload": '{"x": 1}', "Truncated": False},
    }


@pytest.mark.parametrize(
    ("kwargs", "status", "event"),
    [
        ({"error": {"ErrorType": "RuntimeError"}}, "FAILED", "ChainedInvokeFailed"),
        ({"status": "TIMED_OUT", "error": {}}, "TIMED_OUT", "ChainedInvokeTimedOut"),
        ({"status": "STOPPED"}, "STOPPED", "ChainedInvokeStopped"),
    ],
)
def test_chained_invoke_unhappy_endings(
    service: FakeService, session: Session, kwargs: dict[str, Any], status: str, event: str
) -> None:
    options = {"FunctionName": "target-fn"}
    session.checkpoint(upd("i", "CHAINED_INVOKE", "START", ChainedInvokeOptions=options))
    service.complete_chained_invoke(session.arn, "i", **kwargs)
    assert session.op("i").status == status
    assert service.history(session.arn)[-1]["EventType"] == event


def test_chained_invoke_resolution_hook_can_fail_immediately() -> None:
    from adurable._wire import ChainedInvokeOptions, ErrorObject, OperationUpdate

    class Strict(FakeService):
        def _resolve_chained_invoke(
            self, arn: str, update: OperationUpdate, options: ChainedInvokeOptions
        ) -> ErrorObject | None:
            return ErrorObject(error_type="ResourceNotFound", error_message=options.function_name)

    service = Strict()
    s = Session(service, service.start_execution())
    response = s.checkpoint(
        upd("i", "CHAINED_INVOKE", "START", ChainedInvokeOptions={"FunctionName": "ghost"})
    )
    [wire] = response["NewExecutionState"]["Operations"]
    assert wire["Status"] == "FAILED"
    assert wire["ChainedInvokeDetails"]["Error"]["ErrorMessage"] == "ghost"


def test_context_lifecycle(session: Session) -> None:
    session.checkpoint(context("c", "START", Name="kid"))
    assert session.op("c").status is OperationStatus.STARTED
    session.checkpoint(
        context("c", "SUCCEED", Name="kid", Payload="", ContextOptions={"ReplayChildren": True})
    )
    op = session.op("c")
    assert op.status is OperationStatus.SUCCEEDED
    assert op.context_details.replay_children is True
    assert op.context_details.result == ""
    assert op.end_timestamp is not None

    session.checkpoint(context("f", "START"), context("f", "FAIL", Error={"ErrorMessage": "no"}))
    op = session.op("f")
    assert op.status is OperationStatus.FAILED
    assert op.context_details.error.error_message == "no"
    assert op.context_details.replay_children is False


def test_context_succeed_without_start(session: Session) -> None:
    session.checkpoint(context("c", "SUCCEED", Payload='"v"'))
    op = session.op("c")
    assert op.status is OperationStatus.SUCCEEDED
    assert op.start_timestamp == T0
    assert [e["EventType"] for e in session.service.history(session.arn)][-1] == "ContextSucceeded"


@pytest.mark.parametrize(
    ("update", "status", "result", "error"),
    [
        (
            upd("execution-result-1", "EXECUTION", "SUCCEED", Payload='"big"'),
            "SUCCEEDED",
            '"big"',
            None,
        ),
        (
            upd("execution-result-1", "EXECUTION", "FAIL", Error={"ErrorType": "E"}),
            "FAILED",
            None,
            {"ErrorType": "E"},
        ),
    ],
)
def test_execution_update_ends_the_execution(
    service: FakeService,
    session: Session,
    update: dict[str, Any],
    status: str,
    result: str | None,
    error: dict[str, Any] | None,
) -> None:
    session.checkpoint(wait("w", 5))
    token = session.token
    response = session.service.checkpoint(
        DurableExecutionArn=session.arn,
        CheckpointToken=token or "",
        Updates=[step("s", "START"), step("s", "SUCCEED"), update],
    )
    assert "CheckpointToken" not in response
    execution_id = session.arn.split("/")[-1]
    assert ids(response) == ["s", execution_id]
    assert response["NewExecutionState"]["Operations"][1]["Status"] == status
    ex = service.execution(session.arn)
    assert (ex.status, ex.result, ex.error) == (status, result, error)
    assert service.next_timer(session.arn) is None  # timers die with the execution
    with pytest.raises(ServiceError, match="Invalid checkpoint token"):
        service.checkpoint(DurableExecutionArn=session.arn, CheckpointToken=token or "")
    with pytest.raises(RuntimeError, match="nothing left to invoke"):
        service.invocation_event(session.arn)
    # the handler's answer afterwards does not overwrite the recorded outcome
    output = (
        {"Status": "SUCCEEDED", "Result": ""} if status == "SUCCEEDED" else {"Status": "FAILED"}
    )
    service.finish_invocation(session.arn, output)
    assert (ex.status, ex.result, ex.error) == (status, result, error)


# ---------------------------------------------------------------------------- delta and paging


def test_delta_holds_touched_and_service_changed_operations(
    service: FakeService, session: Session
) -> None:
    first = session.checkpoint(step("a", "START"), step("a", "SUCCEED", Payload="1"))
    assert ids(first) == ["a"]
    session.checkpoint(wait("w", 2))
    service.finish_invocation(session.arn, {"Status": "PENDING"})
    service.clock.advance(2)
    second = Session(service, session.arn)
    assert second.event["UpdatedOperationIds"] == ["w"]
    # Appendix A.2: the completed wait is also in the first response of the next invocation
    response = second.checkpoint(step("b", "START"))
    assert ids(response) == ["w", "b"]
    assert response["NewExecutionState"]["Operations"][0]["Status"] == "SUCCEEDED"
    assert ids(second.checkpoint()) == []


def test_service_changes_during_an_invocation_reach_the_next_response(
    service: FakeService, session: Session
) -> None:
    response = session.checkpoint(callback("c"))
    callback_id = response["NewExecutionState"]["Operations"][0]["CallbackDetails"]["CallbackId"]
    service.send_callback_success(callback_id, b'"yes"')
    assert ids(session.checkpoint()) == ["c"]
    # ... and still make the execution ready for another invocation
    assert service.has_ready_work(session.arn)


def test_checkpoint_fires_due_timers(service: FakeService, session: Session) -> None:
    session.checkpoint(wait("w", 3))
    service.clock.advance(3)
    response = session.checkpoint()
    assert ids(response) == ["w"]
    assert response["NewExecutionState"]["Operations"][0]["Status"] == "SUCCEEDED"


def test_initial_state_paging() -> None:
    service = FakeService(page_size=3)
    arn = service.start_execution()
    s = Session(service, arn)
    s.checkpoint(*[step(f"s{i}", "START") for i in range(7)])
    event = service.invocation_event(arn)
    state = event["InitialExecutionState"]
    assert len(state["Operations"]) == 3
    assert state["NextMarker"] == "ops:3"
    token = event["CheckpointToken"]
    seen = [op["Id"] for op in state["Operations"]]
    marker = state["NextMarker"]
    while marker:
        page = service.get_state(
            DurableExecutionArn=arn, CheckpointToken=token, Marker=marker, MaxItems=1000
        )
        GetStateResponse.model_validate(page)
        assert len(page["Operations"]) <= 3
        seen += [op["Id"] for op in page["Operations"]]
        marker = page.get("NextMarker")
    assert seen == [arn.split("/")[-1]] + [f"s{i}" for i in range(7)]
    # MaxItems below the page size wins; no marker starts at the beginning
    page = service.get_state(DurableExecutionArn=arn, CheckpointToken=token, MaxItems=2)
    assert [op["Id"] for op in page["Operations"]] == seen[:2]
    assert page["NextMarker"] == "ops:2"
    last = service.get_state(DurableExecutionArn=arn, CheckpointToken=token, Marker="ops:6")
    assert "NextMarker" not in last


def test_exact_page_has_no_marker() -> None:
    service = FakeService(page_size=2)
    arn = service.start_execution()
    Session(service, arn).checkpoint(step("s", "START"))
    assert service.invocation_event(arn)["InitialExecutionState"]["NextMarker"] == ""


def test_large_checkpoint_delta_is_paged_with_the_new_token() -> None:
    service = FakeService(page_size=3)
    s = Session(service, service.start_execution())
    response = s.checkpoint(*[step(f"s{i}", "START") for i in range(8)])
    state = response["NewExecutionState"]
    assert [op["Id"] for op in state["Operations"]] == ["s0", "s1", "s2"]
    marker = state["NextMarker"]
    assert marker.startswith("delta:")
    seen = []
    while marker:
        page = s.get_state(marker, MaxItems=1000)
        seen += [op["Id"] for op in page["Operations"]]
        marker = page.get("NextMarker")
    assert seen == ["s3", "s4", "s5", "s6", "s7"]
    # only the latest delta stays pageable
    old = state["NextMarker"]
    s.checkpoint(*[step(f"t{i}", "START") for i in range(4)])
    with pytest.raises(ServiceError, match="expired"):
        s.get_state(old)


def test_completing_checkpoint_returns_the_whole_delta_inline() -> None:
    """No token comes back, so nothing could be paged: everything is in the response."""
    service = FakeService(page_size=2)
    s = Session(service, service.start_execution())
    response = s.checkpoint(
        *[step(f"s{i}", "START") for i in range(3)],
        upd("execution-result-1", "EXECUTION", "SUCCEED", Payload="1"),
    )
    assert "CheckpointToken" not in response
    assert "NextMarker" not in response["NewExecutionState"]
    assert ids(response) == ["s0", "s1", "s2", s.arn.split("/")[-1]]


@pytest.mark.parametrize("marker", ["nope", "ops:x", "ops:-1", "delta:1", "ops:99"])
def test_bad_markers(session: Session, marker: str) -> None:
    with pytest.raises(ServiceError) as info:
        session.get_state(marker)
    assert info.value.code == "InvalidParameterValueException"


def test_max_items_range(session: Session) -> None:
    with pytest.raises(ServiceError, match="MaxItems"):
        session.get_state(MaxItems=1001)


def test_page_size_validation() -> None:
    with pytest.raises(ValueError, match="page_size"):
        FakeService(page_size=0)


# ---------------------------------------------------------------------------- invocation outcomes


def test_finish_succeeded(service: FakeService, session: Session) -> None:
    service.finish_invocation(session.arn, {"Status": "SUCCEEDED", "Result": '{"ok": true}'})
    ex = service.execution(session.arn)
    assert (ex.status, ex.result, ex.error) == ("SUCCEEDED", '{"ok": true}', None)
    op = service.operations(session.arn)[0]
    assert op.status is OperationStatus.SUCCEEDED
    assert op.end_timestamp == T0


def test_finish_failed(service: FakeService, session: Session) -> None:
    error = {"ErrorType": "ValueError", "ErrorMessage": "bad"}
    service.finish_invocation(session.arn, {"Status": "FAILED", "Error": error})
    ex = service.execution(session.arn)
    assert (ex.status, ex.result, ex.error) == ("FAILED", None, error)
    assert service.operations(session.arn)[0].status is OperationStatus.FAILED


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        ({"Status": "FAILED", "Result": "1"}, "FAILED status with a Result"),
        ({"Status": "SUCCEEDED", "Error": {"ErrorType": "E"}}, "SUCCEEDED status with an Error"),
        ({"Status": "PENDING"}, "no pending operations"),
        ({"Status": "PENDING", "Result": "1"}, "PENDING status with a Result"),
        ({"Status": "RETRY"}, "Invalid invocation Status"),
        ({}, "Invalid invocation Status"),
        ({"Status": "SUCCEEDED", "Result": 1}, "Result must be a string"),
    ],
)
def test_invalid_output_is_a_failed_invocation(
    service: FakeService, session: Session, output: dict[str, Any], fragment: str
) -> None:
    service.finish_invocation(session.arn, output)
    ex = service.execution(session.arn)
    assert ex.status == "RUNNING"
    assert ex.consecutive_failures == 1
    completed = service.history(session.arn)[-1]
    assert completed["EventType"] == "InvocationCompleted"
    assert fragment in completed["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorMessage"]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param([wait("w", 5)], id="wait"),
        pytest.param([step("s", "START"), retry("s", 5)], id="step-retry"),
        pytest.param([callback("c")], id="callback"),
        pytest.param(
            [upd("i", "CHAINED_INVOKE", "START", ChainedInvokeOptions={"FunctionName": "f"})],
            id="invoke",
        ),
    ],
)
def test_pending_is_valid_with_something_pending(
    service: FakeService, session: Session, setup: list[dict[str, Any]]
) -> None:
    session.checkpoint(*setup)
    service.finish_invocation(session.arn, {"Status": "PENDING"})
    assert service.execution(session.arn).consecutive_failures == 0
    assert service.execution(session.arn).status == "RUNNING"


def test_pending_is_valid_when_the_handler_missed_a_change(
    service: FakeService, session: Session
) -> None:
    response = session.checkpoint(callback("c"))
    callback_id = response["NewExecutionState"]["Operations"][0]["CallbackDetails"]["CallbackId"]
    service.send_callback_success(callback_id, "done")
    service.finish_invocation(session.arn, {"Status": "PENDING"})
    assert service.execution(session.arn).consecutive_failures == 0
    assert service.has_ready_work(session.arn)


def test_failed_invocations_are_retried_then_fail_the_execution(service: FakeService) -> None:
    arn = service.start_execution()
    for attempt in range(1, 5):
        service.invocation_event(arn)
        service.fail_invocation(arn, KeyError("x"))
        assert service.execution(arn).status == "RUNNING"
        assert service.execution(arn).consecutive_failures == attempt
        assert not service.has_ready_work(arn)
        assert service.next_timer(arn) == service.clock.now() + 5  # EMU backoff
        service.clock.advance(5)
        assert service.has_ready_work(arn)
    service.invocation_event(arn)
    service.fail_invocation(arn, KeyError("x"))
    ex = service.execution(arn)
    assert ex.status == "FAILED"
    assert ex.error == {"ErrorMessage": "'x'", "ErrorType": "KeyError"}
    assert ex.invocations == 5
    assert service.operations(arn)[0].status is OperationStatus.FAILED


def test_a_good_invocation_resets_the_failure_count(service: FakeService) -> None:
    class Boom(Exception):
        pass

    arn = service.start_execution()
    Session(service, arn)
    service.fail_invocation(arn, Boom("x"))
    completed = service.history(arn)[-1]["InvocationCompletedDetails"]
    assert completed["Error"]["Payload"]["ErrorType"].endswith("<locals>.Boom")
    assert service.execution(arn).consecutive_failures == 1
    service.clock.advance(5)
    s = Session(service, arn)
    s.checkpoint(wait("w", 1))
    service.finish_invocation(arn, {"Status": "PENDING"})
    assert service.execution(arn).consecutive_failures == 0


# ---------------------------------------------------------------------------- callbacks


def _callback_id(session: Session, **options: int) -> str:
    response = session.checkpoint(callback("c", **options))
    return str(response["NewExecutionState"]["Operations"][0]["CallbackDetails"]["CallbackId"])


@pytest.mark.parametrize(
    ("body", "stored"),
    [(b'"APPROVED"', '"APPROVED"'), ("caf\u00e9", "caf\u00e9"), (b"", None)],
)
def test_callback_success(
    service: FakeService, session: Session, body: bytes | str, stored: str | None
) -> None:
    callback_id = _callback_id(session, timeout=30, heartbeat=10)
    service.clock.advance(5)
    service.send_callback_success(callback_id, body)
    op = session.op("c")
    assert op.status is OperationStatus.SUCCEEDED
    assert op.callback_details.result == stored
    assert op.callback_details.callback_id == callback_id
    assert op.end_timestamp == T0 + dt.timedelta(seconds=5)
    assert service.next_timer(session.arn) is None  # timeouts disarmed
    assert service.has_ready_work(session.arn)


def test_callback_failure(service: FakeService, session: Session) -> None:
    callback_id = _callback_id(session)
    error = {"ErrorMessage": "denied", "ErrorType": "Denied", "ErrorData": '{"d":1}'}
    service.send_callback_failure(callback_id, error)
    op = session.op("c")
    assert op.status is OperationStatus.FAILED
    assert op.callback_details.error.to_wire() == error
    with pytest.raises(ServiceError, match="not waiting") as info:
        service.send_callback_success(callback_id)
    assert info.value.code == "ResourceNotFoundException"
    assert info.value.status == 404


@pytest.mark.parametrize(
    ("options", "after", "error_type", "message"),
    [
        ({"timeout": 30}, 30, "Callback.Timeout", "Callback timed out"),
        (
            {"timeout": 30, "heartbeat": 10},
            10,
            "Callback.Heartbeat",
            "Callback timed out on heartbeat",
        ),
    ],
)
def test_callback_timeouts(
    service: FakeService,
    session: Session,
    options: dict[str, int],
    after: int,
    error_type: str,
    message: str,
) -> None:
    callback_id = _callback_id(session, **options)
    assert service.next_timer(session.arn) == START + after
    service.clock.advance(after)
    service.fire_due_timers()
    op = session.op("c")
    assert op.status is OperationStatus.TIMED_OUT
    assert op.callback_details.error.error_type == error_type
    assert op.callback_details.error.error_message == message
    assert op.callback_details.callback_id == callback_id
    assert service.next_timer(session.arn) is None
    with pytest.raises(ServiceError) as info:
        service.send_callback_success(callback_id, b"late")
    assert info.value.code == "CallbackTimeoutException"
    event = service.history(session.arn)[-1]
    assert event["EventType"] == "CallbackTimedOut"
    assert event["CallbackTimedOutDetails"]["Error"]["Payload"]["ErrorType"] == error_type


def test_callback_heartbeat_restarts_the_heartbeat_timer(
    service: FakeService, session: Session
) -> None:
    callback_id = _callback_id(session, timeout=100, heartbeat=10)
    for _ in range(5):
        service.clock.advance(8)
        service.send_callback_heartbeat(callback_id)
        assert service.next_timer(session.arn) == service.clock.now() + 10
    assert session.op("c").status is OperationStatus.STARTED
    service.clock.advance(10)
    service.fire_due_timers()
    assert session.op("c").callback_details.error.error_type == "Callback.Heartbeat"


def test_heartbeat_without_heartbeat_timeout_is_accepted(
    service: FakeService, session: Session
) -> None:
    callback_id = _callback_id(session, timeout=20)
    service.send_callback_heartbeat(callback_id)
    assert service.next_timer(session.arn) == START + 20


def test_callback_sent_at_its_deadline_is_too_late(service: FakeService, session: Session) -> None:
    callback_id = _callback_id(session, timeout=20)
    service.clock.advance(20)
    with pytest.raises(ServiceError, match="timed out"):
        service.send_callback_success(callback_id, b"x")


def test_unknown_callback_id(service: FakeService) -> None:
    sends: list[Callable[[], None]] = [
        lambda: service.send_callback_success("bm9wZQ=="),
        lambda: service.send_callback_failure("bm9wZQ==", {}),
        lambda: service.send_callback_heartbeat("bm9wZQ=="),
    ]
    for send in sends:
        with pytest.raises(ServiceError) as info:
            send()
        assert info.value.code == "ResourceNotFoundException"


def test_callback_after_execution_ended(service: FakeService, session: Session) -> None:
    callback_id = _callback_id(session)
    service.finish_invocation(session.arn, {"Status": "SUCCEEDED", "Result": "null"})
    with pytest.raises(ServiceError, match="execution SUCCEEDED"):
        service.send_callback_success(callback_id)


# ---------------------------------------------------------------------------- fault injection


def test_fault_injection_checkpoint(session: Session) -> None:
    throttle = ServiceError("TooManyRequestsException", "slow down", 429)
    session.service.inject_fault("checkpoint", throttle, times=2, after=1)
    session.checkpoint(step("a", "START"))  # skipped
    token = session.token
    for _ in range(2):
        with pytest.raises(ServiceError) as info:
            session.checkpoint(step("b", "START"))
        assert info.value is throttle
        assert session.token == token  # nothing consumed
    assert "b" not in session.service.execution(session.arn).operations
    session.checkpoint(step("b", "START"))
    calls = session.service.calls
    assert [c.error is throttle for c in calls] == [False, True, True, False]
    assert calls[1].response is None
    assert calls[1].request["Updates"] == [step("b", "START")]


def test_fault_injection_get_state_is_separate(session: Session) -> None:
    error = ServiceError("ServiceException", "oops", 500)
    session.service.inject_fault("get_state", error)
    session.checkpoint()  # not a get_state call
    with pytest.raises(ServiceError, match="oops"):
        session.get_state()
    session.get_state()
    with pytest.raises(ValueError, match="api"):
        session.service.inject_fault("invoke", error)


def test_fault_takes_precedence_over_client_token_replay(session: Session) -> None:
    token = session.token or ""
    first = session.checkpoint(ClientToken="c1")
    error = ServiceError("ServiceException", "oops", 500)
    session.service.inject_fault("checkpoint", error)
    kwargs: dict[str, Any] = {
        "DurableExecutionArn": session.arn,
        "CheckpointToken": token,
        "ClientToken": "c1",
    }
    with pytest.raises(ServiceError, match="oops"):
        session.service.checkpoint(**kwargs)
    assert session.service.checkpoint(**kwargs) == first


# ---------------------------------------------------------------------------- recording


def test_calls_are_recorded_as_received(session: Session) -> None:
    updates = [step("s", "START")]
    token = session.token
    response = session.checkpoint(*updates)
    updates[0]["Id"] = "mutated later"
    session.get_state(MaxItems=5)
    with pytest.raises(ServiceError):
        session.checkpoint(step("s", "START"))
    first, second, third = session.service.calls
    assert first == RecordedCall(
        api="checkpoint",
        request={
            "DurableExecutionArn": session.arn,
            "CheckpointToken": token,
            "Updates": [step("s", "START")],
        },
        response=response,
        error=None,
    )
    assert second.api == "get_state"
    assert second.request["MaxItems"] == 5
    assert "Marker" not in second.request
    assert third.response is None
    assert third.error is not None


# ---------------------------------------------------------------------------- history


def test_history_of_a_wait(service: FakeService) -> None:
    """CONF example: wait 2 s."""
    arn = service.start_execution()
    s = Session(service, arn)
    s.checkpoint(wait("w", 2))
    service.finish_invocation(arn, {"Status": "PENDING"})
    service.clock.advance(2)
    Session(service, arn)
    service.finish_invocation(arn, {"Status": "SUCCEEDED", "Result": "null"})
    history = service.history(arn)
    assert [(e["EventId"], e["EventType"]) for e in history] == [
        (1, "ExecutionStarted"),
        (2, "WaitStarted"),
        (3, "InvocationCompleted"),
        (4, "WaitSucceeded"),
        (5, "InvocationCompleted"),
        (6, "ExecutionSucceeded"),
    ]
    assert history[0]["ExecutionStartedDetails"]["Input"] == {"Truncated": False}
    assert history[1]["WaitStartedDetails"] == {
        "Duration": 2,
        "ScheduledEndTimestamp": T0 + dt.timedelta(seconds=2),
    }
    assert history[1]["SubType"] == "Wait"
    assert history[3]["WaitSucceededDetails"] == {"Duration": 2}
    assert history[3]["EventTimestamp"] == T0 + dt.timedelta(seconds=2)
    assert "Id" not in history[2]
    assert (
        history[4]["InvocationCompletedDetails"]["RequestId"] == service.execution(arn).request_id
    )
    assert history[5]["ExecutionSucceededDetails"] == {
        "Result": {"Payload": "null", "Truncated": False}
    }


def test_history_of_step_retries(service: FakeService, session: Session) -> None:
    err = {"ErrorMessage": "boom", "ErrorType": "ValueError"}
    session.checkpoint(step("s", "START", Name="flaky"), retry("s", 1, Name="flaky", Error=err))
    service.clock.advance(1)
    session.checkpoint(step("s", "START", Name="flaky"), step("s", "FAIL", Name="flaky", Error=err))
    session.checkpoint(
        step("p", "START", SubType="WaitForCondition"),
        step(
            "p",
            "RETRY",
            SubType="WaitForCondition",
            Payload="1",
            StepOptions={"NextAttemptDelaySeconds": 3},
        ),
    )
    events = service.history(session.arn)[1:]
    assert [(e["EventType"], e.get("Name")) for e in events] == [
        ("StepStarted", "flaky"),
        ("StepFailed", "flaky"),
        ("StepStarted", "flaky"),
        ("StepFailed", "flaky"),
        ("StepStarted", None),
        ("StepSucceeded", None),
    ]
    assert events[1]["StepFailedDetails"] == {
        "Error": {"Payload": err, "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 1},
    }
    assert events[3]["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 2}
    assert events[5]["StepSucceededDetails"] == {
        "Result": {"Payload": "1", "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 3},
    }


def test_history_of_contexts_and_callbacks(service: FakeService, session: Session) -> None:
    response = session.checkpoint(
        context("ctx", "START", Name="wfc", SubType="WaitForCallback"),
        callback("cb", timeout=60, ParentId="ctx", Name="wfc create callback id"),
    )
    callback_id = response["NewExecutionState"]["Operations"][1]["CallbackDetails"]["CallbackId"]
    service.send_callback_success(callback_id, b'"ok"')
    session.checkpoint(
        context("ctx", "SUCCEED", Name="wfc", SubType="WaitForCallback", Payload='"ok"')
    )
    events = service.history(session.arn)[1:]
    assert [e["EventType"] for e in events] == [
        "ContextStarted",
        "CallbackStarted",
        "CallbackSucceeded",
        "ContextSucceeded",
    ]
    assert events[1]["ParentId"] == "ctx"
    assert events[1]["CallbackStartedDetails"] == {"CallbackId": callback_id, "Timeout": 60}
    assert events[2]["CallbackSucceededDetails"] == {
        "Result": {"Payload": '"ok"', "Truncated": False}
    }
    assert events[3]["ContextSucceededDetails"] == {
        "Result": {"Payload": '"ok"', "Truncated": False}
    }
    assert [e["EventId"] for e in events] == [2, 3, 4, 5]


def test_history_is_a_copy(service: FakeService, session: Session) -> None:
    service.history(session.arn).clear()
    assert len(service.history(session.arn)) == 1


# ---------------------------------------------------------------------------- async + threads


@pytest.mark.anyio
async def test_async_client_methods(service: FakeService) -> None:
    arn = service.start_execution()
    event = service.invocation_event(arn)
    response = await service.checkpoint_durable_execution(
        DurableExecutionArn=arn,
        CheckpointToken=event["CheckpointToken"],
        Updates=[step("s", "START")],
    )
    assert ids(response) == ["s"]
    state = await service.get_durable_execution_state(
        DurableExecutionArn=arn, CheckpointToken=response["CheckpointToken"], MaxItems=1000
    )
    assert [op["Id"] for op in state["Operations"]][1:] == ["s"]
    with pytest.raises(ServiceError, match="Invalid checkpoint token"):
        await service.checkpoint_durable_execution(
            DurableExecutionArn=arn, CheckpointToken=event["CheckpointToken"]
        )


def test_concurrent_callers_see_one_winner_per_token(service: FakeService) -> None:
    s = Session(service, service.start_execution())
    token = s.token or ""
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def call(i: int) -> None:
        barrier.wait()
        try:
            service.checkpoint(
                DurableExecutionArn=s.arn, CheckpointToken=token, Updates=[step(f"s{i}", "START")]
            )
            outcomes.append("ok")
        except ServiceError:
            outcomes.append("stale")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["stale"] * 7
    assert len(service.calls) == 8
