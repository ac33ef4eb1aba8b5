"""Turning values into checkpoint payload strings and back (PROTOCOL §10).

The default codec, :class:`ExtendedTypeSerDes`, writes the official SDK's wire format byte for
byte, because payloads written by one SDK are replayed by another:

* ``None``, ``str``, ``int``, ``float``, ``bool`` and lists (recursively) of only those are plain
  compact JSON: ``3``, ``"x"``, ``[1,"a",null]``;
* everything else is an envelope ``{"t":<tag>,"v":<value>}`` whose nested values are envelopes
  too: ``{'a': 1}`` is ``{"t":"m","v":{"a":{"t":"i","v":1}}}``.

JSON is compact (``","``/``":"``), ASCII-only, allows ``NaN``/``Infinity`` and keeps dict order.
Values go through serialize *and* deserialize before they are checkpointed (§10.3), so user code
sees the same value on the first run and on replay: tuples stay tuples, int dict keys become
strings, ``bytearray``/``memoryview`` become ``bytes``.

``serialize``/``deserialize`` at the bottom are what operations call: they pick the default
codec and turn unexpected failures into :class:`SerDesError`.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any, Generic, Protocol, TypeVar, cast

from adurable._errors import RetryableSerDesError, SerDesError

__all__ = (
    "DEFAULT_JSON_SERDES",
    "EXTENDED_TYPES_SERDES",
    "PASSTHROUGH_SERDES",
    "READ_BACK_SERDES",
    "BatchResultType",
    "ExtendedTypeSerDes",
    "JsonSerDes",
    "PassThroughSerDes",
    "SerDes",
    "SerDesContext",
    "deserialize",
    "register_batch_result_type",
    "round_trip",
    "serialize",
    "serialize_within",
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SerDesContext:
    """Where a value is being (de)serialized: the operation id and the execution ARN."""

    operation_id: str = ""
    durable_execution_arn: str = ""


class SerDes(ABC, Generic[T]):
    """A codec between values of type ``T`` and checkpoint payload strings.

    Subclass it to store values your own way (``StepConfig(serdes=...)`` and friends).
    ``serialize`` may return ``None``: the checkpoint then carries no payload and user code gets
    ``None`` back. Raise :class:`SerDesError` for values that can never be encoded (the operation
    fails) or :class:`RetryableSerDesError` for transient trouble (the invocation is retried);
    any other exception is wrapped in a :class:`SerDesError`.
    """

    @abstractmethod
    def serialize(self, value: T, context: SerDesContext) -> str | None:
        """Encode ``value`` as a payload string (or ``None`` for no payload)."""

    @abstractmethod
    def deserialize(self, data: str, context: SerDesContext) -> T:
        """Decode a payload string written by :meth:`serialize`."""


# -- extended-type codec: encoding -------------------------------------------------------------

_COMPACT = json.JSONEncoder(separators=(",", ":"))  # ensure_ascii and allow_nan are on by default
_PLAIN_SCALARS = (str, int, float)  # bool is an int
_INFINITY = float("inf")


def _is_plain(value: object) -> bool:
    """True for None/str/int/float/bool and lists (recursively) of only those."""
    if value is None or isinstance(value, _PLAIN_SCALARS):
        return True
    if isinstance(value, list):
        return all(map(_is_plain, value))
    return False


def _dump_none(_: None) -> str:
    return "null"


def _dump_bool(value: bool) -> str:
    return "true" if value else "false"


def _dump_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (_INFINITY, -_INFINITY):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


#: Exact-type shortcuts giving what ``json.dumps`` would, without building an encoder pass.
_SCALAR_DUMPERS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
    bool: _dump_bool,
    float: _dump_float,
    type(None): _dump_none,
}

_Encoder = tuple[str, Callable[[Any], Any]]


def _same(value: Any) -> Any:
    return value


def _encode_items(items: list[Any] | tuple[Any, ...]) -> list[dict[str, Any]]:
    return [_envelope(item) for item in items]


def _encode_mapping(mapping: dict[Any, Any]) -> dict[Any, dict[str, Any]]:
    """Envelope every value; keys stay as they are and follow JSON's key rules when dumped.

    Raises SerDesError for tuple keys.
    """
    for key in mapping:
        if isinstance(key, tuple):
            raise SerDesError("Tuple keys not supported")
    return {key: _envelope(item) for key, item in mapping.items()}


def _encode_bytes(value: bytes | bytearray | memoryview) -> str:
    import base64

    return base64.b64encode(bytes(value)).decode("ascii")


def _isoformat(value: _dt.date) -> str:
    return value.isoformat()


#: Checked in order with isinstance: bool before int, datetime before date.
_ENCODERS: tuple[tuple[type | tuple[type, ...], _Encoder], ...] = (
    (str, ("s", _same)),
    (bool, ("b", _same)),
    (int, ("i", _same)),
    (float, ("f", _same)),
    (dict, ("m", _encode_mapping)),
    (list, ("l", _encode_items)),
    (tuple, ("t", _encode_items)),
    ((bytes, bytearray, memoryview), ("B", _encode_bytes)),
    # UUID ("u") and Decimal ("d") come here; see _lazy_encoder.
    (_dt.datetime, ("dt", _isoformat)),
    (_dt.date, ("D", _isoformat)),
)

#: Encoder per concrete type, filled on first sight (subclasses resolve through _ENCODERS).
_encoder_cache: dict[type, _Encoder] = {}


def _encoder_for(kind: type) -> _Encoder:
    """Tag and value encoder for values of type ``kind``. Raises SerDesError if unsupported."""
    encoder = _encoder_cache.get(kind)
    if encoder is not None:
        return encoder
    if _batch_result_type is not None and issubclass(kind, _batch_result_type):
        encoder = ("br", _encode_batch_result)
    else:
        encoder = _lazy_encoder(kind) or next(
            (enc for base, enc in _ENCODERS if issubclass(kind, base)), None
        )
    if encoder is None:
        raise SerDesError(f"Unsupported type: {kind}")
    _encoder_cache[kind] = encoder
    return encoder


def _lazy_encoder(kind: type) -> _Encoder | None:
    """UUID and Decimal, whose modules adurable does not import (a value of either type means
    its module is loaded). No type is both one of these and an earlier entry of _ENCODERS."""
    uuid = sys.modules.get("uuid")
    if uuid is not None and issubclass(kind, uuid.UUID):
        return ("u", str)
    decimal = sys.modules.get("decimal")
    if decimal is not None and issubclass(kind, decimal.Decimal):
        return ("d", str)
    return None


def _envelope(value: Any) -> dict[str, Any]:
    """``{"t": tag, "v": encoded}`` for any supported value (nested values enveloped too).

    Raises SerDesError for unsupported types and tuple dict keys.
    """
    if value is None:
        return {"t": "n", "v": None}
    tag, encode = _encoder_for(type(value))
    return {"t": tag, "v": encode(value)}


def _dumps_extended(value: Any) -> str:
    """The §10.2 wire string for ``value``.

    Raises SerDesError for unsupported types and tuple dict keys; TypeError (from ``json``) for
    dict keys that JSON cannot express, such as UUIDs.
    """
    dump = _SCALAR_DUMPERS.get(type(value))
    if dump is not None:
        return dump(value)
    if _is_plain(value):
        return _COMPACT.encode(value)
    parts: list[str] = []
    if _emit(value, parts):
        return "".join(parts)
    return _COMPACT.encode(_envelope(value))  # the general path (and its exact errors)


def _emit(value: Any, out: list[str]) -> bool:
    """Append the envelope text of ``value`` to ``out`` directly, byte for byte what
    ``_COMPACT.encode(_envelope(value))`` gives, for the common shapes: exact str, int, float,
    bool, None, lists, tuples, dicts with str or int keys and the BatchResult class. Returns
    False (``out`` is then garbage) for anything else; the caller takes the general path."""
    cls = value.__class__
    if cls is str:
        out.append('{"t":"s","v":')
        out.append(encode_basestring_ascii(value))
        out.append("}")
    elif cls is int:
        out.append('{"t":"i","v":')
        out.append(int.__repr__(value))
        out.append("}")
    elif value is None:
        out.append('{"t":"n","v":null}')
    elif cls is bool:
        out.append('{"t":"b","v":true}' if value else '{"t":"b","v":false}')
    elif cls is float:
        out.append('{"t":"f","v":')
        out.append(_dump_float(value))
        out.append("}")
    elif cls is dict:
        out.append('{"t":"m","v":')
        if not _emit_members(value, out):
            return False
        out.append("}")
    elif cls is list or cls is tuple:
        out.append('{"t":"l","v":[' if cls is list else '{"t":"t","v":[')
        first = True
        for item in value:
            if not first:
                out.append(",")
            first = False
            if not _emit(item, out):
                return False
        out.append("]}")
    elif _batch_result_type is not None and cls is _batch_result_type:
        return _emit_batch_result(value, out, None)
    else:
        return False
    return True


def _emit_batch_result(value: Any, out: list[str], limit: int | None) -> bool:
    """The ``br`` envelope of a BatchResult, its items streamed (no ``to_dict()`` of a million
    items at once) when the class offers ``wire_items()``. With ``limit``, raises _TooLong as
    soon as the text written would be longer than ``limit``."""
    stream = getattr(value, "wire_items", None)
    if stream is None:
        out.append('{"t":"br","v":')
        if not _emit_members(value.to_dict(), out):
            return False
        out.append("}")
        return True
    items, reason = stream()
    start = len(out)
    out.append('{"t":"br","v":{"all":{"t":"l","v":[')
    size, mark = 0, start
    first = True
    for item in items:
        if not first:
            out.append(",")
        first = False
        if not _emit(item, out):
            return False
        if limit is not None:
            size += sum(map(len, out[mark:]))
            mark = len(out)
            if size > limit:
                raise _TooLong
    out.append(']},"completionReason":')
    if not _emit(reason, out):
        return False
    out.append("}}")
    return True


class _TooLong(Exception):
    """The text being written exceeds the caller's limit (see ``serialize_within``)."""


