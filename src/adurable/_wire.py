"""Wire models of the durable-execution service and the Lambda invocation envelope.

Frozen pydantic data with the service's PascalCase names as aliases; no behaviour beyond
parsing and dumping (PROTOCOL §2-§4). The enumerations live in ``_enums`` (re-exported here).
The SDK's own hot path does not build these models: it sends updates built by ``_fastwire``
and keeps the service's operations as raw dicts until one is looked up (``_journal``), so
``import adurable`` does not import pydantic. These models are the validating, full-fidelity
form: the journal materializes lookups with them, and the local service and tests use them.

Two timestamp encodings exist on the wire:

* the invocation event carries integer epoch **milliseconds** (§2.1 rule 4): parse with
  ``parse_event`` / ``context={"epoch": "ms"}``;
* API responses carry rest-json timestamps, epoch **seconds** (possibly fractional) or ISO-8601
  strings (§3.3); botocore hands them over as ``datetime`` objects. This is the default.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_pascal

from adurable._enums import (
    InvocationStatus,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
)

__all__ = (
    "CallbackDetails",
    "CallbackOptions",
    "ChainedInvokeDetails",
    "ChainedInvokeOptions",
    "CheckpointRequest",
    "CheckpointResponse",
    "ContextDetails",
    "ContextOptions",
    "ErrorObject",
    "ExecutionDetails",
    "ExecutionState",
    "GetStateRequest",
    "GetStateResponse",
    "InvocationInput",
    "InvocationOutput",
    "InvocationStatus",
    "Operation",
    "OperationAction",
    "OperationStatus",
    "OperationSubType",
    "OperationType",
    "OperationUpdate",
    "StepDetails",
    "StepOptions",
    "WaitDetails",
    "WaitOptions",
    "WireModel",
)

UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


class WireModel(BaseModel):
    """Base of every wire model: frozen, PascalCase aliases, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_pascal,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        defer_build=True,  # build validators on first use: keeps `import adurable` cheap
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict the service expects (aliases, no ``None`` fields)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _parse_timestamp(value: Any, info: ValidationInfo) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    if isinstance(value, bool):
        raise ValueError("timestamp must be a number, an ISO-8601 string or a datetime")
    if isinstance(value, int | float):
        if (info.context or {}).get("epoch", "s") == "ms" and isinstance(value, int):
            # Exact: float division can land a millisecond off.
            return _EPOCH + dt.timedelta(milliseconds=value)
        unit = (info.context or {}).get("epoch", "s")
        seconds = value / 1000 if unit == "ms" else float(value)
        return dt.datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"unsupported timestamp {value!r}")


class ErrorObject(WireModel):
    """``{ErrorMessage?, ErrorType?, ErrorData?, StackTrace?}`` (§4.6)."""

    error_message: str | None = None
    error_type: str | None = None
    error_data: str | None = None
    stack_trace: list[str] | None = None


class ExecutionDetails(WireModel):
    input_payload: str | None = None


class ContextDetails(WireModel):
    replay_children: bool = False
    result: str | None = None
    error: ErrorObject | None = None


class StepDetails(WireModel):
    attempt: int = 0
    next_attempt_timestamp: dt.datetime | None = None
    result: str | None = None
    error: ErrorObject | None = None

    _ts = field_validator("next_attempt_timestamp", mode="before")(_parse_timestamp)


class WaitDetails(WireModel):
    scheduled_end_timestamp: dt.datetime | None = None

    _ts = field_validator("scheduled_end_timestamp", mode="before")(_parse_timestamp)


class CallbackDetails(WireModel):
    callback_id: str | None = None
    result: str | None = None
    error: ErrorObject | None = None


class ChainedInvokeDetails(WireModel):
    result: str | None = None
    error: ErrorObject | None = None


class Operation(WireModel):
    """One operation as the service records it (§4.2)."""

    id: str
    parent_id: str | None = None
    name: str | None = None
    type: OperationType
    sub_type: str | None = None
    start_timestamp: dt.datetime | None = None
    end_timestamp: dt.datetime | None = None
    status: OperationStatus
    execution_details: ExecutionDetails | None = None
    context_details: ContextDetails | None = None
    step_details: StepDetails | None = None
    wait_details: WaitDetails | None = None
    callback_details: CallbackDetails | None = None
    chained_invoke_details: ChainedInvokeDetails | None = None

    _ts = field_validator("start_timestamp", "end_timestamp", mode="before")(_parse_timestamp)

    @field_validator("sub_type", "parent_id", "name", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None


class ContextOptions(WireModel):
    replay_children: bool = False


class StepOptions(WireModel):
    next_attempt_delay_seconds: int


class WaitOptions(WireModel):
    wait_seconds: int


class CallbackOptions(WireModel):
    timeout_seconds: int = 0
    heartbeat_timeout_seconds: int = 0


class ChainedInvokeOptions(WireModel):
    function_name: str
    tenant_id: str | None = None
    x_amzn_trace_id: str | None = Field(default=None, alias="XAmznTraceId")


class OperationUpdate(WireModel):
    """One change the SDK asks the service to record (§4.3)."""

    id: str
    parent_id: str | None = None
    name: str | None = None
    type: OperationType
    sub_type: str | None = None
    action: OperationAction
    payload: str | None = None
    error: ErrorObject | None = None
    context_options: ContextOptions | None = None
    step_options: StepOptions | None = None
    wait_options: WaitOptions | None = None
    callback_options: CallbackOptions | None = None
    chained_invoke_options: ChainedInvokeOptions | None = None

    def to_wire(self) -> dict[str, Any]:
        """Like the official SDK: ParentId/Name/SubType only when non-empty; Payload "" kept."""
        wire = super().to_wire()
        for key in ("ParentId", "Name", "SubType"):
            if key in wire and not wire[key]:
                del wire[key]
        return wire


class ExecutionState(WireModel):
    operations: list[Operation] = Field(default_factory=list)
    next_marker: str | None = None


class InvocationInput(WireModel):
    """The durable invocation envelope Lambda hands the handler (§2.1)."""

    durable_execution_arn: str
    checkpoint_token: str
    initial_execution_state: ExecutionState = Field(default_factory=ExecutionState)
    updated_operation_ids: list[str] = Field(default_factory=list)

    @classmethod
    def parse_event(cls, event: Any) -> InvocationInput:
        """Parse a Lambda event; its timestamps are epoch milliseconds."""
        return cls.model_validate(event, context={"epoch": "ms"})


class InvocationOutput(WireModel):
    """What the handler returns to Lambda (§2.5)."""

    status: InvocationStatus
    result: str | None = None
    error: ErrorObject | None = None


class CheckpointRequest(WireModel):
    durable_execution_arn: str
    checkpoint_token: str
    updates: list[OperationUpdate] = Field(default_factory=list)
    client_token: str | None = None


class CheckpointResponse(WireModel):
    checkpoint_token: str | None = None
    new_execution_state: ExecutionState = Field(default_factory=ExecutionState)


class GetStateRequest(WireModel):
    durable_execution_arn: str
    checkpoint_token: str
    marker: str | None = None
    max_items: int | None = None


class GetStateResponse(WireModel):
    operations: list[Operation] = Field(default_factory=list)
    next_marker: str | None = None
