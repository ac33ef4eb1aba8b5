"""The emulator backend (``test_emulator.py``) runs only on request: it needs real time."""

from __future__ import annotations

import os

import pytest

OPTION = "--conformance-emulator"
ENV = "ADURABLE_CONFORMANCE_EMULATOR"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        action="store_true",
        default=False,
        help="also run the conformance requirements against the official local emulator "
        f"(dex-local-runner; real time, ~1 min; or set {ENV}=1)",
    )


def emulator_requested(config: pytest.Config) -> bool:
    return bool(config.getoption("conformance_emulator", default=False)) or os.environ.get(
        ENV, ""
    ) not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if emulator_requested(config):
        return
    deselected = [item for item in items if item.get_closest_marker("emulator")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("emulator")]