def _emit_members(mapping: dict[Any, Any], out: list[str]) -> bool:
    """``{"key":<envelope>,...}`` of a dict whose keys are str or int (JSON's key rules)."""
    out.append("{")
    first = True
    for key, item in mapping.items():
        if not first:
            out.append(",")
        first = False
        if key.__class__ is str:
            out.append(encode_basestring_ascii(key))
        elif key.__class__ is int:
            out.append(f'"{int.__repr__(key)}"')
        else:
            return False
        out.append(":")
        if not _emit(item, out):
            return False
    out.append("}")
    return True


# -- extended-type codec: decoding -------------------------------------------------------------


def _decode_inner(item: Any) -> Any:
    """Nested values: an object with both ``t`` and ``v`` is an envelope, anything else is kept."""
    if isinstance(item, dict) and "t" in item and "v" in item:
        return _decode_envelope(item["t"], item["v"])
    return item


def _expect(tag: str, value: Any, kind: type) -> None:
    if not isinstance(value, kind):
        raise SerDesError(
            f'Malformed "{tag}" envelope: expected {kind.__name__}, got {type(value).__name__}'
        )


def _decode_list(value: Any) -> list[Any]:
    _expect("l", value, list)
    return [_decode_inner(item) for item in value]


def _decode_tuple(value: Any) -> tuple[Any, ...]:
    _expect("t", value, list)
    return tuple(_decode_inner(item) for item in value)


