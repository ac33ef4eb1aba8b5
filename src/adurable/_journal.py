"""The journal: every operation the service has recorded for this execution, by id.

Filled from the invocation event (and its pages), then merged with every checkpoint response
(full replacement by id, PROTOCOL §3.3 rule 5). ``check`` is the replay lookup: it returns the
stored operation after verifying that it is the same operation the code asks for now (§6.2).

Operations arrive as raw dicts (checked shallowly by ``_fastwire``) and stay raw until the code
looks one up. A fan-out of 10,000 items reads back 40,000 operations and looks up none of them,
so it never pays for validation. A lookup reads a well-formed dict of the common shapes (no
error object, no ISO timestamp, exact types) into a ``RecordedOperation`` without pydantic, so a
replay does not import it either; anything else is validated by the ``Operation`` model, with
the model's errors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from adurable._enums import OperationStatus, OperationType
from adurable._errors import (
    CheckpointFailed,
    GetExecutionStateError,
    NonDeterministicExecutionError,
)

if TYPE_CHECKING:
    from adurable._wire import Operation

_EXECUTION = OperationType.EXECUTION.value


class Identity(NamedTuple):
    """What the code asks for at an id: compared with the recorded operation on replay."""

    type: OperationType
    sub_type: str | None
    name: str | None
    parent_id: str | None

    def describe(self) -> str:
        label = f"{self.type.value} ({self.sub_type})" if self.sub_type else self.type.value
        return f"{label} {self.name!r}" if self.name else f"unnamed {label}"


def _identity_of(op: Operation) -> Identity:
    return Identity(op.type, op.sub_type or None, op.name or None, op.parent_id or None)


class Journal:
    """Operations by id; the single source of replay truth for one invocation."""

    __slots__ = ("_entries", "_millis")

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        #: An ``Operation``, or the raw dict it will be validated from on first lookup.
        self._entries: dict[str, Operation | dict[str, Any]] = {}
        #: Ids whose raw dict came from the invocation event (timestamps in milliseconds).
        self._millis: set[str] = set()
        self.apply(operations)

    def apply(self, operations: Iterable[Operation]) -> None:
        """Merge validated operations."""
        for op in operations:
            self._entries[op.id] = op
            self._millis.discard(op.id)

    def apply_raw(self, operations: Iterable[dict[str, Any]], *, millis: bool = False) -> None:
        """Merge raw operations (checked by ``_fastwire.checked_operations``); ``millis`` for
        those of the invocation event, whose timestamps are epoch milliseconds (§2.1)."""
        entries = self._entries
        if millis:
            for raw in operations:
                entries[raw["Id"]] = raw
                self._millis.add(raw["Id"])
        elif self._millis:
            for raw in operations:
                entries[raw["Id"]] = raw
                self._millis.discard(raw["Id"])
        else:
            for raw in operations:
                entries[raw["Id"]] = raw

    def get(self, op_id: str) -> Operation | None:
        entry = self._entries.get(op_id)
        if isinstance(entry, dict):
            return self._validate(op_id, entry)
        return entry

    def raw(self, op_id: str) -> dict[str, Any] | None:
        """The raw dict of ``op_id`` if it has not been validated yet (else None)."""
        entry = self._entries.get(op_id)
        return entry if isinstance(entry, dict) else None

    def __contains__(self, op_id: object) -> bool:
        return op_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[Operation]:
        """Every operation, validated (plugins' snapshots)."""
        ops = []
        for op_id in list(self._entries):
            op = self.get(op_id)
            assert op is not None
            ops.append(op)
        return ops

    def release(self) -> None:
        """Forget every operation: the invocation is over. Its tasks may sit in reference
        cycles (a cancelled task's traceback holds its frames) until the cycle collector runs;
        dropping the operations here frees them at once instead of leaving tens of thousands
        of dicts for that collection to walk."""
        self._entries = {}

    def has_work(self) -> bool:
        """True if any operation other than the EXECUTION exists (a replay, §2.4)."""
        for entry in self._entries.values():
            kind = entry["Type"] if isinstance(entry, dict) else entry.type
            if kind != _EXECUTION:
                return True
        return False

    def check(self, op_id: str, wanted: Identity) -> Operation | None:
        """The stored operation at ``op_id`` (None if new work), verified against ``wanted``.

        Raises NonDeterministicExecutionError when the recorded type, subtype, name or parent
        differ from what this run asks for.
        """
        if op_id not in self._entries:
            return None
        op = self.get(op_id)
        assert op is not None
        recorded = _identity_of(op)
        wanted = Identity(
            wanted.type, wanted.sub_type or None, wanted.name or None, wanted.parent_id or None
        )
        if recorded != wanted:
            raise NonDeterministicExecutionError(_mismatch_message(op_id, recorded, wanted), op_id)
        return op

    def _validate(self, op_id: str, raw: dict[str, Any]) -> Operation:
        millis = op_id in self._millis
        op = _recorded(raw, millis)
        if op is None:
            op = _validated(op_id, raw, millis)
        self._entries[op_id] = op
        if millis:
            self._millis.discard(op_id)
        return op


def _validated(op_id: str, raw: dict[str, Any], millis: bool) -> Operation:
    """``raw`` validated by the pydantic model (CheckpointFailed, retryable, if malformed)."""
    from adurable._wire import Operation

    try:
        return Operation.model_validate(raw, context={"epoch": "ms"} if millis else None)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        # Like a malformed service response: retryable, the next invocation reads again.
        source = GetExecutionStateError(
            f"the service sent a malformed operation {op_id!r}: {exc}", retryable=True
        )
        raise CheckpointFailed(source) from exc


# -- operations read without pydantic ----------------------------------------------------------

_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_TYPES = {member.value: member for member in OperationType}
_STATUSES = {member.value: member for member in OperationStatus}
_DETAILS = {
    "ExecutionDetails": "execution_details",
    "ContextDetails": "context_details",
    "StepDetails": "step_details",
    "WaitDetails": "wait_details",
    "CallbackDetails": "callback_details",
    "ChainedInvokeDetails": "chained_invoke_details",
}
_OPERATION_KEYS = frozenset(
    {"Id", "ParentId", "Name", "Type", "SubType", "StartTimestamp", "EndTimestamp", "Status"}
) | frozenset(_DETAILS)
#: Detail fields read without the model: wire key -> (attribute, kind).
_DETAIL_FIELDS = {
    "Result": ("result", "str"),
    "Attempt": ("attempt", "int"),
    "NextAttemptTimestamp": ("next_attempt_timestamp", "time"),
    "ReplayChildren": ("replay_children", "bool"),
    "CallbackId": ("callback_id", "str"),
    "ScheduledEndTimestamp": ("scheduled_end_timestamp", "time"),
    "InputPayload": ("input_payload", "str"),
}
_KINDS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "time": (int, float, dt.datetime),
}


