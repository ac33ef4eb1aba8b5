"""The entry point: ``@durable_execution`` turns ``async def handler(event, context)`` into a
Lambda handler that speaks the durable invocation protocol (PROTOCOL §2, §2.5.3, §9.2).

One invocation, top to bottom: parse the envelope → load every operation (paging) → open a task
group holding the checkpoint batcher → run the user function inside a cancel scope → turn the
outcome into SUCCEEDED / FAILED / PENDING, or raise (so Lambda retries the invocation).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import functools
import gc
import importlib
import json
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import anyio

from adurable._batcher import CheckpointBatcher
from adurable._context import DurableContext
from adurable._enums import OperationAction, OperationType
from adurable._errors import (
    BotoClientError,
    CheckpointFailed,
    DurableExecutionsError,
    ExecutionError,
    InvocationError,
    SuspendExecution,
)
from adurable._failures import error_object_from_exception
from adurable._fastwire import Envelope, Update, parse_event
from adurable._journal import Journal
from adurable._scope import Invocation, Scope
from adurable._service import (
    ClientService,
    DurableService,
    close_shared_lambda_service,
    shared_lambda_service,
)

if TYPE_CHECKING:
    import anyio.from_thread

    from adurable._plugins import PluginRun

# adurable._plugins is imported only when plugins are registered (explicitly or through the
# environment variable), and anyio.from_thread only when Lambda calls the handler: a cold start
# that needs neither pays for neither.
PLUGINS_ENV_VAR = "DURABLE_EXECUTION_PLUGINS"  # adurable._plugins.ENV_VAR

T = TypeVar("T")
Handler = Callable[[Any, DurableContext], Awaitable[T]]

LAMBDA_RESPONSE_SIZE_LIMIT = 6 * 1024 * 1024 - 50
MALFORMED_EVENT = (
    "Unexpected payload provided to start the durable execution. "
    "Check your resource configurations to confirm the durability is set."
)


class DurableHandler(Generic[T]):
    """A durable handler. Call it like Lambda does (sync), or ``await handler.run(...)``."""

    def __init__(
        self,
        func: Handler[T],
        *,
        client: Any = None,
        backend: str = "asyncio",
        plugins: Iterable[object] | None = None,
    ) -> None:
        self.func = func
        self.client = client
        self.backend = backend
        _load_backend(backend)
        #: Plugin factories, resolved once (explicit ones and DURABLE_EXECUTION_PLUGINS).
        self.plugin_factories: tuple[object, ...] = ()
        if plugins or os.environ.get(PLUGINS_ENV_VAR):
            from adurable._plugins import load_factories

            self.plugin_factories = load_factories(plugins)
        self.__name__ = getattr(func, "__name__", "handler")
        self.__doc__ = getattr(func, "__doc__", None)
        self.__wrapped__ = func

    def __call__(self, event: Any, lambda_context: Any = None) -> dict[str, Any]:
        """Lambda's entry: runs the invocation on a long-lived event loop (warm starts reuse
        it and its HTTP connection pool)."""
        return _portal(self.backend).call(self.run, event, lambda_context)

    async def run(
        self, event: Any, lambda_context: Any = None, *, client: Any = None
    ) -> dict[str, Any]:
        """Run one invocation from inside an event loop and return the Lambda response dict.

        ``client`` overrides the service client for this call: any object with awaitable
        ``checkpoint_durable_execution`` and ``get_durable_execution_state`` in botocore's shapes
        (an aiobotocore ``lambda`` client, ``adurable.testing.FakeService``, ...).
        """
        invocation_input = _parse_event(event)
        chosen = client if client is not None else self.client
        service: DurableService = (
            ClientService(chosen) if chosen is not None else await shared_lambda_service()
        )
        return await _invoke(
            self.func, invocation_input, service, lambda_context, self.plugin_factories
        )


@overload
def durable_execution(func: Handler[T], /) -> DurableHandler[T]: ...


@overload
def durable_execution(
    *,
    client: Any = None,
    boto3_client: Any = None,
    plugins: Iterable[object] | None = None,
    backend: str = "asyncio",
) -> Callable[[Handler[T]], DurableHandler[T]]: ...


def durable_execution(
    func: Handler[T] | None = None,
    /,
    *,
    client: Any = None,
    boto3_client: Any = None,
    plugins: Iterable[object] | None = None,
    backend: str = "asyncio",
) -> DurableHandler[T] | Callable[[Handler[T]], DurableHandler[T]]:
    """Decorate ``async def handler(event, context: DurableContext)`` as a durable Lambda handler.

    ``client``: an aiobotocore ``lambda`` client to use instead of the shared default one
    (``boto3_client`` is accepted as an alias for porting). ``backend``: "asyncio" (default)
    or "trio" — the event loop the handler runs on when Lambda calls it. ``plugins``: plugin
    factories (PROTOCOL §13); resolved now, so a bad one raises PluginLoadError at import.
    """
    if backend not in ("asyncio", "trio"):
        raise DurableExecutionsError(f"backend must be 'asyncio' or 'trio', not {backend!r}")

    def decorate(f: Handler[T]) -> DurableHandler[T]:
        return DurableHandler(f, client=client or boto3_client, backend=backend, plugins=plugins)

    return decorate(func) if func is not None else decorate


# -- one invocation ---------------------------------------------------------------------------


def _parse_event(event: Any) -> Envelope:
    try:
        return parse_event(event)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ExecutionError(MALFORMED_EVENT) from exc


async def _invoke(
    func: Handler[Any],
    inp: Envelope,
    service: DurableService,
    lambda_context: Any,
    factories: tuple[object, ...] = (),
) -> dict[str, Any]:
    with _young_collections_relaxed():
        return await _invoke_relaxed(func, inp, service, lambda_context, factories)


async def _invoke_relaxed(
    func: Handler[Any],
    inp: Envelope,
    service: DurableService,
    lambda_context: Any,
    factories: tuple[object, ...],
) -> dict[str, Any]:
    arn, token = inp.durable_execution_arn, inp.checkpoint_token
    journal = Journal()
    journal.apply_raw(inp.operations, millis=True)
    try:
        marker = inp.next_marker
        while marker:
            page = await service.fetch_state(arn, token, marker)
            journal.apply_raw(page.operations)
            marker = page.next_marker
    except BotoClientError as exc:
        return _checkpoint_failure(exc)
    user_input = _user_input(journal, arn)
    replaying = journal.has_work()
    updated = frozenset(inp.updated_operation_ids)
    batcher = CheckpointBatcher(service, arn, token, journal)
    invocation = Invocation(arn, journal, batcher, lambda_context, updated)
    if factories:
        invocation.plugins = _start_plugins(factories, invocation, user_input, not replaying)
    output: dict[str, Any] = {}
    raise_after: Exception | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(batcher.run)
            root = Scope(invocation, prefix=None, parent_id=None, replaying=replaying)
            value, error = await _run_user(func, user_input, DurableContext(root), invocation)
            try:
                output = await _answer(invocation, value, error)
            except Exception as exc:  # raised to Lambda below, outside the task group
                raise_after = exc
            batcher.close()
    finally:
        if invocation.plugins:
            _end_plugins(invocation, output, raise_after)
        journal.release()
    if raise_after is not None:
        raise raise_after
    return output


# -- garbage collection during an invocation ----------------------------------------------------

#: CPython's young-generation threshold while an invocation runs (the interpreter's default is
#: 700 allocations). ``ADURABLE_GC_THRESHOLD=0`` leaves the interpreter's setting alone.
GC_THRESHOLD = int(os.environ.get("ADURABLE_GC_THRESHOLD", "100000"))

_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def _young_collections_relaxed() -> Iterator[None]:
    """Collect the young generation less often while an invocation runs.

    A fan-out keeps hundreds of branches alive at once (their coroutine frames, scopes and
    queued updates): with a young collection every 700 allocations, CPython walks that live set
    again and again before promoting it, which cost a third of a 10,000-item map's time. The
    threshold is raised for the invocation (never lowered), after one young collection so the
    count starts from zero, and restored when the last running invocation of the process ends.
    Nothing else changes: every generation is still collected.
    """
    global _gc_users, _gc_saved
    if GC_THRESHOLD <= 0:
        yield
        return
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            if _gc_saved[0] < GC_THRESHOLD:
                # Start from an empty young generation (a few hundred objects at most to walk):
                # an invocation that leaves fewer than GC_THRESHOLD objects alive then needs no
                # young collection at all, and what it allocated dies by reference counting.
                gc.collect(0)
                gc.set_threshold(GC_THRESHOLD, _gc_saved[1], _gc_saved[2])
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)
                _gc_saved = None


def _start_plugins(
    factories: tuple[object, ...], invocation: Invocation, user_input: Any, first: bool
) -> PluginRun:
    from adurable._plugins import InvocationStartInfo, PluginRun, deep_copy_input, snapshot

    journal = invocation.journal
    execution = journal.get(invocation.execution_arn.rsplit("/", 1)[-1])
    operations = snapshot(journal.values(), invocation.updated_operation_ids)
    info = InvocationStartInfo(
        request_id=getattr(invocation.lambda_context, "aws_request_id", None),
        execution_arn=invocation.execution_arn,
        is_first_invocation=first,
        execution_start_time=execution.start_timestamp if execution else None,
        execution_input=deep_copy_input(user_input),
        operations=operations,
        updated_operations={
            k: v for k, v in operations.items() if k in invocation.updated_operation_ids
        },
    )
    run = PluginRun.create(factories, info)
    invocation.batcher.on_merge = functools.partial(_operations_changed, invocation, run)
    return run


def _operations_changed(invocation: Invocation, run: PluginRun, changed: list[str]) -> None:
    from adurable._plugins import OperationChangeInfo, snapshot

    if changed:
        operations = snapshot(invocation.journal.values(), invocation.updated_operation_ids)
        updated = [operations[op_id] for op_id in changed if op_id in operations]
        run.emit(
            "on_operation_change",
            OperationChangeInfo(invocation.execution_arn, updated, operations),
        )


def _end_plugins(invocation: Invocation, output: dict[str, Any], raised: Exception | None) -> None:
    from adurable._plugins import (
        InvocationEndInfo,
        OperationEndInfo,
        PluginInvocationStatus,
        snapshot,
    )

    run = invocation.plugins
    assert run is not None
    for op_id in invocation.updated_operation_ids:  # completed while suspended, never read
        op = invocation.journal.get(op_id)
        if op is not None and op.status.is_terminal:
            run.operation_end(OperationEndInfo.of(op, is_replayed=True))
    status = (
        PluginInvocationStatus(output["Status"]) if raised is None else PluginInvocationStatus.RETRY
    )
    error = output.get("Error")
    execution = invocation.journal.get(invocation.execution_arn.rsplit("/", 1)[-1])
    run.end(
        InvocationEndInfo(
            request_id=getattr(invocation.lambda_context, "aws_request_id", None),
            execution_arn=invocation.execution_arn,
            is_first_invocation=not invocation.journal.has_work(),
            execution_start_time=execution.start_timestamp if execution else None,
            operations=snapshot(invocation.journal.values(), invocation.updated_operation_ids),
            status=status,
            error=_error_object(error) if error else None,
            execution_result=output.get("Result")
            if status is PluginInvocationStatus.SUCCEEDED
            else None,
        )
    )


def _error_object(error: Any) -> Any:
    from adurable._wire import ErrorObject

    return ErrorObject.model_validate(error)


def _user_input(journal: Journal, arn: str) -> Any:
    """The handler's input (§2.3): plain JSON of the EXECUTION operation's InputPayload.

    A well-formed raw EXECUTION operation is read as it is (no validation on the cold path);
    anything else goes through the validated operation.
    """
    op_id = arn.rsplit("/", 1)[-1]
    raw = journal.raw(op_id)
    details = raw.get("ExecutionDetails") if raw is not None else None
    payload = details.get("InputPayload") if isinstance(details, dict) else None
    well_formed = (
        raw is not None
        and raw["Type"] == OperationType.EXECUTION.value
        and (details is None or isinstance(details, dict))
        and (payload is None or isinstance(payload, str))
    )
    if not well_formed:
        execution = journal.get(op_id)
        if execution is None:
            return {}
        if execution.type is not OperationType.EXECUTION:
            raise DurableExecutionsError(
                f"operation {execution.id} named by the execution ARN is a "
                f"{execution.type.value}, not the EXECUTION operation"
            )
        model = execution.execution_details
        payload = model.input_payload if model else None
    if not payload or not payload.strip():
        return {}
    return json.loads(payload)


_NOTHING: Any = object()


async def _run_user(
    func: Handler[Any], user_input: Any, context: DurableContext, invocation: Invocation
) -> tuple[Any, BaseException | None]:
    try:
        with invocation.user_scope:
            return await func(user_input, context), None
    except BaseException as exc:
        if not invocation.suspended and _only_cancellation(exc):
            raise  # cancelled from outside: not ours to swallow
        return _NOTHING, exc
    return _NOTHING, None  # the user scope was cancelled: suspension


async def _answer(
    invocation: Invocation, value: Any, error: BaseException | None
) -> dict[str, Any]:
    """PROTOCOL §2.5.3, in its order of precedence."""
    batcher = invocation.batcher
    if batcher.failure is not None:
        return _checkpoint_failure(batcher.failure)
    if batcher.revoked:
        return {"Status": "PENDING"}
    if invocation.fatal is not None:
        return await _fail(invocation, invocation.fatal)
    leaves = list(_leaves(error)) if error is not None else []
    for leaf in leaves:
        if isinstance(leaf, CheckpointFailed):
            return _checkpoint_failure(leaf.source)
    for leaf in leaves:
        if isinstance(leaf, ExecutionError):
            return await _fail(invocation, leaf)
    for leaf in leaves:
        if isinstance(leaf, InvocationError) and leaf.is_retryable():
            raise leaf
    if invocation.suspended or any(isinstance(leaf, SuspendExecution) for leaf in leaves):
        return {"Status": "PENDING"}
    for leaf in leaves:
        if isinstance(leaf, Exception):
            return await _fail(invocation, leaf)
    if error is not None:
        if any(isinstance(leaf, SystemExit) for leaf in leaves):
            await _flush_before_exit(invocation)
        raise error  # only control-flow exceptions we do not own (KeyboardInterrupt, ...)
    return await _succeed(invocation, value)


async def _flush_before_exit(invocation: Invocation) -> None:
    """User code called ``sys.exit``: the process ends with this invocation. As the official
    SDK's checkpoint worker sends the batch it has collected when it is stopped, send what is
    queued (async STARTs, e.g. of the step that exited) first, so later invocations see them."""
    with contextlib.suppress(Exception):
        await invocation.batcher.flush()


async def _succeed(invocation: Invocation, value: Any) -> dict[str, Any]:
    try:
        result = json.dumps(value)
    except (TypeError, ValueError) as exc:
        return await _fail(invocation, exc)
    if len(result) <= LAMBDA_RESPONSE_SIZE_LIMIT:
        return {"Status": "SUCCEEDED", "Result": result}
    pending = await _checkpoint_execution(invocation, OperationAction.SUCCEED, payload=result)
    return pending or {"Status": "SUCCEEDED", "Result": ""}


async def _fail(invocation: Invocation, exc: BaseException) -> dict[str, Any]:
    output = _failed(exc)
    if len(json.dumps(output)) <= LAMBDA_RESPONSE_SIZE_LIMIT:
        return output
    error = error_object_from_exception(exc)
    pending = await _checkpoint_execution(invocation, OperationAction.FAIL, error=error)
    return pending or {"Status": "FAILED"}


async def _checkpoint_execution(
    invocation: Invocation, action: OperationAction, **fields: Any
) -> dict[str, Any] | None:
    """Checkpoint an over-sized result (§2.5.2); returns an answer if that went wrong."""
    ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    update = Update(f"execution-result-{ms}", OperationType.EXECUTION, action, **fields)
    try:
        await invocation.batcher.checkpoint(update, sync=True)
    except CheckpointFailed as exc:
        return _checkpoint_failure(exc.source)
    except SuspendExecution:
        return {"Status": "PENDING"}
    return None


def _checkpoint_failure(source: BaseException) -> dict[str, Any]:
    if isinstance(source, BotoClientError):
        if source.is_stale_token:
            # Another invocation holds a newer token; this one stops. Everything it made
            # durable stays durable, and the next invocation replays from there.
            return {"Status": "PENDING"}
        if source.is_retryable():
            raise source
        return _failed(source)
    raise source


def _failed(exc: BaseException) -> dict[str, Any]:
    return {"Status": "FAILED", "Error": error_object_from_exception(exc).to_wire()}


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _only_cancellation(exc: BaseException) -> bool:
    cancelled = anyio.get_cancelled_exc_class()
    return all(isinstance(leaf, cancelled) for leaf in _leaves(exc))


# -- the long-lived event loop for Lambda's synchronous calls ----------------------------------


def _load_backend(backend: str) -> None:
    """Import anyio's event-loop backend now, where the handler is decorated: in Lambda that is
    the INIT phase, which imports the handler's module (and which provisioned concurrency and
    SnapStart run ahead of time). Every invocation needs it, so a cold start pays the same in
    total, but the first invocation no longer pays ~30-60 ms of imports. ``import adurable``
    itself stays light, and what only some handlers need (aiobotocore, pydantic, map/parallel)
    still loads on first use."""
    with contextlib.suppress(ImportError):  # a missing backend fails clearly when it is used
        importlib.import_module(f"anyio._backends._{backend}")


_portals: dict[str, anyio.from_thread.BlockingPortal] = {}
_portals_lock = threading.Lock()


def _portal(backend: str) -> anyio.from_thread.BlockingPortal:
    with _portals_lock:
        portal = _portals.get(backend)
        if portal is None:
            import anyio.from_thread

            manager = anyio.from_thread.start_blocking_portal(backend)
            portal = manager.__enter__()
            atexit.register(_shutdown, portal, manager)
            _portals[backend] = portal
        return portal


def _shutdown(portal: anyio.from_thread.BlockingPortal, manager: Any) -> None:
    """At exit: close the shared client on its own loop, then stop the loop."""
    try:
        portal.call(close_shared_lambda_service)
    finally:
        manager.__exit__(None, None, None)