def _decode_mapping(value: Any, tag: str = "m") -> dict[str, Any]:
    _expect(tag, value, dict)
    return {key: _decode_inner(item) for key, item in value.items()}


def _decode_bytes(value: Any) -> bytes:
    import base64

    return base64.b64decode(value)


def _decode_uuid(value: Any) -> Any:
    import uuid

    return uuid.UUID(value)


def _decode_decimal(value: Any) -> Any:
    from decimal import Decimal

    return Decimal(value)


def _decode_datetime(value: Any) -> _dt.datetime:
    if isinstance(value, str) and value.endswith("Z"):
        value = value[:-1] + "+00:00"
    return _dt.datetime.fromisoformat(value)


def _decode_none(_: Any) -> None:
    return None


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "n": _decode_none,
    "s": str,
    "b": bool,
    "i": int,
    "f": float,
    "B": _decode_bytes,
    "u": _decode_uuid,
    "d": _decode_decimal,
    "dt": _decode_datetime,
    "D": _dt.date.fromisoformat,
    "t": _decode_tuple,
    "l": _decode_list,
    "m": _decode_mapping,
}


def _decode_envelope(tag: Any, value: Any) -> Any:
    """Decode one envelope. Raises SerDesError for unknown tags or malformed containers."""
    if tag == "br":
        return _decode_batch_result(value)
    decode = _DECODERS.get(tag) if isinstance(tag, str) else None
    if decode is None:
        raise SerDesError(f'Unknown type tag: "{tag}"')
    return decode(value)


