"""Run a durable handler to completion against a ``FakeService`` (invoke → suspend → advance → …).

``LocalRunner`` plays Lambda: it starts an execution, hands each invocation event to the
handler, feeds the answer back to the service, and — when the handler suspended — moves the
virtual clock straight to the next timer instead of waiting. No wall-clock time passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from adurable._wire import Operation, OperationType
from adurable.testing._clock import VirtualClock
from adurable.testing._fake import FakeService

__all__ = ("DurableHandler", "ExecutionResult", "LambdaContext", "LocalRunner")


class DurableHandler(Protocol):
    """What ``LocalRunner`` drives: the SDK's decorated handler object."""

    async def run(
        self, event: dict[str, Any], lambda_context: Any, *, client: Any
    ) -> dict[str, Any]: ...


@dataclass
class LambdaContext:
    """Stands in for the Lambda runtime's context object; time comes from the fake's clock."""

    aws_request_id: str
    function_name: str = "fn"
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""
    memory_limit_in_mb: int = 128
    log_group_name: str = "/aws/lambda/fn"
    log_stream_name: str = "adurable-local"
    #: Lambda timeout for this invocation, seconds.
    timeout_seconds: float = 900.0
    clock: VirtualClock | None = field(default=None, repr=False)
    started_at: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        if self.clock is None:
            return int(self.timeout_seconds * 1000)
        elapsed = self.clock.now() - self.started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclass
class ExecutionResult:
    """Outcome of ``LocalRunner.run``.

    ``result`` is ``json.loads`` of the execution's result string (None when absent);
    ``status`` is ``"RUNNING"`` when the execution is still waiting on something only the
    outside world can deliver (a callback, a chained invoke). ``invocation_errors`` holds the
    exceptions the handler raised (each a failed invocation the service retried).
    """

    arn: str
    status: str
    result: Any
    error: dict[str, Any] | None
    operations: list[Operation]
    invocations: int
    invocation_errors: list[BaseException] = field(default_factory=list)

    def get_operation(self, name: str) -> Operation:
        """The first operation named ``name``; KeyError listing the known names otherwise."""
        return self._find(name, None)

    def get_step(self, name: str) -> Operation:
        return self._find(name, OperationType.STEP)

    def get_wait(self, name: str) -> Operation:
        return self._find(name, OperationType.WAIT)

    def get_context(self, name: str) -> Operation:
        return self._find(name, OperationType.CONTEXT)

    def get_callback(self, name: str) -> Operation:
        return self._find(name, OperationType.CALLBACK)

    def _find(self, name: str, kind: OperationType | None) -> Operation:
        for op in self.operations:
            if op.name == name and (kind is None or op.type is kind):
                return op
        what = "operation" if kind is None else f"{kind.value} operation"
        known = ", ".join(
            f"{op.name!r} ({op.type.value})" for op in self.operations if op.name is not None
        )
        raise KeyError(f"no {what} named {name!r}; named operations: {known or 'none'}")


class LocalRunner:
    """Drive ``handler`` through a whole execution on a ``FakeService``.

    Loop: build the invocation event, ``await handler.run(event, LambdaContext, client=service)``,
    report the answer (an exception is a failed invocation the service retries); stop when
    the execution is over; re-invoke at once if the service has news for the handler; else
    jump the virtual clock to the next timer and re-invoke; with no timer either, return with
    status ``"RUNNING"`` (the execution waits on the outside world — complete the callback on
    ``runner.service`` and call ``resume``).
    """

    def __init__(
        self, handler: Any, *, service: FakeService | None = None, max_invocations: int = 1000
    ) -> None:
        self.handler: DurableHandler = handler
        self.service = service if service is not None else FakeService()
        self.max_invocations = max_invocations

    async def run(self, input: Any = None, *, execution_name: str | None = None) -> ExecutionResult:
        """Start an execution with ``json.dumps(input)`` (None → no payload) and drive it."""
        payload = None if input is None else json.dumps(input)
        arn = self.service.start_execution(payload, execution_name=execution_name)
        return await self.resume(arn)

    async def resume(self, arn: str) -> ExecutionResult:
        """Keep driving an existing execution (e.g. after completing a callback)."""
        service = self.service
        errors: list[BaseException] = []
        invocations = 0
        while service.execution(arn).status == "RUNNING":
            if invocations and not service.has_ready_work(arn):
                due = service.next_timer(arn)
                if due is None:
                    break  # waiting on the outside world
                service.clock.advance_to(due)
                service.fire_due_timers()
            if invocations >= self.max_invocations:
                raise RuntimeError(
                    f"execution {arn} still RUNNING after {self.max_invocations} invocations "
                    "(max_invocations); is the handler looping without making progress?"
                )
            invocations += 1
            event = service.invocation_event(arn)
            context = LambdaContext(
                aws_request_id=service.execution(arn).request_id or "",
                invoked_function_arn=arn.split("/", 1)[0],
                clock=service.clock,
                started_at=service.clock.now(),
            )
            try:
                output = await self.handler.run(event, context, client=service)
            except Exception as exc:
                errors.append(exc)
                service.fail_invocation(arn, exc)
            else:
                service.finish_invocation(arn, output)
        return self._result(arn, errors)

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
