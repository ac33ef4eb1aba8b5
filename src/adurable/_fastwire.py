"""The wire format on the SDK's hot path, without pydantic (PROTOCOL §2.1, §3.3, §4.3).

A map of 10,000 items sends 40,000 updates and reads back as many operations; building and
dumping a pydantic model for each costs more than everything else the SDK does. So:

* :class:`Update` is one OperationUpdate as the SDK sends it: its wire dict is built once,
  directly, exactly as ``adurable._wire.OperationUpdate.to_wire()`` would dump it.
* :func:`wire_size` is ``len(json.dumps(wire).encode())`` (the batcher's 750 KiB limit) without
  an encoder pass per update.
* :func:`parse_event` reads the invocation envelope; :func:`checked_operations` checks the
  operations of a service response. Both check the shape shallowly (``Id``, ``Type``,
  ``Status``) and leave every operation a raw dict: the journal validates one with the pydantic
  model only when the code looks it up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, NamedTuple

from adurable._enums import OperationAction, OperationStatus, OperationType

if TYPE_CHECKING:
    from adurable._wire import ErrorObject

__all__ = (
    "NO_REPLAY_CHILDREN",
    "REPLAY_CHILDREN",
    "Envelope",
    "Update",
    "checked_operations",
    "parse_event",
    "simple_update",
    "wire_size",
)

#: Plain ``str`` values of the enums (the wire dict holds no enum members).
_PLAIN: dict[Any, str] = {
    member: member.value for enum in (OperationType, OperationAction) for member in enum
}
#: The ContextOptions of a CONTEXT SUCCEED (shared: never mutated).
NO_REPLAY_CHILDREN: dict[str, Any] = {"ReplayChildren": False}
REPLAY_CHILDREN: dict[str, Any] = {"ReplayChildren": True}
_object_id = id  # Update.__init__'s first parameter is the operation id
_KNOWN_SIZES = {id(NO_REPLAY_CHILDREN): 25, id(REPLAY_CHILDREN): 24}
_TYPES = frozenset(member.value for member in OperationType)
_STATUSES = frozenset(member.value for member in OperationStatus)


class Update:
    """One change the SDK asks the service to record (§4.3), built straight into its wire dict.

    ``ParentId``, ``Name`` and ``SubType`` are written only when non-empty; ``Payload`` whenever
    it is not None (``""`` is sent); options are given in their wire form
    (``context_options={"ReplayChildren": False}``). ``size`` is ``wire_size(wire)``, counted
    while the dict is built: ids, types, sub types and actions never need escaping (hex digests
    and ``[A-Za-z0-9_-]`` names), so only names, payloads, errors and options are encoded.
    """

    __slots__ = ("action", "id", "name", "parent_id", "size", "sub_type", "type", "wire")

    id: str
    type: OperationType
    action: OperationAction
    parent_id: str | None
    name: str | None
    sub_type: str | None
    wire: dict[str, Any]
    size: int

    def __init__(
        self,
        id: str,
        type: OperationType,
        action: OperationAction,
        *,
        parent_id: str | None = None,
        name: str | None = None,
        sub_type: str | None = None,
        payload: str | None = None,
        error: ErrorObject | Mapping[str, Any] | None = None,
        context_options: dict[str, Any] | None = None,
        step_options: dict[str, Any] | None = None,
        wait_options: dict[str, Any] | None = None,
        callback_options: dict[str, Any] | None = None,
        chained_invoke_options: dict[str, Any] | None = None,
    ) -> None:
        _fill(self, id, type, action, parent_id, name, sub_type, payload)
        wire, size = self.wire, self.size
        if error is not None:
            wire["Error"] = dict(error) if isinstance(error, Mapping) else error.to_wire()
            size += 11 + _json_len(wire["Error"])
        if context_options is not None:
            wire["ContextOptions"] = context_options
            size += 20 + _context_options_len(context_options)
        if step_options is not None:
            wire["StepOptions"] = step_options
            size += 17 + _json_len(step_options)
        if wait_options is not None:
            wire["WaitOptions"] = wait_options
            size += 17 + _json_len(wait_options)
        if callback_options is not None:
            wire["CallbackOptions"] = callback_options
            size += 21 + _json_len(callback_options)
        if chained_invoke_options is not None:
            wire["ChainedInvokeOptions"] = chained_invoke_options
            size += 26 + _json_len(chained_invoke_options)
        self.wire = wire
        self.size = size

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict the service expects."""
        return self.wire

    def __repr__(self) -> str:
        return f"Update({self.wire!r})"


_new_update = object.__new__