def _loads_extended(data: str) -> Any:
    """The value of a §10.2 wire string.

    Raises SerDesError for a root that is neither plain JSON nor an envelope, unknown tags and
    malformed containers; ValueError/TypeError (from ``json`` or a type constructor) for text that
    is not JSON or an envelope value its type cannot parse.
    """
    obj = json.loads(data)
    if _is_plain(obj):
        return obj
    if not (isinstance(obj, dict) and "t" in obj and "v" in obj):
        raise SerDesError('Malformed envelope: missing "t" or "v" at root.')
    return _decode_envelope(obj["t"], obj["v"])


# -- BatchResult hook (the class lives in the map/parallel layer, above this module) ------------


class BatchResultType(Protocol):
    """What the ``br`` tag needs from the BatchResult class.

    The class may also offer ``wire_items() -> (iterable of item dicts, completion reason)``:
    ``to_dict()``'s contents, produced one item at a time, which the encoder then streams.
    """

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> object: ...


_batch_result_type: type[BatchResultType] | None = None


def register_batch_result_type(cls: type[BatchResultType] | None) -> type[BatchResultType] | None:
    """Encode instances of ``cls`` with the ``br`` tag and decode ``br`` with ``cls.from_dict``.

    Until a class is registered (or after ``None`` is registered), ``br`` payloads decode to the
    plain dict. Returns the previously registered class so callers (tests) can restore it.
    """
    global _batch_result_type
    previous, _batch_result_type = _batch_result_type, cls
    _encoder_cache.clear()
    return previous


def _encode_batch_result(value: BatchResultType) -> dict[Any, dict[str, Any]]:
    return _encode_mapping(value.to_dict())


def _decode_batch_result(value: Any) -> Any:
    if _batch_result_type is None and "adurable._batch" not in sys.modules:
        import adurable._batch  # noqa: F401 - registers BatchResult (loaded on first use)
    mapping = _decode_mapping(value, "br")
    if _batch_result_type is None:
        return mapping
    return _batch_result_type.from_dict(mapping)


# -- the built-in SerDes ----------------------------------------------------------------------


class ExtendedTypeSerDes(SerDes[T]):
    """The default codec (§10.2): plain JSON for primitives, tagged envelopes for the rest.

    Supports None, str, int, float, bool, bytes/bytearray/memoryview, UUID, Decimal, datetime,
    date, tuple, list, dict (keys: anything JSON accepts except tuples) and the registered
    BatchResult class. ``serialize`` raises SerDesError for other types and tuple keys;
    ``deserialize`` raises SerDesError for payloads that are not in this format.
    """

    def serialize(self, value: T, context: SerDesContext | None = None) -> str:
        return _dumps_extended(value)

    def deserialize(self, data: str, context: SerDesContext | None = None) -> T:
        return cast(T, _loads_extended(data))


class JsonSerDes(SerDes[T]):
    """Plain ``json.dumps``/``json.loads`` with default (spaced) separators; used by invoke."""

    def serialize(self, value: T, context: SerDesContext | None = None) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, context: SerDesContext | None = None) -> T:
        return cast(T, json.loads(data))


class PassThroughSerDes(SerDes[str]):
    """Strings in, strings out; the default for callback results.

    ``serialize`` returns ``None`` for ``None`` (no payload) and raises SerDesError for anything
    that is not a ``str``.
    """

    def serialize(self, value: str | None, context: SerDesContext | None = None) -> str | None:
        if value is not None and not isinstance(value, str):
            raise SerDesError(
                f"PassThroughSerDes can only serialize str values, got {type(value)}; "
                "configure a serdes for this operation"
            )
        return value

    def deserialize(self, data: str, context: SerDesContext | None = None) -> str:
        return data


class _ReadBackSerDes(ExtendedTypeSerDes[T]):
    """The default codec, for values known to be in their read-back form already.

    A map/parallel's BatchResult holds item results that each went through the default codec
    (and ErrorObjects, which read back equal): decoding its payload again would give an equal
    value, so ``round_trip`` skips that for this codec. Decoding (replays) is the default one.
    """