class _Unread(Exception):
    """A shape the pydantic-free reader leaves to the model."""


def _timestamp(value: Any, millis: bool) -> dt.datetime | None:
    """What ``adurable._wire._parse_timestamp`` gives for None, a datetime or a number."""
    if value is None:
        return None
    if value.__class__ is dt.datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=_UTC)
    if millis and value.__class__ is int:
        return _EPOCH + dt.timedelta(milliseconds=value)
    seconds = value / 1000 if millis else float(value)
    return dt.datetime.fromtimestamp(seconds, tz=_UTC)


def _plain(value: Any, kinds: tuple[type, ...]) -> Any:
    if value is None or value.__class__ in kinds:
        return value
    raise _Unread


class RecordedDetails:
    """The ``*Details`` of a ``RecordedOperation``; fields a type does not have read as their
    model defaults (``attempt`` 0, ``replay_children`` False, the rest None). Never an error:
    operations recording one are validated by the model instead."""

    __slots__ = (
        "attempt",
        "callback_id",
        "input_payload",
        "next_attempt_timestamp",
        "replay_children",
        "result",
        "scheduled_end_timestamp",
    )
    error = None

    def __init__(self, raw: Any, millis: bool) -> None:
        if raw.__class__ is not dict:
            raise _Unread
        self.attempt = 0
        self.replay_children = False
        self.result = self.callback_id = self.input_payload = None
        self.next_attempt_timestamp = self.scheduled_end_timestamp = None
        for key, value in raw.items():
            field = _DETAIL_FIELDS.get(key)
            if field is None:
                raise _Unread  # an Error, or a key only the model knows how to read
            name, kind = field
            value = _plain(value, _KINDS[kind])
            if kind == "time":
                value = _timestamp(value, millis)
            elif value is None and kind in ("int", "bool"):
                raise _Unread
            setattr(self, name, value)


