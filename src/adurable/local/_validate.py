"""Input validation of the local service: limits, name grammars and §3.7 update checks.

Every function here either returns parsed data or raises ``ServiceError`` (400
``InvalidParameterValueException`` unless said otherwise) before any state changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from adurable._wire import ErrorObject, Operation, OperationUpdate
from adurable.local._model import invalid

__all__ = (
    "CALLBACK_RESULT_LIMIT",
    "CLIENT_TOKEN_RE",
    "EXECUTION_NAME_RE",
    "FUNCTION_RE",
    "INVOKE_PAYLOAD_LIMIT",
    "MAX_CALLBACK_TIMEOUT",
    "MAX_DURATION_SECONDS",
    "MAX_PAGE",
    "PAYLOAD_LIMIT",
    "QUALIFIER_RE",
    "TENANT_RE",
    "check_consistent",
    "check_output",
    "check_range",
    "no_error",
    "no_payload",
    "parse_marker",
    "parse_target",
    "parse_update",
)

# Limits (PROTOCOL §3.5).
PAYLOAD_LIMIT = 6 * 1024 * 1024
ERROR_JSON_LIMIT = 32_768
INVOKE_PAYLOAD_LIMIT = 1024 * 1024
CALLBACK_RESULT_LIMIT = 1024 * 1024
MAX_DURATION_SECONDS = 31_622_400
MAX_CALLBACK_TIMEOUT = 99_999_999
MAX_PAGE = 1000

ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
EXECUTION_NAME_RE = ID_RE
NAME_RE = re.compile(r"[\x20-\x7E]{1,256}")
SUBTYPE_RE = re.compile(r"[a-zA-Z0-9_-]{1,32}")
CLIENT_TOKEN_RE = re.compile(r"[\x21-\x7E]{1,64}")
TENANT_RE = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")
FUNCTION_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
QUALIFIER_RE = re.compile(r"\$LATEST|\$LATEST\.PUBLISHED|[0-9]+")
#: A function: name, partial ARN or full ARN, each with an optional qualifier.
TARGET_RE = re.compile(
    r"(?:(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):)?(?P<account>\d{12}):function:)?"
    r"(?P<name>[a-zA-Z0-9_-]{1,64})"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]{1,128}))?"
)


def parse_target(function_name: str, region: str, account: str) -> tuple[str, str | None] | None:
    """(bare name, qualifier or None) of a function name or ARN in ``account``/``region``."""
    match = TARGET_RE.fullmatch(function_name)
    if match is None:
        return None
    if (match["region"] is not None and match["region"] != region) or (
        match["account"] is not None and match["account"] != account
    ):
        return None
    return match["name"], match["qualifier"]


def parse_update(index: int, raw: Any) -> OperationUpdate:
    """One ``Updates[index]`` entry as an OperationUpdate, with the MODEL field grammars."""
    if not isinstance(raw, dict):
        raise invalid(f"Updates[{index}] must be an object")
    try:
        update = OperationUpdate.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise invalid(
            f"Updates[{index}]: malformed operation update ({loc}: {first['msg']})"
        ) from exc
    _check_fields(f"Updates[{index}]", update, raw)
    return update


def _check_fields(where: str, update: OperationUpdate, raw: dict[str, Any]) -> None:
    if not ID_RE.fullmatch(update.id):
        raise invalid(f"{where}: Id must match [a-zA-Z0-9_-]{{1,64}}: {update.id!r}")
    if update.parent_id is not None and not ID_RE.fullmatch(update.parent_id):
        raise invalid(f"{where}: ParentId must match [a-zA-Z0-9_-]{{1,64}}")
    if update.name is not None and not NAME_RE.fullmatch(update.name):
        raise invalid(f"{where}: Name must be 1-256 printable ASCII characters")
    if update.sub_type is not None and not SUBTYPE_RE.fullmatch(update.sub_type):
        raise invalid(f"{where}: SubType must match [a-zA-Z0-9_-]{{1,32}}")
    if update.payload is not None and len(update.payload) > PAYLOAD_LIMIT:
        raise invalid(f"{where}: Payload exceeds {PAYLOAD_LIMIT} characters")
    if raw.get("Error") is not None:
        size = len(json.dumps(raw["Error"]))
        if size > ERROR_JSON_LIMIT:
            raise invalid(
                f"{where}: error object is {size} characters as JSON; "
                f"the limit is {ERROR_JSON_LIMIT}"
            )


def check_consistent(where: str, update: OperationUpdate, current: Operation) -> None:
    """An update must repeat the Type, SubType, Name and ParentId recorded for its id."""
    pairs = (
        ("Type", update.type, current.type),
        ("SubType", update.sub_type or None, current.sub_type),
        ("Name", update.name or None, current.name),
        ("ParentId", update.parent_id or None, current.parent_id),
    )
    for label, sent, stored in pairs:
        if sent != stored:
            raise invalid(
                f"{where}: Inconsistent operation {label}: "
                f"recorded {stored!r}, update says {sent!r}"
            )


def check_range(where: str, label: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise invalid(f"{where}: {label} must be within {low}..{high}, got {value}")


def no_error(u: OperationUpdate, where: str) -> None:
    if u.error is not None:
        raise invalid(f"{where}: SUCCEED must not carry an Error")


def no_payload(u: OperationUpdate, where: str) -> None:
    if u.payload is not None:
        raise invalid(f"{where}: FAIL must not carry a Payload")


def parse_marker(marker: str) -> tuple[str, int, int]:
    """``ops:<offset>`` or ``delta:<n>:<offset>`` → (kind, delta number, offset)."""
    parts = marker.split(":")
    try:
        if parts[0] == "ops" and len(parts) == 2:
            kind, seq, offset = "ops", 0, int(parts[1])
        elif parts[0] == "delta" and len(parts) == 3:
            kind, seq, offset = "delta", int(parts[1]), int(parts[2])
        else:
            raise ValueError(marker)
    except ValueError:
        raise invalid(f"Invalid marker {marker!r}") from None
    if offset < 0:
        raise invalid(f"Invalid marker {marker!r}")
    return kind, seq, offset


def check_output(output: Any, *, can_pend: bool) -> tuple[str | None, str, ErrorObject | None]:
    """Check a handler's §2.5 answer: (problem or None, Status, parsed Error).

    ``can_pend`` says whether PENDING is acceptable (something is pending, the handler missed
    a change, or the service withdrew its token).
    """
    if not isinstance(output, Mapping):
        return f"Handler output must be an object, got {type(output).__name__}", "", None
    status = output.get("Status")
    if status not in ("SUCCEEDED", "FAILED", "PENDING"):
        return f"Invalid invocation Status {status!r}", "", None
    error: ErrorObject | None = None
    if output.get("Error") is not None:
        try:
            error = ErrorObject.model_validate(output["Error"])
        except ValidationError as exc:
            return f"Malformed Error in handler output: {exc}", status, None
    result = output.get("Result")
    if result is not None and not isinstance(result, str):
        return "Result must be a string", status, None
    if status == "FAILED" and result is not None:
        return "Cannot return FAILED status with a Result.", status, None
    if status == "SUCCEEDED" and error is not None:
        return "Cannot return SUCCEEDED status with an Error.", status, None
    if status == "PENDING":
        if result is not None or error is not None:
            return "Cannot return PENDING status with a Result or an Error.", status, None
        if not can_pend:
            return "Cannot return PENDING status with no pending operations.", status, None
    return None, status, error
