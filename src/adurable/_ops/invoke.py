"""``invoke``: chained invoke of another function (PROTOCOL §7.4). STUB: being written."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from adurable._config import InvokeConfig
from adurable._scope import Scope


def invoke_operation(
    scope: Scope, function_name: str, payload: Any, name: str | None, config: InvokeConfig | None
) -> Coroutine[Any, Any, Any]:
    raise NotImplementedError
