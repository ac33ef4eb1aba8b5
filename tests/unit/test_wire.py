"""Wire models (PROTOCOL §2-§4): golden samples and hypothesis round trips."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adurable._wire import (
    CallbackOptions,
    ChainedInvokeOptions,
    CheckpointResponse,
    ContextOptions,
    ErrorObject,
    InvocationInput,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StepOptions,
    WaitOptions,
)

ID = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"

# Appendix A, as the official SDK sent them (EXP).
GOLDEN_UPDATES: list[dict[str, Any]] = [
    {"Id": ID, "Type": "STEP", "Action": "START", "Name": "flaky", "SubType": "Step"},
    {
        "Id": ID,
        "Type": "STEP",
        "Action": "RETRY",
        "Name": "flaky",
        "SubType": "Step",
        "Error": {"ErrorMessage": "boom 1", "ErrorType": "ValueError"},
        "StepOptions": {"NextAttemptDelaySeconds": 1},
    },
    {
        "Id": ID,
        "Type": "STEP",
        "Action": "SUCCEED",
        "Name": "flaky",
        "SubType": "Step",
        "Payload": "3",
    },
    {
        "Id": ID,
        "Type": "CONTEXT",
        "Action": "SUCCEED",
        "Name": "kid",
        "SubType": "RunInChildContext",
        "Payload": '"inner"',
        "ContextOptions": {"ReplayChildren": False},
    },
    {
        "Id": ID,
        "Type": "WAIT",
        "Action": "START",
        "Name": "w",
        "SubType": "Wait",
        "WaitOptions": {"WaitSeconds": 1},
    },
    {
        "Id": ID,
        "Type": "CALLBACK",
        "Action": "START",
        "Name": "approval",
        "SubType": "Callback",
        "CallbackOptions": {"TimeoutSeconds": 30, "HeartbeatTimeoutSeconds": 10},
    },
    {
        "Id": ID,
        "Type": "CHAINED_INVOKE",
        "Action": "START",
        "Name": "call",
        "SubType": "ChainedInvoke",
        "Payload": '{"x": 1}',
        "ChainedInvokeOptions": {"FunctionName": "target-fn", "TenantId": "t1"},
    },
    {
        "Id": "execution-result-1700000000000",
        "Type": "EXECUTION",
        "Action": "SUCCEED",
        "Payload": '"q"',
    },
    {
        "Id": ID,
        "ParentId": ID,
        "Type": "CONTEXT",
        "Action": "FAIL",
        "Name": "wfc",
        "SubType": "WaitForCallback",
        "Error": {
            "ErrorMessage": "denied",
            "ErrorType": "aws_durable_execution_sdk_python.exceptions.CallbackExternalError",
            "ErrorData": '{"d":1}',
        },
    },
]


@pytest.mark.parametrize("update", GOLDEN_UPDATES, ids=lambda u: f"{u['Type']}-{u['Action']}")
def test_golden_updates_round_trip_exactly(update: dict[str, Any]) -> None:
    assert OperationUpdate.model_validate(update).to_wire() == update


def test_empty_strings_are_omitted_but_empty_payload_is_sent() -> None:
    update = OperationUpdate(
        id=ID,
        type=OperationType.STEP,
        action=OperationAction.SUCCEED,
        name="",
        sub_type="Step",
        parent_id="",
        payload="",
    )
    assert update.to_wire() == {
        "Id": ID,
        "Type": "STEP",
        "Action": "SUCCEED",
        "SubType": "Step",
        "Payload": "",
    }


def test_event_timestamps_are_milliseconds_and_api_timestamps_seconds() -> None:
    op = {
        "Id": ID,
        "Type": "WAIT",
        "Status": "STARTED",
        "StartTimestamp": 1_700_000_000_123,
        "WaitDetails": {"ScheduledEndTimestamp": 1_700_000_005_000},
    }
    event = InvocationInput.parse_event(
        {
            "DurableExecutionArn": "arn",
            "CheckpointToken": "tok",
            "InitialExecutionState": {"Operations": [op], "NextMarker": ""},
        }
    )
    parsed = event.initial_execution_state.operations[0]
    assert parsed.start_timestamp == dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=dt.UTC)
    assert parsed.wait_details is not None
    assert parsed.wait_details.scheduled_end_timestamp == dt.datetime(
        2023, 11, 14, 22, 13, 25, tzinfo=dt.UTC
    )
    api = Operation.model_validate({**op, "StartTimestamp": 1_700_000_000.123, "WaitDetails": {}})
    assert (
        api.start_timestamp is not None
        and abs(api.start_timestamp.timestamp() - 1_700_000_000.123) < 1e-6
    )
    iso = Operation.model_validate(
        {**op, "StartTimestamp": "2023-11-14T22:13:20.123Z", "WaitDetails": {}}
    )
    assert iso.start_timestamp == parsed.start_timestamp


def test_event_defaults_when_state_is_absent() -> None:
    event = InvocationInput.parse_event({"DurableExecutionArn": "a", "CheckpointToken": "t"})
    assert event.initial_execution_state.operations == []
    assert not event.initial_execution_state.next_marker
    assert event.updated_operation_ids == []


def test_checkpoint_response_without_token_and_unknown_fields() -> None:
    response = CheckpointResponse.model_validate(
        {"NewExecutionState": {"Operations": []}, "ResponseMetadata": {"HTTPStatusCode": 200}}
    )
    assert response.checkpoint_token is None


def test_empty_subtype_name_and_parent_read_as_absent() -> None:
    op = Operation.model_validate(
        {"Id": ID, "Type": "STEP", "Status": "STARTED", "SubType": "", "Name": "", "ParentId": ""}
    )
    assert (op.sub_type, op.name, op.parent_id) == (None, None, None)


# -- properties ---------------------------------------------------------------------------------

text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=20)
ids = st.text(alphabet="abcdef0123456789-_", min_size=1, max_size=64)
errors = st.builds(
    ErrorObject,
    error_message=st.none() | st.text(max_size=30),
    error_type=st.none() | text,
    error_data=st.none() | st.text(max_size=30),
    stack_trace=st.none() | st.lists(st.text(max_size=10), max_size=3),
)
timestamps = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))

updates = st.builds(
    OperationUpdate,
    id=ids,
    parent_id=st.none() | ids,
    name=st.none() | text,
    type=st.sampled_from(OperationType),
    sub_type=st.none() | text,
    action=st.sampled_from(OperationAction),
    payload=st.none() | st.text(max_size=40),
    error=st.none() | errors,
    context_options=st.none() | st.builds(ContextOptions, replay_children=st.booleans()),
    step_options=st.none()
    | st.builds(StepOptions, next_attempt_delay_seconds=st.integers(1, 31_622_400)),
    wait_options=st.none() | st.builds(WaitOptions, wait_seconds=st.integers(1, 31_622_400)),
    callback_options=st.none()
    | st.builds(
        CallbackOptions,
        timeout_seconds=st.integers(0, 99_999_999),
        heartbeat_timeout_seconds=st.integers(0, 99_999_999),
    ),
    chained_invoke_options=st.none()
    | st.builds(
        ChainedInvokeOptions,
        function_name=text,
        tenant_id=st.none() | text,
        x_amzn_trace_id=st.none() | text,
    ),
)


@given(updates)
def test_update_round_trips_through_the_wire(update: OperationUpdate) -> None:
    assert OperationUpdate.model_validate(update.to_wire()) == update


operations = st.builds(
    Operation,
    id=ids,
    parent_id=st.none() | ids,
    name=st.none() | text,
    type=st.sampled_from(OperationType),
    sub_type=st.none() | text,
    start_timestamp=st.none() | timestamps,
    end_timestamp=st.none() | timestamps,
    status=st.sampled_from(OperationStatus),
)


@given(operations)
def test_operation_round_trips_in_both_timestamp_encodings(op: Operation) -> None:
    wire = op.to_wire()
    assert Operation.model_validate(wire) == op  # ISO strings
    as_ms = {
        k: round(getattr(op, f).timestamp() * 1000)
        for k, f in (("StartTimestamp", "start_timestamp"), ("EndTimestamp", "end_timestamp"))
        if getattr(op, f)
    }
    event_op = InvocationInput.parse_event(
        {
            "DurableExecutionArn": "a",
            "CheckpointToken": "t",
            "InitialExecutionState": {"Operations": [{**wire, **as_ms}]},
        }
    ).initial_execution_state.operations[0]
    assert event_op == op
