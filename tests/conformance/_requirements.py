"""The official conformance requirements, read from the published wheel (never committed).

``aws-durable-execution-conformance-tests`` 1.0.0 ships 155 YAML requirements in
``aws_durable_execution_conformance_tests/test_requirements/<suite>/<id>.yaml``. The wheel is
fetched once with ``pip download`` into ``.cache/conformance/`` at the repository root (git-ignored)
and read in place with ``zipfile``; nothing of it is imported. ``ADURABLE_CONFORMANCE_WHEEL``
points at a wheel already on disk instead (an offline machine).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "aws-durable-execution-conformance-tests"
VERSION = "1.0.0"
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "conformance"
_PREFIX = "aws_durable_execution_conformance_tests/test_requirements/"

#: The suites in the order the package numbers them (the id's first number).
SUITES = (
    "step",
    "wait",
    "child",
    "callback",
    "invoke",
    "wait_for_condition",
    "wait_for_callback",
    "parallel",
    "map",
    "plugin",
)


def wheel_path() -> Path:
    """The wheel on disk, downloading it on first use."""
    override = os.environ.get("ADURABLE_CONFORMANCE_WHEEL")
    if override:
        return Path(override)
    found = sorted(CACHE.glob(f"aws_durable_execution_conformance_tests-{VERSION}-*.whl"))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary=:all:", "--python-version", "3.14",
        "--dest", str(CACHE), f"{PACKAGE}=={VERSION}",
    ]  # fmt: skip
    subprocess.run(command, check=True)
    found = sorted(CACHE.glob(f"aws_durable_execution_conformance_tests-{VERSION}-*.whl"))
    if not found:
        raise RuntimeError(f"pip download left no {PACKAGE} {VERSION} wheel in {CACHE}")
    return found[0]


def _sort_key(requirement_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in requirement_id.split("-"))


@functools.cache
def load_requirements() -> dict[str, dict[str, Any]]:
    """Every requirement by id ("1-1" ... "10-7"), in numeric order, with its ``suite``."""
    found: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(wheel_path()) as wheel:
        for name in wheel.namelist():
            if not (name.startswith(_PREFIX) and name.endswith(".yaml")):
                continue
            suite, file_name = name[len(_PREFIX) :].split("/", 1)
            spec = yaml.safe_load(wheel.read(name))
            spec["suite"] = suite
            found[file_name.removesuffix(".yaml")] = spec
    return {key: found[key] for key in sorted(found, key=_sort_key)}
