"""What the engine hands a function besides its event, and what ``invoke`` hands back."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from typing import Any

from adurable.local._clock import Clock

__all__ = ("InvokeResult", "LambdaContext", "exception_payload", "function_error_payload")


@dataclass
class LambdaContext:
    """Stands in for the Lambda runtime's context object; time comes from the engine's clock."""

    aws_request_id: str
    function_name: str = "fn"
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""
    memory_limit_in_mb: int = 128
    log_group_name: str = "/aws/lambda/fn"
    log_stream_name: str = "adurable-local"
    #: Lambda timeout for this invocation, seconds.
    timeout_seconds: float = 900.0
    clock: Clock | None = field(default=None, repr=False)
    started_at: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation's (notional) timeout, on the engine clock."""
        if self.clock is None:
            return int(self.timeout_seconds * 1000)
        elapsed = self.clock.now() - self.started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of ``LocalEngine.invoke``, as Lambda's Invoke API reports it.

    ``status_code`` 200 (RequestResponse), 202 (Event) or 204 (DryRun); ``payload`` the
    function's response (for a function error, Lambda's ``{"errorMessage", "errorType",
    ...}`` object and ``function_error="Unhandled"``); ``durable_execution_arn`` for a
    durable function; ``executed_version`` the version that ran.
    """

    status_code: int
    payload: bytes
    function_error: str | None
    durable_execution_arn: str | None
    executed_version: str


def function_error_payload(
    error_type: str | None,
    message: str | None,
    *,
    data: str | None = None,
    stack: list[str] | None = None,
) -> bytes:
    """Lambda's function-error response body."""
    body: dict[str, Any] = {"errorMessage": message or "", "errorType": error_type or "Error"}
    if data is not None:
        body["errorData"] = data
    body["stackTrace"] = stack or []
    return json.dumps(body).encode()


def exception_payload(exc: BaseException) -> bytes:
    """The function-error body for an exception a plain function raised (the Python
    runtime reports the bare class name)."""
    stack = [line.rstrip("\n") for line in traceback.format_tb(exc.__traceback__)]
    return function_error_payload(type(exc).__name__, str(exc), stack=stack)
