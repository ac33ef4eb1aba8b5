"""Operation ids (PROTOCOL §5): blake2b of the position, first 64 hex characters.

Pure functions: the same position always gives the same id, so ids can be computed ahead of
time and never depend on scheduling order.
"""

from __future__ import annotations

try:  # what hashlib.blake2b is, without importing hashlib's OpenSSL bindings (~4 ms)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b

__all__ = ("blake2b", "branch_id", "hash_id", "operation_id")


def hash_id(raw: str) -> str:
    return blake2b(raw.encode("utf-8")).hexdigest()[:64]


def operation_id(prefix: str | None, position: int) -> str:
    """Id of the operation at 1-based ``position`` in a context whose step prefix is ``prefix``."""
    return hash_id(f"{prefix}-{position}" if prefix else str(position))


def branch_id(container_id: str, index: int) -> str:
    """Id of map item / parallel branch ``index`` (0-based) of the container ``container_id``."""
    return hash_id(f"{container_id}-{index}")
