"""What a local run hands back: the execution's outcome and its operations, and the stand-in
for Lambda's context object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adurable._wire import Operation, OperationType
from adurable.testing._clock import VirtualClock

__all__ = ("ExecutionResult", "LambdaContext")


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
