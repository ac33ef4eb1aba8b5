"""``create_callback`` and ``wait_for_callback`` (PROTOCOL §7.6, §7.7). STUB: being written."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from adurable._config import CallbackConfig, WaitForCallbackConfig
from adurable._scope import Scope

T = TypeVar("T")


class Callback(Generic[T]):
    """A callback an external system completes; ``await callback.result()`` for its outcome."""

    def __init__(self, callback_id: str) -> None:
        self.callback_id = callback_id

    async def result(self) -> T | None:
        raise NotImplementedError


def create_callback_operation(
    scope: Scope, name: str | None, config: CallbackConfig | None
) -> Coroutine[Any, Any, Callback[Any]]:
    raise NotImplementedError


def wait_for_callback_operation(
    scope: Scope,
    submitter: Callable[..., Any],
    name: str | None,
    config: WaitForCallbackConfig | None,
    make_context: Callable[[Scope], Any],
) -> Coroutine[Any, Any, Any]:
    raise NotImplementedError
