"""The pydantic-free hot path (``_fastwire``, ``_journal``): the same wire bytes and the same
validation as the pydantic models, only later and cheaper."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adurable._batcher import _uuid4
from adurable._enums import OperationAction, OperationStatus, OperationType
from adurable._errors import CheckpointFailed, GetExecutionStateError
from adurable._fastwire import (
    NO_REPLAY_CHILDREN,
    REPLAY_CHILDREN,
    Update,
    checked_operations,
    parse_event,
    simple_update,
    wire_size,
)
from adurable._journal import Identity, Journal, RecordedOperation
from adurable._wire import ErrorObject, InvocationInput, Operation, OperationUpdate

ID = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"
text = st.text(max_size=40)
errors = st.builds(
    ErrorObject,
    error_message=st.none() | text,
    error_type=st.none() | text,
    error_data=st.none() | text,
    stack_trace=st.none() | st.lists(text, max_size=3),
)
options = st.one_of(
    st.just({}),
    st.sampled_from([NO_REPLAY_CHILDREN, REPLAY_CHILDREN]).map(lambda o: {"context_options": o}),
    st.integers(1, 10**6).map(lambda s: {"step_options": {"NextAttemptDelaySeconds": s}}),
    st.integers(1, 10**6).map(lambda s: {"wait_options": {"WaitSeconds": s}}),
    st.tuples(st.integers(0, 99), st.integers(0, 99)).map(
        lambda t: {"callback_options": {"TimeoutSeconds": t[0], "HeartbeatTimeoutSeconds": t[1]}}
    ),
    st.tuples(text, st.none() | text).map(
        lambda t: {
            "chained_invoke_options": {"FunctionName": "fn:1", "TenantId": t[0]}
            | ({"XAmznTraceId": t[1]} if t[1] is not None else {})
        }
    ),
)

#: The fields every update has (its head), as hypothesis strategies.
HEAD = {
    "type_": st.sampled_from(OperationType),
    "action": st.sampled_from(OperationAction),
    "parent": st.none() | st.just("") | st.just(ID),
    "name": st.none() | text,
    "sub_type": st.none() | st.sampled_from(["", "Step", "MapIteration"]),
    "payload": st.none() | text,
}


@given(
    **HEAD,
    error=st.none() | errors,
    extra=options,
)
def test_update_dumps_like_the_pydantic_model_and_knows_its_size(
    type_: OperationType,
    action: OperationAction,
    parent: str | None,
    name: str | None,
    sub_type: str | None,
    payload: str | None,
    error: ErrorObject | None,
    extra: dict[str, Any],
) -> None:
    fields: dict[str, Any] = {
        "parent_id": parent,
        "name": name,
        "sub_type": sub_type,
        "payload": payload,
        "error": error,
    }
    update = Update(ID, type_, action, **fields, **extra)
    model = OperationUpdate.model_validate(
        {"Id": ID, "Type": type_, "Action": action}
        | {k: v for k, v in update.wire.items() if k not in ("Id", "Type", "Action")}
    )
    assert update.wire == model.to_wire()
    assert list(update.wire) == list(model.to_wire())  # same key order too
    assert all(type(v) is not OperationType for v in update.wire.values())  # plain strings
    assert update.size == wire_size(update.wire) == len(json.dumps(update.wire).encode())


@given(
    **HEAD,
    context_options=st.none() | st.sampled_from([NO_REPLAY_CHILDREN, REPLAY_CHILDREN, {}]),
)
def test_the_hot_path_update_is_the_general_one(
    type_: OperationType,
    action: OperationAction,
    parent: str | None,
    name: str | None,
    sub_type: str | None,
    payload: str | None,
    context_options: dict[str, Any] | None,
) -> None:
    fast = simple_update(ID, type_, action, parent, name, sub_type, payload, context_options)
    general = Update(
        ID,
        type_,
        action,
        parent_id=parent,
        name=name,
        sub_type=sub_type,
        payload=payload,
        context_options=context_options,
    )
    assert list(fast.wire.items()) == list(general.wire.items())
    assert fast.size == general.size
    for attribute in ("id", "type", "action", "parent_id", "name", "sub_type"):
        assert getattr(fast, attribute) == getattr(general, attribute)


def test_wire_size_matches_json_dumps_for_nested_values() -> None:
    wire = {"A": [1, "é", None, True, {"B": False}], "C": {}, "D": [], "E": 1.5}
    assert wire_size(wire) == len(json.dumps(wire))
    assert wire_size({}) == 2


def test_parse_event_keeps_operations_raw_and_applies_the_envelope_defaults() -> None:
    op = {"Id": "exec", "Type": "EXECUTION", "Status": "STARTED", "StartTimestamp": 1}
    env = parse_event(
        {
            "DurableExecutionArn": "arn",
            "CheckpointToken": "t",
            "InitialExecutionState": {"Operations": [op], "NextMarker": "m"},
            "UpdatedOperationIds": ["x"],
        }
    )
    assert env.operations[0] is op
    assert (env.next_marker, env.updated_operation_ids) == ("m", ["x"])
    bare = parse_event({"DurableExecutionArn": "arn", "CheckpointToken": "t"})
    assert (bare.operations, bare.next_marker, bare.updated_operation_ids) == ([], "", [])


@pytest.mark.parametrize(
    "event",
    [
        {"DurableExecutionArn": "a"},
        {"DurableExecutionArn": 1, "CheckpointToken": "t"},
        {"DurableExecutionArn": "a", "CheckpointToken": "t", "InitialExecutionState": []},
        {
            "DurableExecutionArn": "a",
            "CheckpointToken": "t",
            "InitialExecutionState": {"Operations": [{"Id": "x", "Type": "STEP"}]},
        },
        {"DurableExecutionArn": "a", "CheckpointToken": "t", "UpdatedOperationIds": [1]},
    ],
)
def test_parse_event_rejects_what_the_model_rejects(event: dict[str, Any]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        parse_event(event)
    with pytest.raises(Exception):  # noqa: B017 - the model's ValidationError
        InvocationInput.parse_event(event)


@pytest.mark.parametrize(
    "operations",
    [
        None,
        [1],
        [{"Type": "STEP", "Status": "STARTED"}],
        [{"Id": "x", "Type": "NOPE", "Status": "STARTED"}],
        [{"Id": "x", "Type": "STEP", "Status": "NOPE"}],
    ],
)
def test_checked_operations_refuses_malformed_shapes(operations: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        checked_operations(operations)


def _step(op_id: str, status: str, **more: Any) -> dict[str, Any]:
    return {"Id": op_id, "Type": "STEP", "Status": status, "SubType": "Step", **more}


def test_journal_reads_an_operation_only_when_it_is_looked_up() -> None:
    journal = Journal()
    raw = _step("s1", "SUCCEEDED", StepDetails={"Attempt": 1, "Result": "5"})
    journal.apply_raw([raw])
    assert "s1" in journal and journal.raw("s1") is raw
    op = journal.check("s1", Identity(OperationType.STEP, "Step", None, None))
    assert isinstance(op, RecordedOperation)  # the common shape: read without pydantic
    assert op.step_details is not None
    assert (op.status, op.step_details.result) == (OperationStatus.SUCCEEDED, "5")
    assert journal.raw("s1") is None and journal.get("s1") is op  # read once
    assert op == Operation.model_validate(raw) and op.to_wire() == raw  # the model answers


def test_an_operation_with_an_error_is_validated_by_the_model() -> None:
    journal = Journal()
    error = {"ErrorMessage": "boom", "ErrorType": "ValueError"}
    journal.apply_raw([_step("s1", "FAILED", StepDetails={"Attempt": 1, "Error": error})])
    op = journal.get("s1")
    assert isinstance(op, Operation) and op.step_details is not None
    assert op.step_details.error == ErrorObject(error_message="boom", error_type="ValueError")


_timestamps = (
    st.none()
    | st.integers(0, 4_000_000_000_000)
    | st.floats(0, 4e12, allow_nan=False)
    | st.datetimes(
        min_value=dt.datetime(1971, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.none() | st.just(dt.UTC),
    )
    | st.booleans()
    | st.just("2024-01-01T00:00:00Z")
)
_detail = st.dictionaries(
    st.sampled_from(
        [
            "Result",
            "Attempt",
            "NextAttemptTimestamp",
            "ReplayChildren",
            "CallbackId",
            "ScheduledEndTimestamp",
            "InputPayload",
            "Error",
            "Unknown",
        ]
    ),
    st.none() | st.text(max_size=3) | st.integers(-2, 5) | _timestamps | st.just({"X": 1}),
    max_size=3,
)
_maybe = st.none() | st.text(max_size=4) | st.integers(0, 2)
_raw_operations = st.fixed_dictionaries(
    {
        "Id": st.text(min_size=1, max_size=4),
        "Type": st.sampled_from(OperationType).map(str),
        "Status": st.sampled_from(OperationStatus).map(str),
    },
    optional={
        "ParentId": _maybe,
        "Name": _maybe,
        "SubType": _maybe,
        "StartTimestamp": _timestamps,
        "EndTimestamp": _timestamps,
        "StepDetails": st.none() | _detail,
        "ContextDetails": st.none() | _detail,
        "WaitDetails": st.none() | _detail,
        "CallbackDetails": st.none() | _detail,
        "ChainedInvokeDetails": st.none() | _detail,
        "ExecutionDetails": st.none() | _detail,
        "status": st.just("FAILED"),  # populate_by_name: only the model knows what it means
    },
)
_DETAIL_FIELDS = {
    "step_details": ("attempt", "next_attempt_timestamp", "result", "error"),
    "context_details": ("replay_children", "result", "error"),
    "wait_details": ("scheduled_end_timestamp",),
    "callback_details": ("callback_id", "result", "error"),
    "chained_invoke_details": ("result", "error"),
    "execution_details": ("input_payload",),
}


@given(_raw_operations, st.booleans())
def test_an_operation_read_without_pydantic_reads_like_the_model(
    raw: dict[str, Any], millis: bool
) -> None:
    journal = Journal()
    journal.apply_raw([raw], millis=millis)
    try:
        model = Operation.model_validate(raw, context={"epoch": "ms"} if millis else None)
    except ValueError:
        with pytest.raises(CheckpointFailed):  # the model's verdict, whichever path
            journal.get(raw["Id"])
        return
    op = journal.get(raw["Id"])
    assert op is not None
    for name in ("id", "parent_id", "name", "type", "sub_type", "status"):
        assert getattr(op, name) == getattr(model, name)
    for name in ("start_timestamp", "end_timestamp"):
        assert getattr(op, name) == getattr(model, name)
    for name, fields in _DETAIL_FIELDS.items():
        ours, theirs = getattr(op, name), getattr(model, name)
        assert (ours is None) == (theirs is None)
        for field in fields if theirs is not None else ():
            assert getattr(ours, field) == getattr(theirs, field), (name, field)
    assert op == model


def test_journal_reads_event_timestamps_as_milliseconds() -> None:
    journal = Journal()
    journal.apply_raw([_step("e", "STARTED", StartTimestamp=1_700_000_000_123)], millis=True)
    journal.apply_raw([_step("r", "STARTED", StartTimestamp=1_700_000_000.5)])
    assert journal.get("e").start_timestamp == dt.datetime(  # type: ignore[union-attr]
        2023, 11, 14, 22, 13, 20, 123000, tzinfo=dt.UTC
    )
    assert journal.get("r").start_timestamp == dt.datetime(  # type: ignore[union-attr]
        2023, 11, 14, 22, 13, 20, 500000, tzinfo=dt.UTC
    )


def test_a_malformed_operation_fails_the_lookup_retryably() -> None:
    journal = Journal()
    journal.apply_raw([_step("s1", "SUCCEEDED", StepDetails={"Attempt": "many"})])
    with pytest.raises(CheckpointFailed) as info:
        journal.get("s1")
    assert isinstance(info.value.source, GetExecutionStateError)
    assert info.value.source.is_retryable()


def test_journal_knows_a_replay_without_validating() -> None:
    journal = Journal()
    journal.apply_raw([{"Id": "x", "Type": "EXECUTION", "Status": "STARTED"}], millis=True)
    assert not journal.has_work()
    journal.apply_raw([_step("s1", "STARTED")])
    assert journal.has_work() and journal.raw("s1") is not None


def test_client_tokens_are_uuid4() -> None:
    tokens = {_uuid4() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        parsed = uuid.UUID(token)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, token)


def test_a_step_only_handler_loads_no_pydantic_and_no_map_machinery() -> None:
    code = (
        "import sys; from adurable import durable_execution, DurableContext, StepConfig; "
        "heavy = ('pydantic', 'adurable._wire', 'adurable._plugins', 'adurable._batch', "
        "'adurable._ops.concurrent', 'adurable._ops.callback', 'uuid', 'hashlib'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_decorating_a_handler_loads_the_event_loop_backend_and_nothing_heavy() -> None:
    # Lambda imports the handler's module in its INIT phase: the backend every invocation
    # needs loads there, while botocore, pydantic and the map machinery wait for first use.
    code = (
        "import sys; from adurable import durable_execution; "
        "before = 'anyio._backends._asyncio' in sys.modules; "
        "durable_execution(lambda event, context: None); "
        "heavy = ('botocore', 'aiobotocore', 'pydantic', 'adurable._ops.concurrent', "
        "'anyio.from_thread'); "
        "print(before, 'anyio._backends._asyncio' in sys.modules, "
        "[m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "[]"]
