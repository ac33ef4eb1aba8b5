"""BatchResult of map/parallel (PROTOCOL §7.9.7). STUB: being written."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class BatchResult(Generic[T]):
    pass
