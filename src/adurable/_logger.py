"""Replay-aware logging (PROTOCOL §6.4).

``context.logger`` behaves like a stdlib ``logging.Logger`` (it is a ``LoggerAdapter`` over the
``adurable.context`` logger by default, so it never configures or writes to the root logger
itself) and drops every call while its context is replaying, so a handler's log lines appear
once per execution rather than once per invocation. Each record carries ``executionArn`` and,
where known, ``operationId``, ``operationName``, ``parentId`` and ``attempt`` in ``extra``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

DEFAULT_LOGGER = logging.getLogger("adurable.context")


class DurableLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that is silent while ``is_replaying()`` is true."""

    def __init__(
        self,
        logger: Any,
        extra: Mapping[str, object],
        is_replaying: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(logger, dict(extra))
        self._is_replaying = is_replaying

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs

    def isEnabledFor(self, level: int) -> bool:
        if self._is_replaying():
            return False
        enabled = getattr(self.logger, "isEnabledFor", None)
        return bool(enabled(level)) if enabled is not None else True

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self._is_replaying():
            return
        if isinstance(self.logger, logging.Logger | logging.LoggerAdapter):
            super().log(level, msg, *args, **kwargs)
            return
        # A user-supplied object with debug/info/warning/error/exception methods.
        msg, processed = self.process(msg, kwargs)
        method = getattr(self.logger, logging.getLevelName(level).lower(), None)
        if method is not None:
            method(msg, *args, **processed)

    def with_extra(self, **extra: object) -> DurableLogger:
        merged = dict(self.extra or {})
        merged.update({k: v for k, v in extra.items() if v is not None})
        return DurableLogger(self.logger, merged, self._is_replaying)

    def with_replay_check(self, is_replaying: Callable[[], bool]) -> DurableLogger:
        return DurableLogger(self.logger, dict(self.extra or {}), is_replaying)
