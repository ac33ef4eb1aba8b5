"""Run the requirements on both backends and write ``tests/conformance/RESULTS.md``.

    .venv/bin/python -m tests.conformance.report

1. The local engine, asyncio and trio: ``pytest tests/conformance`` (the default suite, virtual
   time) with a JUnit XML report, read back per test id.
2. The official local emulator (``_emulator.run_all``: real time, about a minute per event loop),
   adurable's handlers on asyncio and on trio, each failure classified by
   ``_emulator.classify`` as known emulator gaps or something else.

Each column's summary is also kept in ``.cache/conformance/`` so that ``--skip-local`` or
``--skip-emulator`` re-renders the table with the other column's last results.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from tests.conformance._emulator import GAPS, PACKAGE, TARGET_LATENCY, VERSION, classify, run_all
from tests.conformance._registry import load_all
from tests.conformance._requirements import CACHE, ROOT, load_requirements
from tests.conformance.test_conformance import check

RESULTS = Path(__file__).with_name("RESULTS.md")
LOCAL_CACHE = CACHE / "results-local.json"
EMULATOR_CACHE = CACHE / "results-emulator.json"
_TEST_ID = re.compile(r"test_requirement\[(asyncio|trio)-([\d-]+)\]")


def _first_line(text: str, limit: int = 140) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Failed:", "tests/", "E ")):
            break
    else:
        line = text.strip().splitlines()[0] if text.strip() else ""
    line = line.replace("|", "\\|")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def run_local() -> dict[str, Any]:
    """``{"asyncio": {id: [passed, reason]}, "trio": {...}, "seconds": s}`` from pytest."""
    xml = CACHE / "local-junit.xml"
    command = [
        sys.executable, "-m", "pytest", "-q", "tests/conformance",
        "-p", "no:randomly", f"--junitxml={xml}",
    ]  # fmt: skip
    began = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    results: dict[str, Any] = {"asyncio": {}, "trio": {}}
    for case in ET.parse(xml).getroot().iter("testcase"):
        found = _TEST_ID.fullmatch(case.get("name", ""))
        if found is None:
            continue
        backend, requirement_id = found.groups()
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            results[backend][requirement_id] = [True, ""]
        else:
            text = problem.get("message") or problem.text or ""
            text = re.sub(r"^Failed:\s*", "", text)
            # The failure text opens with "<id> (<description>):" — skip to the first error.
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            reason = lines[1] if len(lines) > 1 and lines[0].startswith(requirement_id) else text
            results[backend][requirement_id] = [False, _first_line(reason)]
    results["seconds"] = round(time.monotonic() - began, 1)
    return results


def run_emulator(backend: str) -> dict[str, Any]:
    """``{"results": {id: [passed, gap keys, other reason]}, "seconds": s}`` from the emulator,
    the handlers running on ``backend``'s event loop."""
    requirements = load_requirements()
    began = time.monotonic()
    outcome = run_all(requirements, load_all(), check, backend=backend)
    results: dict[str, Any] = {}
    for requirement_id, result in outcome.items():
        if result.passed:
            results[requirement_id] = [True, [], ""]
            continue
        gaps, remaining = classify(result, check)
        reason = _first_line(remaining[0]) if remaining else ""
        results[requirement_id] = [False, [gap.key for gap in gaps], reason]
    return {"results": results, "seconds": round(time.monotonic() - began, 1)}


def _cell(passed: bool | None) -> str:
    return "—" if passed is None else ("pass" if passed else "**FAIL**")


BACKENDS = ("asyncio", "trio")


def _emulator_cell(found: list[Any] | None) -> tuple[str, str, str]:
    """(cell, note, counted as) of one requirement's emulator result."""
    if found is None:
        return "—", "", ""
    if found[0]:
        return "pass", "", "pass"
    if found[1]:
        return "gap", "known gaps: " + ", ".join(f"`{key}`" for key in found[1]), "gaps"
    return "**FAIL**", "OTHER: " + found[2], "other"


