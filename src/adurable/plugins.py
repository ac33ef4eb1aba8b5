"""The plugin API (PROTOCOL §13): subclass ``DurablePlugin``, register a factory.

    class Tracing(DurablePlugin):
        def on_operation_start(self, info: OperationStartInfo) -> None: ...

    class TracingFactory:
        def create_plugin(self, info: InvocationStartInfo, /) -> Tracing:
            return Tracing()

    @durable_execution(plugins=[TracingFactory()])
    async def handler(event, context): ...

Hooks are synchronous and contained: an exception in a hook is logged and ignored. Factories can
also be named in ``DURABLE_EXECUTION_PLUGINS`` (entry points of group
``aws_durable_execution.plugins``). ``OperationType`` and ``OperationStatus`` are the enums of
``OperationInfo.operation_type`` / ``.status`` (string enums: ``info.operation_type == "STEP"``
works too).
"""

from adurable._enums import OperationStatus, OperationType
from adurable._plugins import (
    DurablePlugin,
    InvocationEndInfo,
    InvocationInfo,
    InvocationStartInfo,
    OperationChangeInfo,
    OperationEndInfo,
    OperationInfo,
    OperationStartInfo,
    PluginInvocationStatus,
    PropagationInput,
    PropagationMetadata,
    UserFunctionEndInfo,
    UserFunctionOutcome,
    UserFunctionStartInfo,
)

__all__ = (
    "DurablePlugin",
    "InvocationEndInfo",
    "InvocationInfo",
    "InvocationStartInfo",
    "OperationChangeInfo",
    "OperationEndInfo",
    "OperationInfo",
    "OperationStartInfo",
    "OperationStatus",
    "OperationType",
    "PluginInvocationStatus",
    "PropagationInput",
    "PropagationMetadata",
    "UserFunctionEndInfo",
    "UserFunctionOutcome",
    "UserFunctionStartInfo",
)
