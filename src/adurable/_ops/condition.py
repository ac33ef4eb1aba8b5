"""``wait_for_condition``: durable polling (PROTOCOL §7.8). STUB: being written."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from adurable._config import WaitForConditionConfig, WaitForConditionDecision, WaitStrategyConfig
from adurable._scope import Scope


def create_wait_strategy(
    config: WaitStrategyConfig,
) -> Callable[[Any, int], WaitForConditionDecision]:
    raise NotImplementedError


def wait_for_condition_operation(
    scope: Scope, check: Callable[..., Any], config: WaitForConditionConfig, name: str | None
) -> Coroutine[Any, Any, Any]:
    raise NotImplementedError
