"""adurable: async durable functions for AWS Lambda, on asyncio and trio.

Write ``async def handler(event, context: DurableContext)``, decorate it with
``@durable_execution``, and ``await`` durable operations (``context.step``, ``context.wait``,
``context.run_in_child_context``, ...). Names and options mirror the official Python SDK 3.0.0.

This module only re-exports; the layers underneath read top to bottom:
vocabulary (_errors, _duration, _retry, _config) → data (_enums, _fastwire, _wire, _serde, _ids,
_failures) → one invocation's machinery (_journal, _service, _batcher, _scope) → one module per
operation (_ops) → façade and entry point (_context, _execution) → adurable.testing.

Names are loaded on first access (PEP 562): ``import adurable`` costs almost nothing, and a
handler that only runs steps never loads the map/parallel, callback or plugin machinery. The
errors are loaded eagerly so that tracebacks name them ``adurable.StepError`` from the start.
"""

import contextlib as _contextlib
import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from adurable._version import __version__

if _TYPE_CHECKING:
    from adurable._batch import (
        BatchItem,
        BatchItemStatus,
        BatchResult,
        CompletionReason,
    )
    from adurable._config import (
        CallbackConfig,
        ChildConfig,
        CompletionConfig,
        CompletionDecision,
        CompletionItemStatus,
        CompletionOutcome,
        CompletionStatus,
        InvokeConfig,
        MapConfig,
        NestingType,
        ParallelConfig,
        StepConfig,
        StepSemantics,
        WaitForCallbackConfig,
        WaitForConditionConfig,
        WaitForConditionDecision,
        WaitStrategyConfig,
    )
    from adurable._context import (
        DurableContext,
        ExecutionContext,
        durable_step,
        durable_with_child_context,
    )
    from adurable._duration import (
        Duration,
    )
    from adurable._errors import (
        BatchCompletionError,
        CallbackError,
        CallbackExternalError,
        CallbackSubmitterError,
        CallbackTimeoutError,
        CheckpointError,
        ChildContextError,
        DurableExecutionsError,
        DurableOperationError,
        ExecutionError,
        GetExecutionStateError,
        InvocationError,
        InvokeError,
        NonDeterministicExecutionError,
        PluginLoadError,
        RetryableSerDesError,
        SerDesError,
        StepError,
        StepInterruptedError,
        SuspendExecution,
        ValidationError,
        WaitForConditionError,
    )
    from adurable._execution import (
        DurableHandler,
        durable_execution,
    )
    from adurable._ops.callback import (
        Callback,
        WaitForCallbackContext,
        durable_wait_for_callback,
    )
    from adurable._ops.concurrent import (
        ParallelBranch,
        durable_parallel_branch,
    )
    from adurable._ops.condition import (
        WaitForConditionCheckContext,
        create_wait_strategy,
    )
    from adurable._ops.retry_block import (
        WithRetryConfig,
        with_retry,
    )
    from adurable._ops.step import (
        StepContext,
    )
    from adurable._retry import (
        JitterStrategy,
        LinearRetryStrategyConfig,
        RetryDecision,
        RetryPresets,
        RetryStrategyConfig,
        create_linear_retry_strategy,
        create_retry_strategy,
    )
    from adurable._serde import (
        EXTENDED_TYPES_SERDES,
        ExtendedTypeSerDes,
        JsonSerDes,
        PassThroughSerDes,
        SerDes,
        SerDesContext,
    )

