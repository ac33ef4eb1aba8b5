"""The engine's scheduler: plays Lambda for every RUNNING execution of a registered function.

One loop, many tasks. Each turn of the loop:

1. applies the timers that are due on the clock (waits end, retries become READY, callbacks
   and executions time out, failed invocations become due for a retry);
2. starts a task for every execution that needs an invocation — never invoked yet, changed
   by the service since its last invocation (``UpdatedOperationIds``), a failed invocation
   due for a retry, or its token withdrawn in forced-replay mode — and is not being invoked
   already; for every chained invoke of a plain function still waiting for its result; and
   for every queued background job (Event invocations of plain functions);
3. if anything is running, waits to be woken (a task ended, or the service changed: a
   checkpoint, a callback, a new execution — the service calls ``notify`` after every change,
   from whatever thread made it);
4. otherwise waits on the clock until the next timer, or until woken. A ``RealClock`` really
   sleeps. A ``VirtualClock`` *jumps*: nothing can run, so every execution is waiting on time
   or on the outside world, and time moves straight to the earliest timer that brings progress
   (a wait, a step retry, an invocation retry; callback timeouts too with
   ``time_out_callbacks``). Callback timers that lie before that instant fire at their own
   instants and the execution timeout on the way, as they would in real time. With no such
   timer it waits for news.

``settled(arn)`` is the condition ``wait_until_done`` waits for: the execution ended, or
neither it nor any durable target of its chained invokes can make progress without the outside
world (nothing runnable, nothing running, no progress timer).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import inspect
import itertools
import json
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel

from adurable.local._clock import Clock
from adurable.local._context import LambdaContext
from adurable.local._core import error_from_exception
from adurable.local._localservice import LocalService
from adurable.local._model import (
    CALLBACK_HEARTBEAT,
    CALLBACK_TIMEOUT,
    INVOCATION_RETRY,
    STEP_RETRY,
    WAIT,
    ChainedInvokeRequest,
    ServiceError,
)

__all__ = ("Function", "Scheduler")

_R = TypeVar("_R")

#: Timers that bring an execution forward (virtual time jumps to these).
PROGRESS_TIMERS = frozenset({WAIT, STEP_RETRY, INVOCATION_RETRY})
CALLBACK_TIMERS = frozenset({CALLBACK_TIMEOUT, CALLBACK_HEARTBEAT})
ABANDONED = "The local engine stopped during this invocation"


@dataclass(frozen=True)
class Function:
    """A registered function: a durable handler (``async run(event, ctx, *, client)``) or a
    plain callable ``handler(event, ctx)`` (sync or async)."""

    name: str
    handler: Any
    durable: bool


class Scheduler:
    """Drives executions (see the module docstring). Owned by a ``LocalEngine``."""

    def __init__(self, service: LocalService, functions: dict[str, Function]) -> None:
        self.service = service
        self.functions = functions
        #: Let virtual time run out callback timeouts when nothing else can happen.
        self.time_out_callbacks = False
        #: Past this many invocations of one execution (see ``reset_counts``), stop and fail
        #: ``wait_until_done`` with RuntimeError (None: no limit).
        self.max_invocations: int | None = None
        #: Exceptions handlers raised, per execution ARN (each a failed invocation).
        self.errors: dict[str, list[BaseException]] = {}
        self.fatal: BaseException | None = None
        self._counts: dict[str, int] = {}
        self._busy: set[str] = set()
        self._plain_busy: set[tuple[str, str]] = set()
        self._jobs: list[Callable[[], Awaitable[None]]] = []
        self._jobs_running = 0
        self._running = False
        self._draining = False
        self._thread: int | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._wake: anyio.Event | None = None
        self._changed: anyio.Event | None = None
        #: The outside world's own timers (``call_at``): (when, sequence, action).
        self._external: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        #: Called at the start of every turn (``add_observer``).
        self._observers: list[Callable[[], None]] = []
        service.add_listener(self.notify)

    @property
    def clock(self) -> Clock:
        return self.service.clock

    @property
    def running(self) -> bool:
        return self._running

    @property
    def _stopped(self) -> bool:
        """Draining, or stopped by ``max_invocations``: start nothing, do not move time."""
        return self._draining or self.fatal is not None

    # ------------------------------------------------------------------ waking

    def notify(self) -> None:
        """Something changed: wake the loop (safe from any thread)."""
        wake, portal = self._wake, self._portal
        if wake is None or portal is None:
            return
        if threading.get_ident() == self._thread:
            wake.set()
            return
        with contextlib.suppress(RuntimeError):  # RuntimeError: the loop is gone
            portal.call(wake.set)

    def _bump(self) -> None:
        """Tell ``changed()`` waiters that the scheduler's view moved on."""
        if self._changed is not None:
            self._changed.set()
        self._changed = anyio.Event()

    def changed(self) -> anyio.Event:
        """An event set at the scheduler's next change of state."""
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def call_at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` (in the scheduler's thread) once the clock reaches ``when``.

        This is the outside world acting on a schedule — a callback answered two seconds after it
        was created, an operator stopping an execution at noon. Virtual time jumps to these
        instants like to any timer that brings progress, in order with the service's timers,
        and an execution is not ``settled`` while such an action is still to come.
        """
        heapq.heappush(self._external, (when, next(self._sequence), action))
        self.notify()

    def add_observer(self, observer: Callable[[], None]) -> None:
        """Call ``observer()`` at the start of every turn of the loop, in its thread.

        Every change the service makes wakes the loop, and a turn starts before time moves on,
        so an observer sees each state an execution rests in (after an invocation ended, after a
        timer fired) and can ``call_at`` in response before anything else happens.
        """
        self._observers.append(observer)

    def invoking(self, arn: str) -> bool:
        """Whether this scheduler is running an invocation of ``arn`` right now."""
        return arn in self._busy

    def reset_counts(self) -> None:
        """Restart the ``max_invocations`` count of every execution."""
        self._counts.clear()
        self.fatal = None

    def submit(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` in the scheduler's task group (now if it runs, else once it does)."""
        self._jobs.append(job)
        self.notify()

    # ------------------------------------------------------------------ the loop

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Drive executions until cancelled (see the module docstring)."""
        if self._running:
            raise RuntimeError("this engine's scheduler is already running")
        async with anyio.from_thread.BlockingPortal() as portal:
            self._enter(portal)
            try:
                async with anyio.create_task_group() as tg:
                    task_status.started()
                    while True:
                        await self._turn(tg)
            finally:
                self._exit()

    def _enter(self, portal: anyio.from_thread.BlockingPortal) -> None:
        self._running = True
        self._draining = False
        self._thread = threading.get_ident()
        self._portal = portal
        self._wake = anyio.Event()

    def _exit(self) -> None:
        self._running = False
        self._portal = self._thread = None
        self._wake = None
        self._bump()

    async def _turn(self, tg: anyio.abc.TaskGroup) -> None:
        wake = self._wake = anyio.Event()
        for observer in list(self._observers):
            observer()
        self._fire_external()
        await self._call(self.service.fire_due_timers)
        started = self._start_work(tg)
        self._bump()
        if started:
            await anyio.lowlevel.checkpoint()
        elif self._busy or self._plain_busy or self._jobs_running or self._stopped:
            await wake.wait()
        else:
            await self.clock.sleep_until(self._next_due(), wake)

    def _start_work(self, tg: anyio.abc.TaskGroup) -> bool:
        if self._stopped:
            return False
        started = False
        for arn in self.service.ready_executions(self._durable_functions()):
            if arn not in self._busy and self._within_budget(arn):
                self._busy.add(arn)
                tg.start_soon(self._invoke, arn)
                started = True
        for request in self.service.pending_plain_invokes():
            key = (request.caller_arn, request.operation_id)
            function = self.functions.get(request.function_name)
            if key not in self._plain_busy and function is not None and not function.durable:
                self._plain_busy.add(key)
                tg.start_soon(self._call_plain, request, function)
                started = True
        while self._jobs:
            self._jobs_running += 1
            tg.start_soon(self._job, self._jobs.pop(0))
            started = True
        return started

    def _fire_external(self) -> None:
        now = self.clock.now()
        while self._external and self._external[0][0] <= now:
            _, _, action = heapq.heappop(self._external)
            action()

    def _within_budget(self, arn: str) -> bool:
        count = self._counts.get(arn, 0)
        if self.max_invocations is not None and count >= self.max_invocations:
            self.fatal = RuntimeError(
                f"execution {arn} still RUNNING after {self.max_invocations} invocations "
                "(max_invocations); is the handler looping without making progress?"
            )
            return False
        self._counts[arn] = count + 1
        return True

    def _next_due(self) -> float | None:
        """When to wake up if nothing happens (see the module docstring)."""
        service = self.service
        if not self.clock.virtual:
            due = service.next_due()
        else:
            kinds = (
                PROGRESS_TIMERS | CALLBACK_TIMERS if self.time_out_callbacks else PROGRESS_TIMERS
            )
            due = service.next_due(kinds=kinds, functions=self._durable_functions())
        if self._external:
            external = self._external[0][0]
            due = external if due is None else min(due, external)
        if due is not None and self.clock.virtual and not self.time_out_callbacks:
            # A callback timer before that instant fires at its own instant, not with the
            # later one: in real time its execution is invoked in between.
            early = service.next_due(kinds=CALLBACK_TIMERS, functions=self._durable_functions())
            if early is not None and early < due:
                due = early
        return due

    def _durable_functions(self) -> set[str]:
        return {name for name, f in self.functions.items() if f.durable}

    async def _call(self, call: Callable[[], _R]) -> _R:
        return await self.service.call_async(call)

    # ------------------------------------------------------------------ tasks

    async def _invoke(self, arn: str) -> None:
        """One invocation of a durable execution's handler."""
        service = self.service
        try:
            view = service.execution(arn)
            function = self.functions[view.function_name]
            try:
                event = await self._call(functools.partial(service.invocation_event, arn))
            except RuntimeError:  # ended meanwhile (stopped, timed out)
                return
            await self._run_handler(arn, function, event)
        finally:
            self._busy.discard(arn)
            self._bump()
            self.notify()

    async def _run_handler(self, arn: str, function: Function, event: dict[str, Any]) -> None:
        service = self.service
        view = service.execution(arn)
        context = LambdaContext(
            aws_request_id=view.request_id or "",
            function_name=view.function_name,
            function_version=view.qualifier,
            invoked_function_arn=arn.split("/", 1)[0],
            clock=self.clock,
            started_at=self.clock.now(),
        )
        report: Callable[[], None]
        try:
            output = await function.handler.run(event, context, client=service)
        except Exception as exc:
            self.errors.setdefault(arn, []).append(exc)
            report = functools.partial(service.fail_invocation, arn, exc)
        except BaseException as exc:
            # ``sys.exit`` in a handler ends its Lambda runtime process, not the engine: the
            # invocation is a crash (Runtime.ExitError) and the execution is invoked again.
            status = exit_status(exc)
            message = ABANDONED
            if status is not None:
                self.errors.setdefault(arn, []).append(exc)
                message = (
                    f"RequestId: {context.aws_request_id} Error: Runtime exited with error: "
                    f"exit status {status}"
                )
            with anyio.CancelScope(shield=True):
                await self._call(functools.partial(service.abandon_invocation, arn, message))
            if status is None:
                raise
            return
        else:
            report = functools.partial(service.finish_invocation, arn, output)
        with anyio.CancelScope(shield=True):  # an answer, once given, is never lost
            await self._call(report)

    async def _call_plain(self, request: ChainedInvokeRequest, function: Function) -> None:
        """Run a plain function a chained invoke targets; its answer completes the invoke."""
        key = (request.caller_arn, request.operation_id)
        try:
            event = json.loads(request.payload) if request.payload else None
            context = self.plain_context(request.function_name, request.qualifier)
            complete = functools.partial(
                self.service.complete_chained_invoke, request.caller_arn, request.operation_id
            )
            try:
                result = json.dumps(await call_plain(function.handler, event, context))
            except Exception as exc:
                error = error_from_exception(exc).to_wire()
                await self._complete_plain(functools.partial(complete, error=error))
            else:
                await self._complete_plain(functools.partial(complete, result=result))
        finally:
            self._plain_busy.discard(key)
            self._bump()
            self.notify()

    async def _complete_plain(self, complete: Callable[[], None]) -> None:
        with contextlib.suppress(ServiceError):  # the caller ended (stopped, timed out)
            await self._call(complete)

    def plain_context(self, function_name: str, qualifier: str | None) -> LambdaContext:
        """The Lambda context of one call of a plain function."""
        return LambdaContext(
            aws_request_id=str(uuid.uuid4()),
            function_name=function_name,
            function_version=qualifier or "$LATEST",
            clock=self.clock,
            started_at=self.clock.now(),
        )

    async def _job(self, job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
        finally:
            self._jobs_running -= 1
            self._bump()
            self.notify()

    # ------------------------------------------------------------------ settling

    def settled(self, arn: str) -> bool:
        """``arn`` ended, or it and its durable targets wait only on the outside world."""
        service = self.service
        if service.execution(arn).status != "RUNNING":
            return True
        if self._external:
            return False
        calling = {caller for caller, _ in self._plain_busy}
        for request in service.pending_plain_invokes():
            function = self.functions.get(request.function_name)
            if function is not None and not function.durable:
                calling.add(request.caller_arn)
        todo, seen = [arn], set()
        while todo:
            current = todo.pop()
            if current in seen or service.execution(current).status != "RUNNING":
                continue
            seen.add(current)
            if current in calling or self._active(current):
                return False
            todo.extend(service.child_executions(current))
        return True

    def _active(self, arn: str) -> bool:
        """Running, runnable, or waiting on a timer that brings progress."""
        service = self.service
        if arn in self._busy or service.in_flight(arn):
            return True
        function = self.functions.get(service.execution(arn).function_name)
        if function is not None and function.durable and service.needs_invocation(arn):
            return True
        return service.next_timer(arn, callbacks=self.time_out_callbacks) is not None

    async def drain(self) -> None:
        """Start nothing new and wait until every running task has ended."""
        self._draining = True
        self.notify()
        while self._busy or self._plain_busy or self._jobs_running:
            await self.changed().wait()


def exit_status(exc: BaseException) -> int | None:
    """The process exit status when ``exc`` is ``SystemExit`` (alone, or the only kind of leaf
    in exception groups): 0 for no code, the code if an int, else 1 (as CPython exits)."""
    if isinstance(exc, BaseExceptionGroup):
        statuses = [exit_status(inner) for inner in exc.exceptions]
        if not statuses or any(s is None for s in statuses):
            return None
        return statuses[0]
    if not isinstance(exc, SystemExit):
        return None
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


async def call_plain(handler: Any, event: Any, context: LambdaContext) -> Any:
    """Call a plain function (awaiting its result if it is awaitable)."""
    value = handler(event, context)
    if inspect.isawaitable(value):
        value = await value
    return value
