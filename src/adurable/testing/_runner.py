"""Run a durable handler to completion against a ``FakeService`` (invoke → suspend → advance → …).

``LocalRunner`` plays Lambda: it starts an execution, hands each invocation event to the
handler, feeds the answer back to the service, and — when the handler suspended — moves the
virtual clock straight to the next timer instead of waiting. No wall-clock time passes.
"""

from __future__ import annotations

import functools
import inspect
import json
import uuid
from typing import Any, Protocol

from adurable.testing._fake import ChainedInvokeRequest, FakeService
from adurable.testing._result import ExecutionResult, LambdaContext

__all__ = ("DurableHandler", "ExecutionResult", "LambdaContext", "LocalRunner")


class DurableHandler(Protocol):
    """What ``LocalRunner`` drives: the SDK's decorated handler object."""

    async def run(
        self, event: dict[str, Any], lambda_context: Any, *, client: Any
    ) -> dict[str, Any]: ...


class LocalRunner:
    """Drive ``handler`` through a whole execution on a ``FakeService``.

    Loop: build the invocation event, ``await handler.run(event, LambdaContext, client=service)``,
    report the answer (an exception is a failed invocation the service retries); stop when
    the execution is over; re-invoke at once if the service has news for the handler; else
    jump the virtual clock to the next timer (and re-invoke once it brought news); with no
    timer either — or only callback timeouts, unless ``time_out_callbacks`` — return with
    status ``"RUNNING"`` (the execution waits on the outside world: complete the callback on
    ``runner.service`` and call ``resume``).

    Functions registered with ``register`` are the targets of ``context.invoke``: the runner
    drives their executions (or calls them) in the same loop, on the same clock.
    """

    def __init__(
        self, handler: Any, *, service: FakeService | None = None, max_invocations: int = 1000
    ) -> None:
        self.handler: DurableHandler = handler
        self.service = service if service is not None else FakeService()
        self.max_invocations = max_invocations
        self._functions: dict[str, Any] = {}
        #: Child executions started by chained invokes that this runner drives, with handlers.
        self._targets: dict[str, DurableHandler] = {}
        self._invocations: dict[str, int] = {}
        self._time_out_callbacks = False

    def register(self, function_name: str, handler: Any) -> None:
        """Make ``function_name`` a chained-invoke target served by ``handler``.

        A durable handler (anything with ``async run(event, lambda_context, *, client)``, like
        ``@durable_execution`` functions) runs as a child execution of the service; its result
        or error completes the caller's CHAINED_INVOKE. Any other callable is a plain function
        called as ``handler(event, lambda_context)`` (awaited if it returns an awaitable); its
        return value, ``json.dumps``-ed, is the result, and an exception fails the invoke.
        Invoke it as ``"<function_name>:$LATEST"`` (or any qualifier, or an ARN).
        """
        durable = callable(getattr(handler, "run", None))
        if not durable and not callable(handler):
            raise TypeError(f"handler must be a durable handler or a callable, got {handler!r}")
        self.service.register_function(function_name, durable=durable)
        self._functions[function_name] = handler

    async def run(
        self,
        input: Any = None,
        *,
        execution_name: str | None = None,
        time_out_callbacks: bool = False,
    ) -> ExecutionResult:
        """Start an execution with ``json.dumps(input)`` (None → no payload) and drive it.

        Virtual time jumps over the execution's own timers (waits, retry delays, polls). When
        it waits on a callback, ``run`` returns status ``"RUNNING"`` so the test can complete
        the callback (``runner.service.send_callback_success``) and ``resume``; with
        ``time_out_callbacks=True`` time jumps to callback timeouts too.
        """
        payload = None if input is None else json.dumps(input)
        arn = self.service.start_execution(payload, execution_name=execution_name)
        return await self.resume(arn, time_out_callbacks=time_out_callbacks)

    async def resume(self, arn: str, *, time_out_callbacks: bool = False) -> ExecutionResult:
        """Keep driving an existing execution (e.g. after completing a callback)."""
        self._time_out_callbacks = time_out_callbacks
        service = self.service
        errors: list[BaseException] = []
        self._invocations = {}  # max_invocations counts per execution and per resume call
        fresh = True
        while service.execution(arn).status == "RUNNING":
            if fresh or service.has_ready_work(arn):
                fresh = False
                await self._invoke(arn, self.handler, errors)
            elif not await self._drive_targets():
                due = self._next_timer(arn)
                if due is None:
                    break  # waiting on the outside world
                service.clock.advance_to(due)
                service.fire_due_timers()
        return self._result(arn, errors)

    async def _invoke(self, arn: str, handler: DurableHandler, errors: list[BaseException]) -> None:
        """One invocation of ``handler`` for ``arn``, then pick up the targets it invoked."""
        service = self.service
        invocations = self._invocations.get(arn, 0)
        if invocations >= self.max_invocations:
            raise RuntimeError(
                f"execution {arn} still RUNNING after {self.max_invocations} invocations "
                "(max_invocations); is the handler looping without making progress?"
            )
        self._invocations[arn] = invocations + 1
        event = service.invocation_event(arn)
        context = LambdaContext(
            aws_request_id=service.execution(arn).request_id or "",
            invoked_function_arn=arn.split("/", 1)[0],
            clock=service.clock,
            started_at=service.clock.now(),
        )
        try:
            output = await handler.run(event, context, client=service)
        except Exception as exc:
            errors.append(exc)
            service.fail_invocation(arn, exc)
        else:
            service.finish_invocation(arn, output)
        await self._adopt_targets()

    async def _adopt_targets(self) -> None:
        """Take the chained invokes the service resolved: remember durable targets' executions,
        run plain targets at once. Requests for functions this runner does not serve stay
        STARTED (``complete_chained_invoke`` finishes them)."""
        for request in self.service.take_chained_invokes():
            handler = self._functions.get(request.function_name)
            if handler is None:
                continue
            if request.execution_arn is not None:
                self._targets[request.execution_arn] = handler
            else:
                await self._call_plain(request, handler)

    async def _call_plain(self, request: ChainedInvokeRequest, handler: Any) -> None:
        event = json.loads(request.payload) if request.payload else None
        context = LambdaContext(
            aws_request_id=str(uuid.uuid4()),
            function_name=request.function_name,
            function_version=request.qualifier or "$LATEST",
            clock=self.service.clock,
            started_at=self.service.clock.now(),
        )
        complete = functools.partial(
            self.service.complete_chained_invoke, request.caller_arn, request.operation_id
        )
        try:
            value = handler(event, context)
            if inspect.isawaitable(value):
                value = await value
            result = json.dumps(value)
        except Exception as exc:
            complete(error=_error_of(exc))
        else:
            complete(result=result)

    async def _drive_targets(self) -> bool:
        """Invoke every running target execution that is new or has news; True if any ran."""
        ran = False
        for arn, handler in list(self._targets.items()):
            execution = self.service.execution(arn)
            if execution.status != "RUNNING":
                del self._targets[arn]
            elif execution.invocations == 0 or self.service.has_ready_work(arn):
                await self._invoke(arn, handler, [])
                ran = True
        return ran

    def _next_timer(self, arn: str) -> float | None:
        """The earliest timer of the execution or of any target execution still running."""
        callbacks = self._time_out_callbacks
        dues = [self.service.next_timer(a, callbacks=callbacks) for a in (arn, *self._targets)]
        return min((d for d in dues if d is not None), default=None)

    def _result(self, arn: str, errors: list[BaseException]) -> ExecutionResult:
        execution = self.service.execution(arn)
        raw = execution.result
        result: Any = None
        if raw:
            try:
                result = json.loads(raw)
            except ValueError as exc:
                raise ValueError(
                    f"execution {arn} succeeded with a result that is not JSON: {raw[:200]!r}"
                ) from exc
        return ExecutionResult(
            arn=arn,
            status=execution.status,
            result=result,
            error=execution.error,
            operations=self.service.operations(arn),
            invocations=execution.invocations,
            invocation_errors=errors,
        )


def _error_of(exc: BaseException) -> dict[str, str]:
    """A plain target's exception as the ErrorObject Lambda reports for a function error."""
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    return {"ErrorType": name, "ErrorMessage": str(exc)}
