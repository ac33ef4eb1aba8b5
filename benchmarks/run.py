"""adurable vs the official SDK, side by side: ``python benchmarks/run.py [options]``.

Every case runs in a fresh process, ``--runs`` times (default 3), for each SDK; the table gives
the median wall time with min-max, and ratios measured in the same run (these machines are
noisy: prefer the ratios). Both SDKs are driven the way Lambda drives them (invocation envelope
in, output out, re-invoked on PENDING) against the same in-memory fake service
(``benchmarks/fake.py``). The official SDK (``aws-durable-execution-sdk-python`` 3.0.0) is
installed into ``benchmarks/.venv-official`` on first use.

Examples::

    python benchmarks/run.py                      # everything except the 1M maps
    python benchmarks/run.py --only map --max-n 10000
    python benchmarks/run.py --only cold,latency --runs 5
    python benchmarks/run.py --with-1m --write    # also write the table into RESULTS.md

Workload groups (``--only``): map, sequential, replay, parallel, latency, cold, floor.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OFFICIAL_VENV = HERE / ".venv-official"
OFFICIAL_PACKAGE = "aws-durable-execution-sdk-python==3.0.0"
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
LATENCY = 0.020


@dataclass
class Case:
    group: str
    label: str
    spec: dict[str, Any]
    sdks: tuple[str, ...] = ("adurable", "official")
    note: str = ""
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


# -- the cases -----------------------------------------------------------------------------------


def build_cases(args: argparse.Namespace) -> list[Case]:
    cases: list[Case] = []
    sizes = [1_000, 10_000, 100_000] + ([1_000_000] if args.with_1m else [])
    if args.map_sizes:
        sizes = [int(size) for size in args.map_sizes.split(",")]
    for n in sizes:
        if n > args.max_n:
            continue
        for nesting in ("NESTED", "FLAT"):
            for concurrency in (None, 64):
                sdks: tuple[str, ...] = ("adurable", "official")
                note = ""
                if n > args.official_max_n:
                    sdks, note = ("adurable",), f"official skipped above {args.official_max_n:,}"
                label = f"map {n:,} {nesting} c={concurrency or '∞'}"
                spec = {"workload": "map", "n": n, "nesting": nesting, "concurrency": concurrency}
                cases.append(Case("map", label, spec, sdks, note))
    for n in (100, 1_000, 10_000):
        if n <= args.max_n:
            cases.append(
                Case("sequential", f"sequential {n:,}", {"workload": "sequential", "n": n})
            )
    for n in (1_000, 10_000):
        if n <= args.max_n:
            cases.append(Case("replay", f"replay {n:,}", {"workload": "replay", "n": n}))
    cases.append(Case("parallel", "parallel 1,000", {"workload": "parallel", "n": 1_000}))
    cases.append(
        Case(
            "latency", "chain 100 +20 ms", {"workload": "sequential", "n": 100, "latency": LATENCY}
        )
    )
    if args.max_n >= 10_000:
        spec = {"workload": "map", "n": 10_000, "latency": LATENCY}
        cases.append(Case("latency", "map 10,000 +20 ms", spec))
        spec = {"workload": "floor_fake", "n": 10_000, "latency": LATENCY}
        label = "no SDK: the map's 161 calls to the fake, +20 ms each"
        cases.append(Case("latency", label, spec, ("none",)))
    cases.append(
        Case("cold", "cold: one-step handler", {"workload": "one_step", "n": 1, "cold": True})
    )
    for n in (10_000, 100_000):
        if n <= args.max_n:
            for floor in ("floor_asyncio", "floor_anyio", "floor_fake"):
                label = f"{floor.removeprefix('floor_')} {n:,}"
                cases.append(Case("floor", label, {"workload": floor, "n": n}, ("none",)))
    if args.only:
        wanted = set(args.only.split(","))
        cases = [c for c in cases if c.group in wanted]
    if args.skip_official:
        for case in cases:
            case.sdks = tuple(s for s in case.sdks if s != "official")
    return cases


# -- running ---------------------------------------------------------------------------------------


def python_for(sdk: str) -> str:
    if sdk == "official":
        return str(OFFICIAL_VENV / "bin" / "python")
    return sys.executable


def ensure_official() -> None:
    python = OFFICIAL_VENV / "bin" / "python"
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import aws_durable_execution_sdk_python"], capture_output=True
        )
        if probe.returncode == 0:
            return
    print(f"installing {OFFICIAL_PACKAGE} into {OFFICIAL_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(OFFICIAL_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", OFFICIAL_PACKAGE], check=True)


def run_once(sdk: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    spec = {**spec, "sdk": sdk, "spawned_at": time.time()}
    proc = subprocess.run(
        [python_for(sdk), "-m", "benchmarks.case", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def import_time(sdk: str, module: str, runs: int) -> dict[str, Any]:
    """``import <module>`` in a fresh process: wall time (perf_counter) and -X importtime's
    cumulative figure, median of ``runs``; plus whether botocore got imported."""
    code = (
        f"import time, sys; t = time.perf_counter(); import {module}; "
        "print(time.perf_counter() - t, 'botocore' in sys.modules)"
    )
    walls, cumulative, botocore = [], [], False
    for _ in range(runs):
        out = subprocess.run(
            [python_for(sdk), "-c", code], capture_output=True, text=True, check=True, cwd="/"
        ).stdout.split()
        walls.append(float(out[0]))
        botocore = botocore or out[1] == "True"
        trace = subprocess.run(
            [python_for(sdk), "-X", "importtime", "-c", f"import {module}"],
            capture_output=True, text=True, check=True, cwd="/",
        ).stderr  # fmt: skip
        for line in trace.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2] == module:
                cumulative.append(int(parts[1]) / 1e6)
    return {"wall": walls, "importtime": cumulative, "botocore": botocore}


def run_cases(cases: list[Case], args: argparse.Namespace) -> None:
    for case in cases:
        for sdk in case.sdks:
            runs = case.results.setdefault(sdk, [])
            for i in range(args.runs):
                timeout = args.official_timeout if sdk == "official" else args.timeout
                try:
                    runs.append(run_once(sdk, case.spec, timeout))
                except subprocess.TimeoutExpired:
                    case.errors[sdk] = f"timed out after {timeout:.0f} s"
                    break
                except RuntimeError as exc:
                    case.errors[sdk] = str(exc)
                    break
                print(f"  {case.label:<28} {sdk:<9} run {i + 1}: {runs[-1]['wall']:.3f} s",
                      file=sys.stderr)  # fmt: skip


# -- reporting -------------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def fmt_s(values: list[float]) -> str:
    if not values:
        return "-"
    m = med(values)
    unit, scale = ("ms", 1000) if m < 1 else ("s", 1)
    digits = 0 if unit == "ms" and m >= 0.1 else (1 if unit == "ms" else 2)
    return (
        f"{m * scale:.{digits}f} {unit} ({min(values) * scale:.{digits}f}-"
        f"{max(values) * scale:.{digits}f})"
    )


def field_of(case: Case, sdk: str, key: str) -> list[float]:
    return [r[key] for r in case.results.get(sdk, []) if r.get(key) is not None]


def ratio(case: Case, key: str = "wall") -> str:
    a, o = field_of(case, "adurable", key), field_of(case, "official", key)
    if not a or not o:
        return "-"
    return f"{med(o) / med(a):.1f}x"


def bound_of(case: Case, sdk: str) -> float | None:
    runs = case.results.get(sdk) or []
    if not runs:
        return None
    latency = case.spec.get("latency") or 0
    if case.spec["workload"] == "sequential":
        return case.spec["n"] * latency
    return math.ceil(runs[0]["updates"] / 250) * latency


def times_bound(case: Case, sdk: str) -> str:
    """The median wall time of ``sdk`` as a multiple of the case's lower bound."""
    bound, walls = bound_of(case, sdk), field_of(case, sdk, "wall")
    return f"{med(walls) / bound:.2f}x" if bound and walls else "-"


