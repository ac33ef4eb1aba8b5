"""The benchmark scripts still run (tiny sizes, adurable only, no timing assertions).

The real measurements are taken by hand with ``python benchmarks/run.py``; see
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import pytest
from benchmarks import fake, run
from benchmarks.case import run_case


@pytest.mark.parametrize(
    "spec",
    [
        {"workload": "map", "n": 7, "nesting": "NESTED", "concurrency": None},
        {"workload": "map", "n": 7, "nesting": "FLAT", "concurrency": 2},
        {"workload": "sequential", "n": 5},
        {"workload": "replay", "n": 5},
        {"workload": "parallel", "n": 5},
        {"workload": "sequential", "n": 3, "latency": 0.001},
        {"workload": "map", "n": 5, "latency": 0.001},
        {"workload": "one_step", "n": 1},
    ],
    ids=lambda spec: "-".join(str(v) for v in spec.values()),
)
def test_workload_runs_on_adurable(spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    # The latency cases wait in a worker thread; record the deadlines instead of sleeping.
    monkeypatch.setattr(
        fake, "_sleep_until", lambda deadline: delays.append(deadline - time.monotonic())
    )
    measured = run_case({"sdk": "adurable", **spec})
    if spec.get("latency"):
        assert len(delays) == measured["checkpoint_calls"]
        assert all(0 < delay <= spec["latency"] for delay in delays)
    else:
        assert delays == []
    assert measured["invocations"] == 1
    assert measured["wall"] > 0
    if spec["workload"] == "replay":
        assert measured["checkpoint_calls"] == 0  # everything was recorded already
    else:
        assert measured["checkpoint_calls"] >= 1


@pytest.mark.parametrize("workload", ["floor_asyncio", "floor_anyio", "floor_fake"])
def test_floor_runs(workload: str) -> None:
    assert run_case({"sdk": "none", "workload": workload, "n": 20})["wall"] > 0


def test_the_latency_floor_delays_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    monkeypatch.setattr(
        fake, "_sleep_until", lambda deadline: delays.append(deadline - time.monotonic())
    )
    measured = run_case({"sdk": "none", "workload": "floor_fake", "n": 100, "latency": 0.001})
    assert measured["checkpoint_calls"] == len(delays) == 2  # 402 updates in calls of 250


def test_a_case_runs_in_a_fresh_process_and_the_report_renders() -> None:
    args = argparse.Namespace(
        runs=1,
        only=None,
        max_n=10_000,
        with_1m=False,
        map_sizes=None,
        official_max_n=10_000,
        skip_official=True,
    )
    cases = run.build_cases(args)
    assert {case.group for case in cases} >= {"map", "sequential", "latency", "cold", "floor"}
    assert all(case.sdks in (("adurable",), ("none",)) for case in cases)
    cold = next(case for case in cases if case.group == "cold")
    cold.results["adurable"] = [run.run_once("adurable", cold.spec, timeout=120)]
    assert cold.results["adurable"][0]["first_checkpoint"] > 0
    for case in cases:
        if case.group != "cold" and not case.results:
            sdk = case.sdks[0]
            small = {**case.spec, "n": min(case.spec["n"], 3)}
            case.results[sdk] = [run_case({"sdk": sdk, **small})]
    table = run.report(cases, {}, args)
    assert "| map 1,000 NESTED c=∞ |" in table and "Cold start" in table
