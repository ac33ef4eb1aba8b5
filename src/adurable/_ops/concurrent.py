"""``map`` and ``parallel`` as structured concurrency (PROTOCOL §7.9). STUB: being written."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from adurable._config import MapConfig, ParallelConfig
from adurable._scope import Scope


class ParallelBranch:
    def __init__(self, func: Callable[[Any], Any], name: str | None = None) -> None:
        self.func = func
        self.name = name


def durable_parallel_branch(name: str | None = None) -> Callable[[Callable[..., Any]], Any]:
    raise NotImplementedError


def map_operation(
    scope: Scope,
    inputs: Iterable[Any],
    func: Callable[..., Any],
    name: str | None,
    config: MapConfig | None,
    make_context: Callable[[Scope], Any],
) -> Coroutine[Any, Any, Any]:
    raise NotImplementedError


def parallel_operation(
    scope: Scope,
    functions: Iterable[Any],
    name: str | None,
    config: ParallelConfig | None,
    make_context: Callable[[Scope], Any],
) -> Coroutine[Any, Any, Any]:
    raise NotImplementedError
