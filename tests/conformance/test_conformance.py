"""The official conformance requirements (155), each run strictly on the local engine.

Nothing is normalised: the history the engine records is matched with the suite's rules as is
(see ``_match``), the result as ``GetDurableExecution`` reports it, and — for the requirements
with ``ExpectedLogs`` — the lines the function wrote, in order. Runs on asyncio and trio.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.conformance._local import run_local
from tests.conformance._match import Bindings, match_history, match_logs, match_result
from tests.conformance._registry import BROKEN, load_all
from tests.conformance._requirements import load_requirements

pytestmark = pytest.mark.anyio

REQUIREMENTS = load_requirements()


def check(
    spec: dict[str, Any],
    events: list[dict[str, Any]],
    execution: dict[str, Any],
    logs: list[str] | None,
    bindings: Bindings,
) -> list[str]:
    """Every way the outcome differs from the requirement (empty: it passes)."""
    errors = match_history(spec.get("ExpectedExecutionHistory") or [], events, bindings)
    if spec.get("ExpectedResult"):
        errors += match_result(spec["ExpectedResult"], execution, bindings)
    if logs is not None and spec.get("ExpectedLogs"):
        errors += match_logs(spec["ExpectedLogs"], logs, bindings)
    return errors


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@pytest.mark.parametrize("requirement_id", list(REQUIREMENTS))
async def test_requirement(requirement_id: str) -> None:
    spec = REQUIREMENTS[requirement_id]
    entry = load_all().get(requirement_id)
    if entry is None:
        pytest.fail(
            f"no handler registered for requirement {requirement_id}: {spec['description']}"
            + (f" (broken handler modules: {BROKEN})" if BROKEN else "")
        )
    bindings = Bindings(spec.get("Variables"))
    outcome = await run_local(spec, entry, bindings)
    events = _jsonable(outcome.events)
    errors = outcome.errors + check(
        spec, events, _jsonable(outcome.execution), outcome.logs, bindings
    )
    if errors:
        history = "\n".join(json.dumps(event) for event in events)
        pytest.fail(
            f"{requirement_id} ({spec['description']}):\n  "
            + "\n  ".join(errors)
            + "\n-- notes:\n  "
            + "\n  ".join(outcome.notes)
            + f"\n-- history:\n{history}\n-- logs:\n"
            + "\n".join(outcome.logs)
        )
