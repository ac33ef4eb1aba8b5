"""adurable: async durable functions for AWS Lambda, on asyncio and trio.

Write ``async def handler(event, context: DurableContext)``, decorate it with
``@durable_execution``, and ``await`` durable operations (``context.step``, ``context.wait``,
``context.run_in_child_context``, ...). Names and options mirror the official Python SDK 3.0.0.

This module only re-exports; the layers underneath read top to bottom:
vocabulary (_errors, _duration, _retry, _config) → data (_wire, _serde, _ids, _failures) →
one invocation's machinery (_journal, _service, _batcher, _scope) → one module per operation
(_ops) → façade and entry point (_context, _execution) → adurable.testing.
"""

import contextlib as _contextlib

from adurable._batch import BatchItem, BatchItemStatus, BatchResult, CompletionReason
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
from adurable._duration import Duration
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
from adurable._execution import DurableHandler, durable_execution
from adurable._ops.callback import Callback, WaitForCallbackContext, durable_wait_for_callback
from adurable._ops.concurrent import ParallelBranch, durable_parallel_branch
from adurable._ops.condition import WaitForConditionCheckContext, create_wait_strategy
from adurable._ops.retry_block import WithRetryConfig, with_retry
from adurable._ops.step import StepContext
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
from adurable._version import __version__

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

# Tracebacks and docs say ``adurable.StepError``, not ``adurable._errors.StepError``.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        with _contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = "adurable"
del _name, _obj