__all__ = (
    "EXTENDED_TYPES_SERDES",
    "BatchCompletionError",
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "Callback",
    "CallbackConfig",
    "CallbackError",
    "CallbackExternalError",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "CheckpointError",
    "ChildConfig",
    "ChildContextError",
    "CompletionConfig",
    "CompletionDecision",
    "CompletionItemStatus",
    "CompletionOutcome",
    "CompletionReason",
    "CompletionStatus",
    "Duration",
    "DurableContext",
    "DurableExecutionsError",
    "DurableHandler",
    "DurableOperationError",
    "ExecutionContext",
    "ExecutionError",
    "ExtendedTypeSerDes",
    "GetExecutionStateError",
    "InvocationError",
    "InvokeConfig",
    "InvokeError",
    "JitterStrategy",
    "JsonSerDes",
    "LinearRetryStrategyConfig",
    "MapConfig",
    "NestingType",
    "NonDeterministicExecutionError",
    "ParallelBranch",
    "ParallelConfig",
    "PassThroughSerDes",
    "PluginLoadError",
    "RetryDecision",
    "RetryPresets",
    "RetryStrategyConfig",
    "RetryableSerDesError",
    "SerDes",
    "SerDesContext",
    "SerDesError",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "SuspendExecution",
    "ValidationError",
    "WaitForCallbackConfig",
    "WaitForCallbackContext",
    "WaitForConditionCheckContext",
    "WaitForConditionConfig",
    "WaitForConditionDecision",
    "WaitForConditionError",
    "WaitStrategyConfig",
    "WithRetryConfig",
    "__version__",
    "create_linear_retry_strategy",
    "create_retry_strategy",
    "create_wait_strategy",
    "durable_execution",
    "durable_parallel_branch",
    "durable_step",
    "durable_wait_for_callback",
    "durable_with_child_context",
    "with_retry",
)

#: Where each public name lives; a module is imported when one of its names is first used.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "adurable._batch": (
        "BatchItem",
        "BatchItemStatus",
        "BatchResult",
        "CompletionReason",
    ),
    "adurable._config": (
        "CallbackConfig",
        "ChildConfig",
        "CompletionConfig",
        "CompletionDecision",
        "CompletionItemStatus",
        "CompletionOutcome",
        "CompletionStatus",
        "InvokeConfig",
        "MapConfig",
        "NestingType",
        "ParallelConfig",
        "StepConfig",
        "StepSemantics",
        "WaitForCallbackConfig",
        "WaitForConditionConfig",
        "WaitForConditionDecision",
        "WaitStrategyConfig",
    ),
    "adurable._context": (
        "DurableContext",
        "ExecutionContext",
        "durable_step",
        "durable_with_child_context",
    ),
    "adurable._duration": ("Duration",),
    "adurable._errors": (
        "BatchCompletionError",
        "CallbackError",
        "CallbackExternalError",
        "CallbackSubmitterError",
        "CallbackTimeoutError",
        "CheckpointError",
        "ChildContextError",
        "DurableExecutionsError",
        "DurableOperationError",
        "ExecutionError",
        "GetExecutionStateError",
        "InvocationError",
        "InvokeError",
        "NonDeterministicExecutionError",
        "PluginLoadError",
        "RetryableSerDesError",
        "SerDesError",
        "StepError",
        "StepInterruptedError",
        "SuspendExecution",
        "ValidationError",
        "WaitForConditionError",
    ),
    "adurable._execution": (
        "DurableHandler",
        "durable_execution",
    ),
    "adurable._ops.callback": (
        "Callback",
        "WaitForCallbackContext",
        "durable_wait_for_callback",
    ),
    "adurable._ops.concurrent": (
        "ParallelBranch",
        "durable_parallel_branch",
    ),
    "adurable._ops.condition": (
        "WaitForConditionCheckContext",
        "create_wait_strategy",
    ),
    "adurable._ops.retry_block": (
        "WithRetryConfig",
        "with_retry",
    ),
    "adurable._ops.step": ("StepContext",),
    "adurable._retry": (
        "JitterStrategy",
        "LinearRetryStrategyConfig",
        "RetryDecision",
        "RetryPresets",
        "RetryStrategyConfig",
        "create_linear_retry_strategy",
        "create_retry_strategy",
    ),
    "adurable._serde": (
        "EXTENDED_TYPES_SERDES",
        "ExtendedTypeSerDes",
        "JsonSerDes",
        "PassThroughSerDes",
        "SerDes",
        "SerDesContext",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def _publish(module_name: str) -> None:
    """Import ``module_name`` and put its public names here, claiming them for the package
    (``adurable.StepError``, not ``adurable._errors.StepError``, in tracebacks and docs)."""
    module = _importlib.import_module(module_name)
    for name in _EXPORTS[module_name]:
        obj = getattr(module, name)
        if isinstance(obj, type) or callable(obj):
            with _contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = "adurable"
        globals()[name] = obj


def __getattr__(name: str) -> _Any:
    module_name = _MODULE_OF.get(name)
    if module_name is None:
        raise AttributeError(f"module 'adurable' has no attribute {name!r}")
    _publish(module_name)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_publish("adurable._errors")