class RecordedOperation:
    """An operation read straight from the service's dict, without pydantic.

    It offers what the SDK reads (identity, status, timestamps, details) with the values the
    ``Operation`` model would give; for anything else (``model_dump``, ``to_wire``, equality)
    it builds the validated model once and answers from it.
    """

    __slots__ = (
        "_millis",
        "_model",
        "_raw",
        "callback_details",
        "chained_invoke_details",
        "context_details",
        "end_timestamp",
        "execution_details",
        "id",
        "name",
        "parent_id",
        "start_timestamp",
        "status",
        "step_details",
        "sub_type",
        "type",
        "wait_details",
    )

    def __init__(self, raw: dict[str, Any], millis: bool) -> None:
        self._raw = raw
        self._millis = millis
        self._model: Operation | None = None
        self.id = raw["Id"]
        self.type = _TYPES[raw["Type"]]
        self.status = _STATUSES[raw["Status"]]
        self.parent_id = _plain(raw.get("ParentId"), (str,)) or None
        self.name = _plain(raw.get("Name"), (str,)) or None
        self.sub_type = _plain(raw.get("SubType"), (str,)) or None
        self.start_timestamp = _timestamp(_plain(raw.get("StartTimestamp"), _KINDS["time"]), millis)
        self.end_timestamp = _timestamp(_plain(raw.get("EndTimestamp"), _KINDS["time"]), millis)
        for key, name in _DETAILS.items():
            value = raw.get(key)
            setattr(self, name, None if value is None else RecordedDetails(value, millis))

    def model(self) -> Operation:
        """The validated ``Operation`` of this dict (built once)."""
        if self._model is None:
            self._model = _validated(self.id, self._raw, self._millis)
        return self._model

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.model(), name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordedOperation):
            other = other.model()
        return self.model() == other

    def __hash__(self) -> int:
        return hash(self.model())

    def __repr__(self) -> str:
        return repr(self.model())


def _recorded(raw: dict[str, Any], millis: bool) -> Operation | None:
    """``raw`` as a RecordedOperation, or None if the model has to read it.

    The journal hands a RecordedOperation out as an ``Operation`` (typed so for its users):
    every field reads the same, and anything else is delegated to the model.
    """
    if not raw.keys() <= _OPERATION_KEYS:
        return None
    try:
        return RecordedOperation(raw, millis)  # type: ignore[return-value]
    except (_Unread, KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def _mismatch_message(op_id: str, recorded: Identity, wanted: Identity) -> str:
    fields = [
        ("type", recorded.type.value, wanted.type.value),
        ("subtype", recorded.sub_type, wanted.sub_type),
        ("name", recorded.name, wanted.name),
        ("parent_id", recorded.parent_id, wanted.parent_id),
    ]
    diffs = ", ".join(f"{f} checkpoint={a!r} current={b!r}" for f, a, b in fields if a != b)
    return (
        f"Non-deterministic operation identity at id={op_id!r}: {diffs}. "
        f"The execution recorded {recorded.describe()} here, but this run asked for "
        f"{wanted.describe()}; did the code change between invocations, or does it branch on "
        "something that is not recorded in a step?"
    )