def _fill(
    update: Update,
    id: str,
    type: OperationType,
    action: OperationAction,
    parent_id: str | None,
    name: str | None,
    sub_type: str | None,
    payload: str | None,
) -> None:
    """Set ``update``'s identity and its wire dict up to ``Payload`` (the keys every update
    has, in the service's order), with the size counted as they are written."""
    update.id = id
    update.type = type
    update.action = action
    update.parent_id = parent_id
    update.name = name
    update.sub_type = sub_type
    # size: '{' '"Key": value' joined by ', ' '}'; a plain string value is len + 2.
    wire: dict[str, Any] = {"Id": id}
    size = 10 + len(id)
    if parent_id:
        wire["ParentId"] = parent_id
        size += 16 + len(parent_id)
    if name:
        wire["Name"] = name
        size += 10 + len(encode_basestring_ascii(name))
    wire["Type"] = plain = _PLAIN[type]
    size += 12 + len(plain)
    if sub_type:
        wire["SubType"] = plain = sub_type if sub_type.__class__ is str else str(sub_type)
        size += 15 + len(plain)
    wire["Action"] = plain = _PLAIN[action]
    size += 14 + len(plain)
    if payload is not None:
        wire["Payload"] = payload
        size += 13 + len(encode_basestring_ascii(payload))
    update.wire = wire
    update.size = size


def simple_update(
    id: str,
    type: OperationType,
    action: OperationAction,
    parent_id: str | None,
    name: str | None,
    sub_type: str | None,
    payload: str | None = None,
    context_options: dict[str, Any] | None = None,
) -> Update:
    """``Update(...)`` with no error and no options but ``context_options``: the updates of a
    fan-out's hot path (START, SUCCEED with a payload), built without the general keyword
    handling (~30 % cheaper). Gives exactly what ``Update`` gives (a unit test compares)."""
    update: Update = _new_update(Update)
    _fill(update, id, type, action, parent_id, name, sub_type, payload)
    if context_options is not None:
        update.wire["ContextOptions"] = context_options
        update.size += 20 + _context_options_len(context_options)
    return update


def wire_size(wire: Mapping[str, Any]) -> int:
    """``len(json.dumps(wire).encode("utf-8"))``: ``json.dumps`` escapes to ASCII, so its
    characters are bytes (default separators ``", "`` and ``": "``)."""
    return _json_len(wire)


def _context_options_len(options: dict[str, Any]) -> int:
    return _KNOWN_SIZES.get(_object_id(options)) or _json_len(options)


def _json_len(value: Any) -> int:
    """``len(json.dumps(value))`` for JSON data, without building the whole string."""
    cls = value.__class__
    if cls is str:
        return len(encode_basestring_ascii(value))
    if cls is dict:
        if not value:
            return 2
        return sum(len(encode_basestring_ascii(k)) + 4 + _json_len(v) for k, v in value.items())
    if cls is bool:
        return 4 if value else 5
    if cls is int:
        return len(int.__repr__(value))
    if value is None:
        return 4
    if cls is list and value:
        return sum(_json_len(v) + 2 for v in value)
    return len(json.dumps(value))


# -- reading ----------------------------------------------------------------------------------


class Envelope(NamedTuple):
    """The invocation envelope (§2.1); ``operations`` are raw dicts (checked shallowly)."""

    durable_execution_arn: str
    checkpoint_token: str
    operations: list[dict[str, Any]]
    next_marker: str
    updated_operation_ids: list[str]


def parse_event(event: Any) -> Envelope:
    """Read a Lambda event. Raises KeyError/TypeError/ValueError when it is not a durable
    invocation envelope (missing ARN or token, or a malformed operation list)."""
    arn = event["DurableExecutionArn"]
    token = event["CheckpointToken"]
    if not isinstance(arn, str) or not isinstance(token, str):
        raise TypeError("DurableExecutionArn and CheckpointToken must be strings")
    state = event.get("InitialExecutionState")
    if state is None:
        state = {}
    elif not isinstance(state, Mapping):
        raise TypeError("InitialExecutionState must be an object")
    operations = checked_operations(state.get("Operations") or [])
    marker = state.get("NextMarker") or ""
    updated = event.get("UpdatedOperationIds") or []
    if not isinstance(marker, str):
        raise TypeError("NextMarker must be a string")
    if not isinstance(updated, list) or not all(isinstance(i, str) for i in updated):
        raise TypeError("UpdatedOperationIds must be a list of strings")
    return Envelope(arn, token, operations, marker, updated)


def checked_operations(operations: Any) -> list[dict[str, Any]]:
    """``operations`` if it is a list of operation dicts, each with a string ``Id`` and a known
    ``Type`` and ``Status``; raises TypeError/ValueError otherwise. The rest of each operation
    is validated when it is looked up."""
    if not isinstance(operations, list):
        raise TypeError(f"Operations must be a list, got {type(operations).__name__}")
    for op in operations:
        if not isinstance(op, dict):
            raise TypeError(f"an operation must be an object, got {type(op).__name__}")
        if (
            op.get("Id").__class__ is not str
            or op.get("Type") not in _TYPES
            or op.get("Status") not in _STATUSES
        ):
            raise ValueError(
                f"malformed operation (Id, Type and Status are required): {_short(op)}"
            )
    return operations


def _short(op: Mapping[str, Any]) -> str:
    text = repr(dict(op))
    return text if len(text) <= 200 else text[:197] + "..."
