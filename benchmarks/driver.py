"""Drive a durable handler the way Lambda does: envelope in, output out, re-invoke on PENDING."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.fake import FakeService

MAX_INVOCATIONS = 1000


class LambdaContext:
    """The few attributes of Lambda's context object the SDKs may read."""

    aws_request_id = "bench-request"
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = 2048
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def drive(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    service: FakeService,
    context: Any,
) -> tuple[dict[str, Any], int]:
    """Invoke ``handler`` (synchronously, as Lambda does) until it answers something other than
    PENDING; returns that answer and the number of invocations."""
    for invocations in range(1, MAX_INVOCATIONS + 1):
        output = handler(service.invocation_event(), context)
        if output.get("Status") != "PENDING":
            return output, invocations
    raise RuntimeError(f"still PENDING after {MAX_INVOCATIONS} invocations")
