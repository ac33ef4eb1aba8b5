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
``aws_durable_execution.plugins``).
"""

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
    "PluginInvocationStatus",
    "PropagationInput",
    "PropagationMetadata",
    "UserFunctionEndInfo",
    "UserFunctionOutcome",
    "UserFunctionStartInfo",
)