def calls_cell(case: Case, sdk: str) -> str:
    runs = case.results.get(sdk) or []
    if not runs:
        return "-"
    r = runs[0]
    if case.spec["workload"] not in ("map", "parallel"):
        return str(r["checkpoint_calls"])  # one call per sequential sync update
    return f"{r['checkpoint_calls']} / {math.ceil(r['updates'] / 250)}"


def cell(case: Case, sdk: str, key: str = "wall") -> str:
    if sdk in case.errors:
        return case.errors[sdk]
    if sdk not in case.sdks:
        return case.note or "-"
    return fmt_s(field_of(case, sdk, key))


def rss_cell(case: Case, sdk: str) -> str:
    values = field_of(case, sdk, "rss_mb")
    return f"{med(values):.0f}" if values else "-"


def report(cases: list[Case], imports: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{args.runs} fresh-process runs per cell (median, min-max). Other processes may have "
        "been running: trust the ratios (same run) more than absolute times.",
        "",
    ]
    groups = {c.group for c in cases}
    main = [c for c in cases if c.group in ("map", "sequential", "replay", "parallel")]
    if main:
        lines += [
            "| case | adurable | official 3.0.0 | official / adurable | adurable CPU | "
            "peak RSS MB (ad / off) | checkpoint calls (fan-out: / ceil(updates/250)), ad; off |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in main:
            lines.append(
                f"| {c.label} | {cell(c, 'adurable')} | {cell(c, 'official')} | {ratio(c)} | "
                f"{cell(c, 'adurable', 'cpu')} | {rss_cell(c, 'adurable')} / "
                f"{rss_cell(c, 'official')} | {calls_cell(c, 'adurable')}; "
                f"{calls_cell(c, 'official')} |"
            )
        lines.append("")
    if "latency" in groups:
        lines += [
            "Latency-bound (the fake adds 20 ms to every checkpoint call); bound = 100 x 20 ms "
            "for the chain, ceil(updates/250) x 20 ms for the map:",
            "",
            "| case | adurable | x bound | official 3.0.0 | x bound | official / adurable |",
            "|---|---|---|---|---|---|",
        ]
        for c in (c for c in cases if c.group == "latency"):
            mult = {sdk: times_bound(c, sdk) for sdk in ("adurable", "official", "none")}
            if c.sdks == ("none",):
                lines.append(f"| {c.label} | {cell(c, 'none')} | {mult['none']} | - | - | - |")
                continue
            lines.append(
                f"| {c.label} | {cell(c, 'adurable')} | {mult['adurable']} | "
                f"{cell(c, 'official')} | {mult['official']} | {ratio(c)} |"
            )
        lines.append("")
    if "cold" in groups:
        lines += [
            "Cold start (fresh process each run):",
            "",
            "| measure | adurable | official 3.0.0 | official / adurable |",
            "|---|---|---|---|",
        ]
        if imports:
            a, o = imports.get("adurable", {}), imports.get("official", {})
            for key, label in (
                ("wall", "import (perf_counter)"),
                ("importtime", "import (-X importtime)"),
            ):
                av, ov = a.get(key) or [], o.get(key) or []
                r = f"{med(ov) / med(av):.1f}x" if av and ov else "-"
                lines.append(f"| {label} | {fmt_s(av)} | {fmt_s(ov)} | {r} |")
            lines.append(
                f"| imports botocore | {'yes' if a.get('botocore') else 'no'} | "
                f"{'yes' if o.get('botocore') else 'no'} | |"
            )
        for c in (c for c in cases if c.group == "cold"):
            lines.append(
                "| first checkpoint, from process spawn | "
                f"{cell(c, 'adurable', 'first_checkpoint')} | "
                f"{cell(c, 'official', 'first_checkpoint')} | {ratio(c, 'first_checkpoint')} |"
            )
        lines.append("")
    if "floor" in groups:
        lines += [
            "The floor (no SDK): the same fan-out of trivial async calls, and the fake alone "
            "fed a NESTED map's updates in calls of 250:",
            "",
            "| case | wall | peak RSS MB |",
            "|---|---|---|",
        ]
        for c in (c for c in cases if c.group == "floor"):
            lines.append(f"| {c.label} | {cell(c, 'none')} | {rss_cell(c, 'none')} |")
        lines.append("")
    return "\n".join(lines)


def write_results(table: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    RESULTS.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="comma-separated groups: " + "map,sequential,replay,"
                        "parallel,latency,cold,floor")  # fmt: skip
    parser.add_argument("--max-n", type=int, default=100_000)
    parser.add_argument("--with-1m", action="store_true", help="add the 1M-item maps (adurable)")
    parser.add_argument("--map-sizes", help="comma-separated map sizes instead of the defaults")
    parser.add_argument("--official-max-n", type=int, default=10_000,
                        help="skip the official SDK above this size (default 10,000)")  # fmt: skip
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--official-timeout", type=float, default=300)
    parser.add_argument("--write", action="store_true", help="write the table into RESULTS.md")
    parser.add_argument("--json", type=Path, help="also dump every measurement here")
    args = parser.parse_args()
    if args.with_1m or args.map_sizes:
        args.max_n = max(args.max_n, 1_000_000)

    cases = build_cases(args)
    if any("official" in c.sdks for c in cases) or not args.skip_official:
        ensure_official()
    imports: dict[str, dict[str, Any]] = {}
    if any(c.group == "cold" for c in cases):
        imports["adurable"] = import_time("adurable", "adurable", max(args.runs, 5))
        if not args.skip_official:
            imports["official"] = import_time(
                "official", "aws_durable_execution_sdk_python", max(args.runs, 5)
            )
    run_cases(cases, args)
    table = report(cases, imports, args)
    print(table)
    if args.json:
        dump = {c.label: {"spec": c.spec, "results": c.results, "errors": c.errors} for c in cases}
        args.json.write_text(json.dumps({"cases": dump, "imports": imports}, indent=1))
    if args.write:
        write_results(table)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
