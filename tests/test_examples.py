"""Every example runs, in-process on both backends and as the README's main command."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from adurable.testing import LocalRunner

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
async def test_order_workflow() -> None:
    example = load("order_workflow")
    order = {"order_id": "o-7", "items": [{"sku": "tea", "price": 4, "qty": 3}]}
    result = await LocalRunner(example.handler).run(input=order)
    assert result.status == "SUCCEEDED"
    assert result.result == {
        "order": {"order_id": "o-7", "total": 12},
        "reservation": "rsv-o-7",
        "charge": "ch-o-7",
    }
    assert result.get_step("reserve_stock").step_details.attempt == 2  # type: ignore[union-attr]
    assert result.get_context("payment").status.value == "SUCCEEDED"


def test_main_command_prints_the_result() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "order_workflow.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "status: SUCCEEDED" in out.stdout
    assert '"charge": "ch-o-42"' in out.stdout
