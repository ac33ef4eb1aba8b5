"""Which adurable handler answers which requirement id.

Each module in ``handlers/`` registers its handlers with ``@requirement("1-1")`` on a
``@durable_execution`` function; ``functions=`` adds the other functions the requirement needs
(targets of ``context.invoke``), by name. A handler names such a target through ``target(name)``,
which the backend running the requirement resolves (the local engine: ``name:$LATEST``).
"""

from __future__ import annotations

import contextvars
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F")


@dataclass
class Entry:
    requirement_id: str
    handler: Any
    functions: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, Entry] = {}
#: Handler modules that failed to import, with the error (their requirements then fail).
BROKEN: dict[str, str] = {}

#: How the running backend spells a function name for ``context.invoke``.
TARGETS: contextvars.ContextVar[Callable[[str], str]] = contextvars.ContextVar(
    "conformance_targets", default=lambda name: f"{name}:$LATEST"
)


def target(name: str) -> str:
    """The name to ``context.invoke`` for the function registered as ``name``."""
    return TARGETS.get()(name)


def requirement(*ids: str, functions: dict[str, Any] | None = None) -> Callable[[F], F]:
    """Register the decorated durable handler for ``ids``."""

    def register(handler: F) -> F:
        for requirement_id in ids:
            if requirement_id in REGISTRY:
                raise ValueError(f"requirement {requirement_id} registered twice")
            REGISTRY[requirement_id] = Entry(requirement_id, handler, dict(functions or {}))
        return handler

    return register


def load_all() -> dict[str, Entry]:
    """Import every module of ``handlers/`` and answer the registry."""
    from tests.conformance import handlers

    for module in pkgutil.iter_modules(handlers.__path__):
        name = f"{handlers.__name__}.{module.name}"
        if name in BROKEN:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # one broken module must not hide the other suites
            BROKEN[name] = f"{type(exc).__name__}: {exc}"
    return REGISTRY
