"""Shared fixtures of the service tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated(aws_env: None) -> None:
    """Dummy credentials, nothing from the host (see tests/conftest.py)."""