def render(local: dict[str, Any], emulators: dict[str, dict[str, Any]]) -> str:
    requirements = load_requirements()
    rows = []
    counts = {backend: 0 for backend in BACKENDS}
    emulator_counts = {backend: {"pass": 0, "gaps": 0, "other": 0, "": 0} for backend in BACKENDS}
    for requirement_id, spec in requirements.items():
        cells = []
        for backend in BACKENDS:
            got = local.get(backend, {}).get(requirement_id)
            cells.append(_cell(None if got is None else got[0]))
            counts[backend] += bool(got and got[0])
        notes: list[str] = []
        for backend in BACKENDS:
            found = emulators.get(backend, {}).get("results", {}).get(requirement_id)
            cell, emulator_note, counted = _emulator_cell(found)
            cells.append(cell)
            emulator_counts[backend][counted] += 1
            if emulator_note and emulator_note not in notes:
                notes.append(emulator_note)
        note = "; ".join(notes)
        local_notes = [
            f"{backend}: {local[backend][requirement_id][1]}"
            for backend in ("asyncio", "trio")
            if requirement_id in local.get(backend, {}) and not local[backend][requirement_id][0]
        ]
        if local_notes:
            note = "; ".join([*local_notes, note] if note else local_notes)
        description = str(spec["description"]).replace("|", "\\|")
        rows.append(
            f"| {requirement_id} | {spec['suite']} | {description} | "
            + " | ".join(cells)
            + f" | {note} |"
        )
    total = len(requirements)
    summary = "\n".join(
        [
            *(
                f"| local engine, {backend} (virtual time) | {counts[backend]}/{total} | — "
                f"| {total - counts[backend]} |"
                for backend in ("asyncio", "trio")
            ),
            *(
                f"| official emulator `{PACKAGE}` {VERSION}, adurable on {backend} (real time) "
                f"| {emulator_counts[backend]['pass']}/{total} "
                f"| {emulator_counts[backend]['gaps']} | {emulator_counts[backend]['other']} |"
                for backend in BACKENDS
            ),
        ]
    )
    emulator = emulators.get("asyncio", {})
    needing = {
        gap.key: sum(1 for found in emulator.get("results", {}).values() if gap.key in found[1])
        for gap in GAPS
    }
    seconds = ", ".join(
        f"{emulators.get(backend, {}).get('seconds', '?')} s ({backend})" for backend in BACKENDS
    )
    gap_lines = "\n".join(f"| `{gap.key}` | {gap.title} | {needing[gap.key]} |" for gap in GAPS)
    return (
        f"""# Conformance results

The official conformance suite (`aws-durable-execution-conformance-tests` 1.0.0, {total}
requirements) run on two backends with the same handlers (`handlers/`), the same matcher
(`_match.py`) and the same check (`test_conformance.check`).

Regenerate this file (both backends, ~2 min):

    .venv/bin/python -m tests.conformance.report

Run the backends as tests:

    .venv/bin/python -m pytest -q tests/conformance                         # local engine
    .venv/bin/python -m pytest -q tests/conformance --conformance-emulator  # + the emulator

(The emulator tests never run by default: the default CI command deselects them.)

## Summary

| backend | passed strictly | failed only on known emulator gaps | failed otherwise |
|---|---|---|---|
{summary}

Wall time: local {local.get("seconds", "?")} s (both event loops), emulator {seconds}.

## The emulator backend

`dex-local-runner start-server` (installed on first use into `.cache/conformance/emulator-venv`,
never into adurable's venv) keeps the executions and serves the durable-execution REST API. It
runs a handler by calling Lambda `Invoke` on an endpoint we give it: `_emulator.LambdaEndpoint`,
a small HTTP server in the test process that runs the registered adurable handler with the
invocation envelope on one long-lived event loop (a warm Lambda runtime's) and an aiobotocore
`lambda` client configured exactly like adurable's own (`lambda_client_config`), pointed at the
emulator. So every checkpoint and every state page adurable sends crosses the real wire to an
implementation we did not write. Invoke targets are functions on the same endpoint, declared to
the emulator with `--function-configs` (durable ones with a `DurableConfig`); a target waits
{TARGET_LATENCY} s before it runs, as a separate Lambda function never answers within the few
milliseconds the caller's own invocation takes to end (without it, the emulator records a local
echo target's `ChainedInvokeSucceeded` before the caller's `InvocationCompleted`, an order the
real service never produces). A handler's `sys.exit` is answered as Lambda answers a runtime
exit (`Runtime.ExitError` function error).

The driver plays the suite's polling runner in real time (no `--skip-time`): start the
execution, poll the history, answer `CallbackActions` after their `Delay`, stop at a terminal
status or after 30 s without a new event; all requirements run in parallel on one emulator.

### Known emulator gaps

The strict result is what counts. A strict failure is put down to known gaps only when the
requirement passes against its expected history relaxed for exactly those gaps (each gap drops
what the emulator does not record, nothing else; see `_emulator.GAPS`); the table names the
gaps each such requirement needs. Anything else is reported as OTHER.

| gap | what the emulator does not record | requirements needing it (asyncio run) |
|---|---|---|
{gap_lines}

### Found and fixed: absolute-form request targets on trio

The first trio run failed every invocation at its first checkpoint: on trio adurable's client
uses aiobotocore's `HttpxSession` (aiobotocore 3.10), which hands httpx the full URL as the raw
request target, so request lines read `POST http://host:port/2025-12-01/… HTTP/1.1`. HTTP/1.1
servers must accept that form (RFC 9112 §3.2.2), but the emulator's router answers
`500 Unknown path pattern`. adurable's trio session now restores the origin form
(`POST /2025-12-01/…`, as aiohttp sends on asyncio): `_service._origin_form_httpx_session`, with
the request line asserted in `tests/service/test_service_client.py` on both event loops.

One more known gap does not show here: with `--skip-time` the emulator advances one virtual
clock for all executions at once; this run uses real time instead.

## Per requirement

"gap": failed strictly, passes once the named emulator gaps are discounted.

| id | suite | description | local asyncio | local trio | emulator asyncio | emulator trio | notes |
|---|---|---|---|---|---|---|---|
"""
        + "\n".join(rows)
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--skip-local", action="store_true", help="reuse the last local results")
    parser.add_argument(
        "--skip-emulator", action="store_true", help="reuse the last emulator results"
    )
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    if args.skip_local and LOCAL_CACHE.exists():
        local = json.loads(LOCAL_CACHE.read_text())
    else:
        local = run_local()
        LOCAL_CACHE.write_text(json.dumps(local))
    if args.skip_emulator and EMULATOR_CACHE.exists():
        emulators = json.loads(EMULATOR_CACHE.read_text())
    else:
        emulators = {backend: run_emulator(backend) for backend in BACKENDS}
        EMULATOR_CACHE.write_text(json.dumps(emulators))
    RESULTS.write_text(render(local, emulators))
    sys.stdout.write(f"wrote {RESULTS.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
