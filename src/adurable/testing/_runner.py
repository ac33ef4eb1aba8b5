"""Run a durable handler to completion on a ``LocalEngine`` with virtual time.

``LocalRunner`` starts an execution and lets the engine's scheduler play Lambda: it invokes
the handler, feeds its answers back to the service and — when everything waits on time — moves
the virtual clock straight to the next timer instead of waiting. No wall-clock time passes.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Protocol

from adurable.local._engine import LocalEngine
from adurable.local._localservice import LocalService
from adurable.testing._result import ExecutionResult, LambdaContext

__all__ = ("DurableHandler", "ExecutionResult", "LambdaContext", "LocalRunner")

#: The function name the runner's own handler runs under (ARNs read ``...:function:fn:$LATEST``).
ROOT_FUNCTION = "fn"


class DurableHandler(Protocol):
    """What ``LocalRunner`` drives: the SDK's decorated handler object."""

    async def run(
        self, event: dict[str, Any], lambda_context: Any, *, client: Any
    ) -> dict[str, Any]: ...


class LocalRunner:
    """Drive ``handler`` through a whole execution on a ``LocalEngine`` (``runner.engine``).

    The engine invokes the handler whenever the execution needs it and jumps the virtual
    clock over its timers (waits, retry delays, polls). A handler exception is a failed
    invocation the service retries. When the execution waits on the outside world — a
    callback, or a chained invoke no registered function serves — ``run`` returns status
    ``"RUNNING"``: complete the callback on ``runner.service`` and call ``resume``. With
    ``time_out_callbacks`` time jumps to callback timeouts too.

    Functions registered with ``register`` are the targets of ``context.invoke``; the engine
    drives their executions (or calls them) alongside, on the same clock.

    ``replay="always"`` is forced-replay mode: after every checkpoint that changed something
    the service withdraws the invocation's token, so the SDK ends the invocation and the
    handler is re-invoked from the start — every operation is replayed at every step, and the
    final outcome must equal a normal run's. ``max_invocations`` (per execution and per
    ``run``/``resume`` call) stops a handler that loops without making progress.
    """

    def __init__(
        self,
        handler: Any,
        *,
        service: LocalService | None = None,
        max_invocations: int = 1000,
        replay: Literal["auto", "always"] = "auto",
    ) -> None:
        self.handler: DurableHandler = handler
        self.engine = LocalEngine(service=service, replay=replay, max_invocations=max_invocations)
        self.engine.register(ROOT_FUNCTION, handler, durable=True, invoke_target=False)
        self.max_invocations = max_invocations

    @property
    def service(self) -> LocalService:
        """The engine's durable-execution service (send callbacks, read history here)."""
        return self.engine.service

    def register(self, function_name: str, handler: Any) -> None:
        """Make ``function_name`` a chained-invoke target served by ``handler``.

        A durable handler (anything with ``async run(event, lambda_context, *, client)``, like
        ``@durable_execution`` functions) runs as a child execution; its result or error
        completes the caller's CHAINED_INVOKE. Any other callable is a plain function called
        as ``handler(event, lambda_context)`` (awaited if it returns an awaitable); its return
        value, ``json.dumps``-ed, is the result, and an exception fails the invoke. Invoke it
        as ``"<function_name>:$LATEST"`` (or any qualifier, or an ARN).
        """
        self.engine.register(function_name, handler)

    async def run(
        self,
        input: Any = None,
        *,
        execution_name: str | None = None,
        time_out_callbacks: bool = False,
    ) -> ExecutionResult:
        """Start an execution with ``json.dumps(input)`` (None → no payload) and drive it."""
        payload = None if input is None else json.dumps(input)
        arn = self.service.start_execution(
            payload, function_name=ROOT_FUNCTION, execution_name=execution_name
        )
        return await self.resume(arn, time_out_callbacks=time_out_callbacks)

    async def resume(self, arn: str, *, time_out_callbacks: bool = False) -> ExecutionResult:
        """Keep driving an existing execution (e.g. after completing a callback)."""
        engine = self.engine
        function = self.service.execution(arn).function_name
        if function not in engine.functions():  # started by hand under another name
            engine.register(function, self.handler, durable=True, invoke_target=False)
        engine.time_out_callbacks = time_out_callbacks
        engine.scheduler.reset_counts()
        engine.reinvoke(arn)  # resume means: invoke now, whatever it waits on
        seen = len(engine.invocation_errors(arn))
        await engine.wait_until_done(arn)
        return self._result(arn, engine.invocation_errors(arn)[seen:])

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
            history=self.service.history(arn),
        )
