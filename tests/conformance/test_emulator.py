"""The same requirements, handlers and matcher, against the official local emulator.

Opt-in (``pytest tests/conformance --conformance-emulator``): see ``_emulator``. All
requirements run once per event loop adurable's handlers run on (asyncio, trio), in parallel,
for the session; each test then reports its own. A
requirement the emulator fails only because of its known gaps (``_emulator.GAPS``) is an xfail
naming them; any other failure fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.conformance._emulator import EmulatorResult, classify, run_all
from tests.conformance._registry import load_all
from tests.conformance._requirements import load_requirements
from tests.conformance.test_conformance import check

pytestmark = pytest.mark.emulator

REQUIREMENTS = load_requirements()


@pytest.fixture(scope="session")
def emulator_runs(request: pytest.FixtureRequest) -> Callable[[str], dict[str, EmulatorResult]]:
    """The selected requirements, all run at once on one emulator per event loop (lazily)."""
    runs: dict[str, dict[str, EmulatorResult]] = {}

    def results(backend: str) -> dict[str, EmulatorResult]:
        if backend not in runs:
            selected = {
                item.callspec.params["requirement_id"]
                for item in request.session.items
                if item.get_closest_marker("emulator")
                and hasattr(item, "callspec")
                and item.callspec.params.get("handler_loop") == backend
            }
            wanted = {rid: spec for rid, spec in REQUIREMENTS.items() if rid in selected}
            runs[backend] = run_all(wanted, load_all(), check, backend=backend)
        return runs[backend]

    return results


@pytest.mark.parametrize("requirement_id", list(REQUIREMENTS))
@pytest.mark.parametrize("handler_loop", ["asyncio", "trio"])
def test_requirement_on_emulator(
    handler_loop: str,
    requirement_id: str,
    emulator_runs: Callable[[str], dict[str, EmulatorResult]],
) -> None:
    result = emulator_runs(handler_loop)[requirement_id]
    if result.passed:
        return
    gaps, remaining = classify(result, check)
    if not remaining:
        pytest.xfail("emulator gaps: " + "; ".join(gap.title for gap in gaps))
    outcome = result.outcome
    detail: list[Any] = []
    if outcome is not None:
        detail = [*outcome.notes, "-- history:", *(json.dumps(e) for e in outcome.events)]
    pytest.fail(
        f"{requirement_id} ({result.spec['description']}) on the emulator:\n  "
        + "\n  ".join(result.errors)
        + "\n-- not explained by known emulator gaps:\n  "
        + "\n  ".join(remaining)
        + "\n"
        + "\n".join(str(line) for line in detail)
    )
