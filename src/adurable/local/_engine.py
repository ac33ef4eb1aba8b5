"""``LocalEngine``: durable functions without AWS — a local Lambda plus durable-execution service.

    engine = LocalEngine(store=SqliteStore("state.db"))           # VirtualClock by default
    engine.register("orders", orders_handler)                      # @durable_execution handler
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run)                                  # the scheduler
        result = await engine.invoke("orders:$LATEST", b'{"id": 7}')

The engine registers functions, starts executions through ``invoke`` (as Lambda's Invoke API
does), and its scheduler (``run``) invokes handlers in-process whenever an execution needs it
(``_scheduler``). ``service`` is the durable-execution service handlers get as their client and
the HTTP front end serves. The management calls (``get_execution``, ``get_history``,
``list_executions``, callbacks, ``stop_execution``) answer in the botocore output shapes and
raise ``ServiceError`` with the real API's codes; a rejected call changes nothing.

Threading: the management calls are synchronous and thread-safe (an HTTP server may call them
from threads); with a ``SqliteStore`` they write to the file before returning. The
scheduler's own service calls, and the SDK's through the service's awaitable methods, run in
worker threads when the store blocks, so the event loop never waits on the disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import anyio

from adurable.local._clock import Clock
from adurable.local._context import InvokeResult, exception_payload, function_error_payload
from adurable.local._core import executed_version
from adurable.local._history import page_events
from adurable.local._localservice import LocalService
from adurable.local._model import (
    DEFAULT_EXECUTION_TIMEOUT,
    TERMINAL,
    ServiceError,
    invalid,
    not_found,
)
from adurable.local._scheduler import Function, Scheduler, call_plain
from adurable.local._store import Store
from adurable.local._validate import EXECUTION_NAME_RE, TENANT_RE, parse_target
from adurable.local._views import describe_execution, list_page

__all__ = ("LocalEngine",)

_INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
_SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
_ASYNC_PAYLOAD_LIMIT = 1024 * 1024
_ARN_RE = re.compile(
    r"arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:function:[a-zA-Z0-9_-]+:"
    r"(?:\$LATEST(?:\.PUBLISHED)?|[0-9]+)/durable-execution/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+"
)
_CALLBACK_ID_RE = re.compile(r"[A-Za-z0-9+/]{1,1024}={0,2}")


class LocalEngine:
    """A local Lambda + durable-execution service driving registered handlers in-process.

    ``clock`` defaults to a ``VirtualClock`` (waits cost no time), ``store`` to a
    ``MemoryStore``. ``replay="always"`` is forced-replay mode: the service withdraws the
    checkpoint token after every checkpoint that changed something, so each invocation ends
    (PENDING) and the handler is re-invoked from the start. ``max_invocations`` guards against
    handlers that loop (see ``Scheduler``); ``sync_invoke_timeout`` bounds how long (wall-clock
    seconds) a RequestResponse ``invoke`` waits for its execution to end. Pass ``service`` to
    drive an existing ``LocalService`` (its clock and store are used).
    """

    def __init__(
        self,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        region: str = "us-east-1",
        account: str = "123456789012",
        page_size: int = 1000,
        service: LocalService | None = None,
        replay: Literal["auto", "always"] = "auto",
        max_invocations: int | None = None,
        sync_invoke_timeout: float = 900.0,
        record_calls: bool = True,
    ) -> None:
        if replay not in ("auto", "always"):
            raise ValueError(f"replay must be 'auto' or 'always', not {replay!r}")
        if service is None:
            service = LocalService(
                clock=clock,
                store=store,
                region=region,
                account=account,
                page_size=page_size,
                record_calls=record_calls,
            )
        self.service = service
        self.service.replay_always = replay == "always"
        self.sync_invoke_timeout = sync_invoke_timeout
        self._functions: dict[str, Function] = {}
        self.scheduler = Scheduler(service, self._functions)
        self.scheduler.max_invocations = max_invocations

    @property
    def clock(self) -> Clock:
        """The engine's clock (the service's)."""
        return self.service.clock

    @property
    def time_out_callbacks(self) -> bool:
        """Whether virtual time may jump to callback timeouts (see ``Scheduler``)."""
        return self.scheduler.time_out_callbacks

    @time_out_callbacks.setter
    def time_out_callbacks(self, value: bool) -> None:
        self.scheduler.time_out_callbacks = value

    def close(self) -> None:
        """Close the store. Not needed for correctness: every change is already written."""
        self.service.close()

    # ------------------------------------------------------------------ functions

    def register(
        self,
        function_name: str,
        handler: Any,
        *,
        durable: bool | None = None,
        execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT,
        invoke_target: bool = True,
    ) -> None:
        """Serve ``function_name`` with ``handler``.

        A durable handler (anything with ``async run(event, lambda_context, *, client)``, like
        ``@durable_execution`` functions) runs durable executions; invoke it with a qualifier
        (``name:$LATEST``, a version, an alias). Any other callable is a plain function called
        as ``handler(event, lambda_context)`` (awaited if it returns an awaitable).
        ``durable`` overrides the detection; ``execution_timeout`` (seconds) is the durable
        function's ``ExecutionTimeout``. ``invoke_target=False`` drives the function's
        executions without making it a target chained invokes resolve to (nor turning on
        chained-invoke resolution, see ``LocalService.register_function``).
        """
        if durable is None:
            durable = callable(getattr(handler, "run", None))
        if durable and not callable(getattr(handler, "run", None)):
            raise TypeError(f"a durable handler needs an async run() method, got {handler!r}")
        if not durable and not callable(handler):
            raise TypeError(f"handler must be a durable handler or a callable, got {handler!r}")
        if invoke_target:
            self.service.register_function(
                function_name, durable=durable, execution_timeout=execution_timeout
            )
        self._functions[function_name] = Function(function_name, handler, durable)
        self.scheduler.notify()

    def functions(self) -> list[str]:
        """The registered function names, sorted."""
        return sorted(self._functions)

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """The scheduler: drive every RUNNING execution until cancelled (see ``Scheduler``)."""
        await self.scheduler.run()

    @contextlib.asynccontextmanager
    async def running(self, *, grace: float = 10.0) -> AsyncIterator[None]:
        """Run the scheduler for the duration of the block unless it runs already.

        On the way out no new invocation starts; running ones get ``grace`` wall-clock seconds
        to finish before they are cancelled (and recorded as crashed, see ``Scheduler``).
        """
        if self.scheduler.running:
            yield
            return
        async with anyio.create_task_group() as tg:
            await tg.start(self.scheduler.run)
            try:
                yield
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(grace):
                    await self.scheduler.drain()
                tg.cancel_scope.cancel()

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action()`` ``delay`` seconds from now on the engine's clock (virtual time
        jumps there; see ``Scheduler.call_at``): the outside world acting on a schedule."""
        if delay < 0:
            raise ValueError(f"delay must not be negative, got {delay!r}")
        self.scheduler.call_at(self.clock.now() + delay, action)

    def add_observer(self, observer: Callable[[], None]) -> None:
        """Call ``observer()`` whenever the engine's state may have changed, before time moves
        on (see ``Scheduler.add_observer``)."""
        self.scheduler.add_observer(observer)

    def reinvoke(self, arn: str) -> None:
        """Have the scheduler invoke ``arn`` at once, news or not. An invocation started
        outside this engine that never reported back is recorded as crashed first."""
        self._view(arn)
        if not self.scheduler.invoking(arn):
            self.service.request_invocation(arn)

    async def wait_until_done(self, arn: str) -> None:
        """Wait until ``arn`` ended, or it (and its durable targets) wait only on the outside
        world (a callback, an unregistered target) with no timer that brings progress.

        Runs the scheduler meanwhile if it is not running. Raises RuntimeError when
        ``max_invocations`` stopped the scheduler.
        """
        self._view(arn)
        async with self.running():
            fatal = await self._wait_for(lambda: self.scheduler.settled(arn))
        if fatal is not None:  # raised out here, not wrapped in the task group's group
            raise fatal

    async def _wait_for(self, condition: Callable[[], bool]) -> BaseException | None:
        """Wait until ``condition()``; the scheduler's fatal error if it stopped instead."""
        scheduler = self.scheduler
        while True:
            changed = scheduler.changed()
            if scheduler.fatal is not None:
                return scheduler.fatal
            if condition():
                return None
            await changed.wait()

    # ------------------------------------------------------------------ invoke

    async def invoke(
        self,
        function_name: str,
        payload: bytes | str | None = None,
        *,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
        execution_name: str | None = None,
        tenant_id: str | None = None,
    ) -> InvokeResult:
        """Lambda ``Invoke``: start (or find) a durable execution, or call a plain function.

        A durable function needs a qualifier (in the name or ``qualifier``). With an
        ``execution_name`` the same name and payload return the existing execution; another
        payload raises ``DurableExecutionAlreadyStartedException``. RequestResponse waits for
        the execution to end (at most ``sync_invoke_timeout`` seconds: then a
        ``Sandbox.Timedout`` function error, the execution going on) and answers with its
        result, or its error as a function error; Event answers 202 at once.
        """
        name, qualifier = self._function_target(function_name, qualifier)
        function = self._functions.get(name)
        if function is None:
            raise not_found(self._function_not_found(name))
        if invocation_type not in _INVOCATION_TYPES:
            raise invalid(f"Invalid InvocationType: {invocation_type}")
        text = _payload_text(payload, invocation_type)
        if tenant_id is not None and not TENANT_RE.fullmatch(tenant_id):
            raise invalid(f"Invalid TenantId: {tenant_id}")
        version = executed_version(qualifier)
        if invocation_type == "DryRun":
            return InvokeResult(204, b"", None, None, version)
        if not function.durable:
            return await self._invoke_plain(function, text, qualifier, invocation_type)
        if qualifier is None:
            raise invalid(
                f"Durable function {name} must be invoked with a qualified name or ARN "
                f"(a version, an alias or $LATEST)"
            )
        arn = self._start(name, version, text, execution_name, tenant_id)
        if invocation_type == "Event":
            return InvokeResult(202, b"", None, arn, version)
        return await self._outcome(arn, version)

    def _function_target(self, function_name: str, qualifier: str | None) -> tuple[str, str | None]:
        target = parse_target(function_name, self.service.region, self.service.account)
        if target is None:
            if re.fullmatch(r"arn:aws[a-zA-Z-]*:lambda:.*|\d{12}:function:.*", function_name):
                raise not_found(f"Function not found: {function_name}")
            raise invalid(f"Invalid FunctionName: {function_name[:256]}")
        name, derived = target
        if qualifier is not None and derived is not None and qualifier != derived:
            raise invalid(
                "The derived qualifier from the function name does not match the specified "
                "qualifier."
            )
        return name, derived or qualifier

    def _function_not_found(self, name: str) -> str:
        region, account = self.service.region, self.service.account
        return f"Function not found: arn:aws:lambda:{region}:{account}:function:{name}"

    def _start(
        self,
        name: str,
        version: str,
        text: str | None,
        execution_name: str | None,
        tenant_id: str | None,
    ) -> str:
        if execution_name is not None:
            if not EXECUTION_NAME_RE.fullmatch(execution_name):
                raise invalid(f"Invalid DurableExecutionName: {execution_name}")
            existing = self.service.find_execution(name, version, execution_name)
            if existing is not None:
                if self._input_of(existing) != text:
                    raise ServiceError(
                        "DurableExecutionAlreadyStartedException",
                        f"Durable execution {execution_name} was already started with a "
                        "different payload",
                        409,
                    )
                return existing
        return self.service.start_execution(
            text,
            function_name=name,
            qualifier=version,
            execution_name=execution_name,
            tenant_id=tenant_id,
        )

    def _input_of(self, arn: str) -> str | None:
        execution_op = self.service.operations(arn)[0]
        details = execution_op.execution_details
        return details.input_payload if details is not None else None

    async def _outcome(self, arn: str, version: str) -> InvokeResult:
        fatal = None
        async with self.running():
            with anyio.move_on_after(self.sync_invoke_timeout):
                fatal = await self._wait_for(lambda: self._view(arn).status in TERMINAL)
        if fatal is not None:
            raise fatal
        view = self._view(arn)
        if view.status == "SUCCEEDED":
            body = (view.result if view.result is not None else "null").encode()
            return InvokeResult(200, body, None, arn, version)
        if view.status == "RUNNING":
            message = f"Task timed out after {self.sync_invoke_timeout:.2f} seconds"
            body = function_error_payload("Sandbox.Timedout", message)
        else:
            error = view.error or {}
            body = function_error_payload(
                error.get("ErrorType") or f"Execution.{view.status.title().replace('_', '')}",
                error.get("ErrorMessage"),
                data=error.get("ErrorData"),
                stack=error.get("StackTrace"),
            )
        return InvokeResult(200, body, "Unhandled", arn, version)

    async def _invoke_plain(
        self, function: Function, text: str | None, qualifier: str | None, invocation_type: str
    ) -> InvokeResult:
        version = executed_version(qualifier)
        event = json.loads(text) if text else None
        context = self.scheduler.plain_context(function.name, version)
        if invocation_type == "Event":

            async def job() -> None:
                with contextlib.suppress(Exception):
                    await call_plain(function.handler, event, context)

            self.scheduler.submit(job)
            return InvokeResult(202, b"", None, None, version)
        try:
            value = await call_plain(function.handler, event, context)
            body = json.dumps(value).encode()
        except Exception as exc:
            return InvokeResult(200, exception_payload(exc), "Unhandled", None, version)
        return InvokeResult(200, body, None, None, version)

    # ------------------------------------------------------------------ management API

    def get_execution(self, arn: str, *, include_data: bool = True) -> dict[str, Any]:
        """``GetDurableExecution``."""
        view = self._view(arn)
        return describe_execution(view, self._input_of(arn), include_data=include_data)

    def get_history(
        self,
        arn: str,
        *,
        include_data: bool = True,
        max_items: int | None = None,
        marker: str | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]:
        """``GetDurableExecutionHistory``: ``{"Events": [...], "NextMarker"?}``."""
        self._view(arn)
        return page_events(
            self.service.history(arn),
            include_data=include_data,
            max_items=max_items,
            marker=marker,
            reverse=reverse,
        )

    def list_executions(
        self,
        function_name: str,
        *,
        qualifier: str | None = None,
        statuses: list[str] | None = None,
        name: str | None = None,
        started_after: dt.datetime | None = None,
        started_before: dt.datetime | None = None,
        max_items: int | None = None,
        marker: str | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]:
        """``ListDurableExecutionsByFunction`` (newest first unless ``reverse``)."""
        function, qualifier = self._function_target(function_name, qualifier)
        views = [v for v in self.service.executions() if v.function_name == function]
        if function not in self._functions and not views:
            raise not_found(self._function_not_found(function))
        return list_page(
            views,
            statuses=statuses,
            name=name,
            qualifier=qualifier,
            started_after=started_after,
            started_before=started_before,
            max_items=max_items,
            marker=marker,
            reverse=reverse,
        )

    def send_callback_success(self, callback_id: str, result: bytes | str = b"") -> None:
        """``SendDurableExecutionCallbackSuccess``."""
        self.service.send_callback_success(_callback_id(callback_id), result)

    def send_callback_failure(self, callback_id: str, error: dict[str, Any]) -> None:
        """``SendDurableExecutionCallbackFailure`` (``error`` is an ErrorObject)."""
        self.service.send_callback_failure(_callback_id(callback_id), error)

    def send_callback_heartbeat(self, callback_id: str) -> None:
        """``SendDurableExecutionCallbackHeartbeat``."""
        self.service.send_callback_heartbeat(_callback_id(callback_id))

    def stop_execution(self, arn: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        """``StopDurableExecution``: ``{"StopTimestamp": datetime}``."""
        _check_arn(arn)
        stopped = self.service.stop_execution(arn, error)
        return {"StopTimestamp": dt.datetime.fromtimestamp(stopped, tz=dt.UTC)}

    def invocation_errors(self, arn: str) -> list[BaseException]:
        """The exceptions ``arn``'s handler raised in this process (failed invocations)."""
        return list(self.scheduler.errors.get(arn, ()))

    def _view(self, arn: str) -> Any:
        _check_arn(arn)
        if not self.service.has_execution(arn):
            raise not_found(f"Durable execution not found: {arn}")
        return self.service.execution(arn)


def _check_arn(arn: str) -> None:
    if not isinstance(arn, str) or len(arn) > 1024 or not _ARN_RE.fullmatch(arn):
        raise invalid(f"Invalid DurableExecutionArn: {str(arn)[:1024]}")


def _callback_id(callback_id: str) -> str:
    if not isinstance(callback_id, str) or not _CALLBACK_ID_RE.fullmatch(callback_id):
        raise invalid(f"Invalid CallbackId: {str(callback_id)[:1024]}")
    return callback_id


def _payload_text(payload: bytes | str | None, invocation_type: str) -> str | None:
    """The invocation payload as text (None when empty); checks size and JSON."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else (payload or b"")
    limit = _ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else _SYNC_PAYLOAD_LIMIT
    if len(raw) > limit:
        raise ServiceError(
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for the {invocation_type} invocation type",
            413,
        )
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
        json.loads(text)
    except ValueError as exc:
        raise ServiceError(
            "InvalidRequestContentException", f"Could not parse request body into json: {exc}", 400
        ) from exc
    return text
