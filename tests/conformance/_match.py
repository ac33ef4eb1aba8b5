"""The suite's matching rules, implemented here (read from the package, not copied).

History: expected events are found in the actual history by ``EventId``; extra actual events are
ignored. Inside an event, an expected ``{}`` or ``'*'`` accepts anything (but ``'*'`` needs the key
to be present, as every expected key does); ``${NAME}`` binds on first sight and must then match
the same value everywhere (variables from ``Variables`` are bound before matching);
``${/re/}`` is a regex search; dicts compare on expected keys only; lists element-wise with equal
length; anything else literally, after substituting bound ``${NAME}`` inside strings.

Result: the status must be equal; for SUCCEEDED and an expected ``Result``, the JSON-decoded
result must equal the expected value with placeholders substituted.

Logs (``ExpectedLogs``): each line is a record (a JSON object's top-level keys, or just
``message`` for a plain line); ``match`` fields are ANDed, strings compared stripped or as
``/re/`` searches; ``count``/``min_count``/``max_count`` (default: at least one) over all records;
``before``/``after`` anchors order all matches against all anchor matches, an anchor that matches
nothing being an error.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from typing import Any

_GEN_STR = re.compile(r"^\$\{GEN_STR:(\d+)\}$")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PLACEHOLDER = re.compile(r"^\$\{(.+)\}$")
_REGEX = re.compile(r"^\$\{/(.+)/\}$")
_ALPHABET = string.ascii_lowercase + string.digits


class Bindings:
    """Placeholder values: the requirement's variables, then what matching binds."""

    def __init__(self, variables: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = {}
        for name, value in (variables or {}).items():
            generated = _GEN_STR.match(value) if isinstance(value, str) else None
            if generated:
                size = int(generated.group(1))
                self.values[name] = "".join(secrets.choice(_ALPHABET) for _ in range(size))
            else:
                self.values[name] = value if isinstance(value, str) else str(value)

    def substitute(self, data: Any) -> Any:
        """``data`` with every bound ``${NAME}`` inside its strings replaced."""
        if isinstance(data, str):
            return _REFERENCE.sub(
                lambda m: str(self.values[m.group(1)]) if m.group(1) in self.values else m.group(0),
                data,
            )
        if isinstance(data, dict):
            return {key: self.substitute(value) for key, value in data.items()}
        if isinstance(data, list):
            return [self.substitute(item) for item in data]
        return data


def _regex(value: Any) -> re.Pattern[str] | None:
    if isinstance(value, str):
        found = _REGEX.match(value)
        if found:
            return re.compile(found.group(1))
    return None


def match_history(
    expected: list[dict[str, Any]], actual: list[dict[str, Any]], bindings: Bindings
) -> list[str]:
    """Errors (empty: the history matches)."""
    errors: list[str] = []
    by_id = {event["EventId"]: event for event in actual if "EventId" in event}
    for want in expected:
        event_id = want.get("EventId")
        if event_id is None:
            errors.append(f"expected event without EventId: {want}")
            continue
        got = by_id.get(event_id)
        if got is None:
            errors.append(f"no actual event with EventId={event_id}")
            continue
        _match(want, got, f"Event[{event_id}]", bindings, errors)
    return errors


def _match(want: Any, got: Any, path: str, bindings: Bindings, errors: list[str]) -> None:
    if (isinstance(want, dict) and not want) or want == "*":
        return
    pattern = _regex(want)
    if pattern is not None:
        if not pattern.search(str(got)):
            errors.append(f"{path}: {got!r} does not match /{pattern.pattern}/")
        return
    if isinstance(want, str):
        name = _PLACEHOLDER.match(want)
        if name:
            key = name.group(1)
            if key not in bindings.values:
                bindings.values[key] = got
            elif bindings.values[key] != got:
                errors.append(f"{path}: ${{{key}}} is {bindings.values[key]!r}, got {got!r}")
            return
    if isinstance(want, dict) and isinstance(got, dict):
        for key, value in want.items():
            if key not in got:
                errors.append(f"{path}.{key}: missing")
            else:
                _match(value, got[key], f"{path}.{key}", bindings, errors)
        return
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            errors.append(f"{path}: {len(got)} items, expected {len(want)}")
            return
        for index, (w, g) in enumerate(zip(want, got, strict=True)):
            _match(w, g, f"{path}[{index}]", bindings, errors)
        return
    resolved = bindings.substitute(want)
    if resolved != got:
        errors.append(f"{path}: expected {resolved!r}, got {got!r}")


def match_result(
    expected: dict[str, Any], execution: dict[str, Any], bindings: Bindings
) -> list[str]:
    """Errors comparing ``ExpectedResult`` with a GetDurableExecution answer."""
    status = execution.get("Status")
    want_status = expected.get("ExecutionStatus")
    if want_status and status != want_status:
        return [
            f"ExecutionStatus: expected {want_status!r}, got {status!r} ({execution.get('Error')})"
        ]
    if status != "SUCCEEDED" or "Result" not in expected:
        return []
    raw = execution.get("Result")
    got: Any = None
    if raw is not None:
        try:
            got = json.loads(raw)
        except (TypeError, ValueError):
            got = raw
    want = bindings.substitute(expected["Result"])
    return [] if got == want else [f"Result: expected {want!r}, got {got!r}"]


# -- logs ----------------------------------------------------------------------------------------


def _record(line: str) -> dict[str, Any]:
    text = line.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"message": text}


def _value_matches(want: Any, got: Any) -> bool:
    if isinstance(want, str):
        text = str(got).strip()
        if len(want) >= 2 and want.startswith("/") and want.endswith("/"):
            return re.search(want[1:-1], text) is not None
        return text == want.strip()
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return float(want) == float(got)
    return bool(want == got)


def _matching(matcher: dict[str, Any], records: list[dict[str, Any]]) -> list[int]:
    return [
        index
        for index, record in enumerate(records)
        if all(
            key in record and _value_matches(value, record[key]) for key, value in matcher.items()
        )
    ]


def match_logs(expected: list[dict[str, Any]], lines: list[str], bindings: Bindings) -> list[str]:
    """Errors comparing ``ExpectedLogs`` with the captured lines (in the order written)."""
    errors: list[str] = []
    records = [_record(line) for line in lines]
    for index, raw in enumerate(expected):
        entry = bindings.substitute(raw)
        matcher = entry["match"]
        label = f"ExpectedLogs[{index}] {matcher}"
        own = _matching(matcher, records)
        count, low, high = entry.get("count"), entry.get("min_count"), entry.get("max_count")
        if count is not None:
            if len(own) != count:
                errors.append(f"{label}: {len(own)} matches, expected {count}")
        else:
            if low is None and high is None:
                low = 1
            if low is not None and len(own) < low:
                errors.append(f"{label}: {len(own)} matches, expected at least {low}")
            if high is not None and len(own) > high:
                errors.append(f"{label}: {len(own)} matches, expected at most {high}")
        for direction in ("after", "before"):
            anchors = entry.get(direction) or []
            for anchor in [anchors] if isinstance(anchors, dict) else anchors:
                hits = _matching(anchor, records)
                if not hits:
                    errors.append(f"{label}: {direction} anchor {anchor} matched no record")
                elif own and direction == "after" and own[0] < hits[-1]:
                    errors.append(f"{label}: a match comes before anchor {anchor}")
                elif own and direction == "before" and own[-1] > hits[0]:
                    errors.append(f"{label}: a match comes after anchor {anchor}")
    return errors
