"""A local engine for durable functions: Lambda plus the durable-execution service, in-process.

    from adurable.local import LocalEngine, SqliteStore

    engine = LocalEngine(store=SqliteStore("executions.db"))
    engine.register("orders", handler)
    result = await engine.invoke("orders:$LATEST", b'{"order": 7}')

* ``LocalEngine`` — registers functions, starts executions (``invoke``), drives them
  (``run``), and answers the management API (executions, history, callbacks, stop).
* ``VirtualClock`` (time jumps when everything waits on time; the default) and ``RealClock``.
* ``MemoryStore`` (the default) and ``SqliteStore`` (survives a killed process).
* ``DurableServer`` — the engine behind the Lambda REST API (durable-execution routes and
  Invoke) on 127.0.0.1, for botocore, aiobotocore, boto3 and the AWS CLI.

The service-side rules are PROTOCOL §3, §4.7 and §14; see ``LocalService``.
"""

from adurable.local._clock import Clock, RealClock, VirtualClock
from adurable.local._context import InvokeResult, LambdaContext
from adurable.local._engine import LocalEngine
from adurable.local._localservice import LocalService
from adurable.local._model import (
    ChainedInvokeRequest,
    ExecutionView,
    RecordedCall,
    ServiceError,
)
from adurable.local._server import DurableServer
from adurable.local._store import MemoryStore, SqliteStore, Store

__all__ = (
    "ChainedInvokeRequest",
    "Clock",
    "DurableServer",
    "ExecutionView",
    "InvokeResult",
    "LambdaContext",
    "LocalEngine",
    "LocalService",
    "MemoryStore",
    "RealClock",
    "RecordedCall",
    "ServiceError",
    "SqliteStore",
    "Store",
    "VirtualClock",
)
