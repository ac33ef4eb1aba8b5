"""``FakeService``: the local engine's durable-execution service, in memory, on virtual time.

It is ``adurable.local.LocalService`` under its testing name: with no arguments it keeps its
state in a ``MemoryStore`` and reads time from its own ``VirtualClock``. It plays Lambda *and*
the durable-execution control plane for one process (executions, invocation events,
checkpoints and state reads, the service-side state machines, timers, callbacks, chained
invokes, history), and the SDK talks to it through the same two calls it makes to the real
service, with the same botocore-shaped requests and responses. See ``adurable.local`` for the
rules it follows and ``LocalService`` for its methods.
"""

from __future__ import annotations

from adurable.local._localservice import LocalService
from adurable.local._model import (
    ChainedInvokeRequest,
    ExecutionView,
    RecordedCall,
    ServiceError,
)

__all__ = ("ChainedInvokeRequest", "FakeExecution", "FakeService", "RecordedCall", "ServiceError")

#: The in-process service tests drive (``LocalService`` with its defaults).
FakeService = LocalService
#: Live view of one execution (``service.execution(arn)``).
FakeExecution = ExecutionView