EXTENDED_TYPES_SERDES: ExtendedTypeSerDes[Any] = ExtendedTypeSerDes()
#: See ``_ReadBackSerDes``: only for values that are their own round trip.
READ_BACK_SERDES: ExtendedTypeSerDes[Any] = _ReadBackSerDes()
DEFAULT_JSON_SERDES: JsonSerDes[Any] = JsonSerDes()
PASSTHROUGH_SERDES = PassThroughSerDes()


# -- what operations call ---------------------------------------------------------------------


def serialize(
    serdes: SerDes[T] | None, value: T, *, operation_id: str, execution_arn: str
) -> str | None:
    """Encode ``value`` with ``serdes`` (default: :data:`EXTENDED_TYPES_SERDES`).

    Raises SerDesError / RetryableSerDesError unchanged when the codec raises them; any other
    exception becomes ``SerDesError("Serialization failed for id: <id>, error: <e>.")`` chained
    to it.
    """
    try:
        if serdes is None:
            return _dumps_extended(value)
        return serdes.serialize(value, SerDesContext(operation_id, execution_arn))
    except (SerDesError, RetryableSerDesError):
        raise
    except Exception as exc:
        raise SerDesError(f"Serialization failed for id: {operation_id}, error: {exc}.") from exc


def serialize_within(
    value: Any, limit: int, *, operation_id: str, execution_arn: str
) -> str | None:
    """The default codec's payload of ``value`` if it is at most ``limit`` characters long,
    else None, found without writing all of a large BatchResult. Raises like ``serialize``.

    For a map/parallel result under the default codec (``READ_BACK_SERDES``): a payload over the
    ReplayChildren threshold is never recorded, and its items already went through this codec
    one by one (so no error can hide in the part not written).
    """
    try:
        if _batch_result_type is not None and value.__class__ is _batch_result_type:
            parts: list[str] = []
            try:
                done = _emit_batch_result(value, parts, limit)
            except _TooLong:
                return None
            payload = "".join(parts) if done else _dumps_extended(value)
        else:
            payload = _dumps_extended(value)
    except (SerDesError, RetryableSerDesError):
        raise
    except Exception as exc:
        raise SerDesError(f"Serialization failed for id: {operation_id}, error: {exc}.") from exc
    return payload if len(payload) <= limit else None


#: Exact types the default codec writes as plain JSON that reads back as an equal value of the
#: same type (str, int, bool, None; floats too, NaN and infinities included).
_SELF_ROUND_TRIPPING = frozenset({str, int, float, bool, type(None)})


def round_trip(
    serdes: SerDes[T] | None, value: T, *, operation_id: str, execution_arn: str
) -> tuple[str | None, T | None]:
    """``(payload, value as read back)``: what an operation records, and what user code gets on
    this run, so that it is the same as on replay (§10.3). Raises like ``serialize`` and
    ``deserialize``.

    A plain scalar under the default codec is its own round trip and is not decoded again.
    """
    payload = serialize(serdes, value, operation_id=operation_id, execution_arn=execution_arn)
    if payload is None:
        return None, None
    if serdes is READ_BACK_SERDES or (
        value.__class__ in _SELF_ROUND_TRIPPING
        and (serdes is None or serdes is EXTENDED_TYPES_SERDES)
    ):
        return payload, value
    return payload, deserialize(
        serdes, payload, operation_id=operation_id, execution_arn=execution_arn
    )


def deserialize(serdes: SerDes[T] | None, data: str, *, operation_id: str, execution_arn: str) -> T:
    """Decode ``data`` with ``serdes`` (default: :data:`EXTENDED_TYPES_SERDES`).

    Raises SerDesError / RetryableSerDesError unchanged when the codec raises them; any other
    exception becomes ``SerDesError("Deserialization failed for id: <id>, error: <e>.")`` chained
    to it.
    """
    try:
        if serdes is None:
            return cast(T, _loads_extended(data))
        return serdes.deserialize(data, SerDesContext(operation_id, execution_arn))
    except (SerDesError, RetryableSerDesError):
        raise
    except Exception as exc:
        raise SerDesError(f"Deserialization failed for id: {operation_id}, error: {exc}.") from exc
