"""Testing tools: an in-process fake of the durable-execution service, a virtual clock, a runner.

    runner = LocalRunner(my_handler)              # a FakeService with its own VirtualClock
    result = await runner.run({"order": 7})       # waits and retries cost no wall-clock time
    assert result.status == "SUCCEEDED"
    assert result.get_step("charge").step_details.attempt == 1

``FakeService`` can also be handed to the SDK directly as its Lambda client: it answers
``checkpoint_durable_execution`` and ``get_durable_execution_state`` like aiobotocore would.
"""

from adurable.testing._clock import VirtualClock
from adurable.testing._fake import FakeService, RecordedCall, ServiceError
from adurable.testing._replay import (
    NewWork,
    RecordedExecution,
    ReplayCheckError,
    ReplayMismatch,
    ReplayReport,
    operations_from_history,
    replay_execution,
)
from adurable.testing._result import InvocationStatus, OperationView
from adurable.testing._runner import ExecutionResult, LambdaContext, LocalRunner

__all__ = (
    "ExecutionResult",
    "FakeService",
    "InvocationStatus",
    "LambdaContext",
    "LocalRunner",
    "NewWork",
    "OperationView",
    "RecordedExecution",
    "RecordedCall",
    "ReplayCheckError",
    "ReplayMismatch",
    "ReplayReport",
    "ServiceError",
    "VirtualClock",
    "operations_from_history",
    "replay_execution",
)
