"""BatchResult accessors, throw_if_error and its wire form (PROTOCOL §7.9.7, §10.2 ``br``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adurable import (
    EXTENDED_TYPES_SERDES,
    BatchCompletionError,
    BatchItem,
    BatchItemStatus,
    BatchResult,
    ChildContextError,
    CompletionReason,
    SerDesError,
    StepError,
)
from adurable._wire import ErrorObject

S = BatchItemStatus
BOOM = ErrorObject(error_message="boom", error_type="ValueError")


def sample() -> BatchResult[Any]:
    return BatchResult(
        [
            BatchItem(0, S.SUCCEEDED, 20),
            BatchItem(1, S.FAILED, error=BOOM),
            BatchItem(2, S.SUCCEEDED, None),
            BatchItem(3, S.STARTED),
            BatchItem(4, S.FAILED),
        ],
        CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
    )


def test_every_accessor() -> None:
    result = sample()
    assert [i.index for i in result.succeeded()] == [0, 2]
    assert [i.index for i in result.failed()] == [1, 4]
    assert [i.index for i in result.started()] == [3]
    assert result.get_results() == [20, None]
    assert result.get_errors() == [BOOM, None]
    counts = (result.success_count, result.failure_count, result.started_count)
    assert counts == (2, 2, 1)
    assert result.total_count == 5
    assert result.has_failure
    assert result.status is S.FAILED


@pytest.mark.parametrize(
    ("items", "reason", "status"),
    [
        ([BatchItem(0, S.SUCCEEDED, 1)], CompletionReason.ALL_COMPLETED, S.SUCCEEDED),
        ([BatchItem(0, S.FAILED)], CompletionReason.ALL_COMPLETED, S.FAILED),
        ([BatchItem(0, S.FAILED)], CompletionReason.CUSTOM_COMPLETION_SUCCEEDED, S.SUCCEEDED),
        ([BatchItem(0, S.SUCCEEDED)], CompletionReason.CUSTOM_COMPLETION_FAILED, S.FAILED),
        ([], CompletionReason.ALL_COMPLETED, S.SUCCEEDED),
    ],
)
def test_status(items: list[BatchItem[Any]], reason: CompletionReason, status: S) -> None:
    assert BatchResult(items, reason).status is status


def test_throw_if_error_raises_the_first_failure_rebuilt() -> None:
    with pytest.raises(ChildContextError) as caught:
        sample().throw_if_error()
    assert (caught.value.message, caught.value.error_type) == ("boom", "ValueError")
    assert type(caught.value.__cause__).__name__ == "DurableOperationError"


def test_throw_if_error_recognises_wrapped_sdk_errors_and_serdes_failures() -> None:
    step_error = ErrorObject(
        error_message="inner", error_type="aws_durable_execution_sdk_python.exceptions.StepError"
    )
    with pytest.raises(ChildContextError) as caught:
        BatchResult([BatchItem(0, S.FAILED, error=step_error)]).throw_if_error()
    assert isinstance(caught.value.__cause__, StepError)
    serdes = ErrorObject(
        error_message="bad", error_type="aws_durable_execution_sdk_python.exceptions.SerDesError"
    )
    with pytest.raises(SerDesError, match="bad"):
        BatchResult([BatchItem(0, S.FAILED, error=serdes)]).throw_if_error()


def test_throw_if_error_without_error_object() -> None:
    result: BatchResult[Any] = BatchResult([BatchItem(0, S.SUCCEEDED), BatchItem(1, S.FAILED)])
    with pytest.raises(ChildContextError, match=r"^Batch item 1 failed without an ErrorObject\.$"):
        result.throw_if_error()


def test_throw_if_error_custom_failure_and_success() -> None:
    failed: BatchResult[Any] = BatchResult(
        [BatchItem(0, S.SUCCEEDED)], CompletionReason.CUSTOM_COMPLETION_FAILED
    )
    with pytest.raises(BatchCompletionError) as caught:
        failed.throw_if_error()
    assert caught.value.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED
    BatchResult([BatchItem(0, S.SUCCEEDED)], CompletionReason.ALL_COMPLETED).throw_if_error()


def test_to_dict_shape() -> None:
    assert sample().to_dict()["all"][:2] == [
        {"index": 0, "status": "SUCCEEDED", "result": 20, "error": None},
        {
            "index": 1,
            "status": "FAILED",
            "result": None,
            "error": {"ErrorMessage": "boom", "ErrorType": "ValueError"},
        },
    ]
    assert sample().to_dict()["completionReason"] == "FAILURE_TOLERANCE_EXCEEDED"


def test_br_envelope_is_byte_exact() -> None:
    """The EXP payload of §7.9.7 (first item)."""
    result = BatchResult([BatchItem(0, S.SUCCEEDED, 20)], CompletionReason.ALL_COMPLETED)
    assert EXTENDED_TYPES_SERDES.serialize(result) == (
        '{"t":"br","v":{"all":{"t":"l","v":[{"t":"m","v":{"index":{"t":"i","v":0},'
        '"status":{"t":"s","v":"SUCCEEDED"},"result":{"t":"i","v":20},"error":{"t":"n","v":null}}}'
        ']},"completionReason":{"t":"s","v":"ALL_COMPLETED"}}}'
    )
    assert EXTENDED_TYPES_SERDES.deserialize(EXTENDED_TYPES_SERDES.serialize(result)) == result


@pytest.mark.parametrize(
    ("statuses", "reason"),
    [
        ([S.SUCCEEDED, S.SUCCEEDED], CompletionReason.ALL_COMPLETED),
        ([S.SUCCEEDED, S.STARTED], CompletionReason.MIN_SUCCESSFUL_REACHED),
        ([S.FAILED, S.STARTED], CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
        ([], CompletionReason.ALL_COMPLETED),
    ],
)
def test_from_dict_infers_a_missing_reason(statuses: list[S], reason: CompletionReason) -> None:
    data = {"all": [{"index": i, "status": s.value} for i, s in enumerate(statuses)]}
    assert BatchResult.from_dict(data).completion_reason is reason


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"all": "nope"},
        {"all": [1]},
        {"all": [{"index": 0}]},
        {"all": [{"index": 0, "status": "WEIRD"}]},
        {"all": [], "completionReason": "SOMETIMES"},
    ],
)
def test_from_dict_rejects_malformed_data(data: dict[str, Any]) -> None:
    with pytest.raises(SerDesError):
        BatchResult.from_dict(data)


# -- round trips --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
errors = st.builds(
    ErrorObject,
    error_message=st.none() | st.text(max_size=5),
    error_type=st.none() | st.sampled_from(["ValueError", "mod.Err"]),
    error_data=st.none() | st.text(max_size=5),
    stack_trace=st.none() | st.lists(st.text(max_size=5), max_size=2),
)


@st.composite
def batch_results(draw: st.DrawFn) -> BatchResult[Any]:
    statuses = draw(st.lists(st.sampled_from(list(S)), max_size=6))
    items = [
        BatchItem(
            index,
            status,
            draw(json_values) if status is S.SUCCEEDED else None,
            draw(st.none() | errors) if status is S.FAILED else None,
        )
        for index, status in enumerate(statuses)
    ]
    return BatchResult(items, draw(st.sampled_from(list(CompletionReason))))


@given(batch_results())
def test_round_trip_through_dict_and_extended_serdes(result: BatchResult[Any]) -> None:
    assert BatchResult.from_dict(result.to_dict()) == result
    assert BatchResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    payload = EXTENDED_TYPES_SERDES.serialize(result)
    assert payload.startswith('{"t":"br","v":')
    assert EXTENDED_TYPES_SERDES.deserialize(payload) == result


@given(batch_results())
def test_counts_partition_the_items(result: BatchResult[Any]) -> None:
    total = result.success_count + result.failure_count + result.started_count
    assert total == result.total_count == len(result.all)
    assert len(result.get_results()) == result.success_count
    assert len(result.get_errors()) == result.failure_count
    assert result.has_failure == (result.failure_count > 0)
