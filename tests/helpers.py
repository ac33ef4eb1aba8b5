"""Small helpers shared by the tests: drive the fake service invocation by invocation."""

from __future__ import annotations

import json
from typing import Any

from adurable import DurableHandler
from adurable.testing import FakeService


def updates_of(service: FakeService) -> list[list[dict[str, Any]]]:
    """The Updates of every checkpoint call, exactly as the SDK sent them."""
    return [
        list(call.request.get("Updates") or [])
        for call in service.calls
        if call.api == "checkpoint"
    ]


def short(update: dict[str, Any]) -> str:
    """``TYPE ACTION Name`` for readable assertions about sequences."""
    return " ".join(
        str(x) for x in (update["Type"], update["Action"], update.get("Name", "")) if x != ""
    )


class Driver:
    """Start an execution and run invocations one at a time (for crash/replay scenarios)."""

    def __init__(self, handler: DurableHandler[Any], service: FakeService | None = None) -> None:
        self.handler = handler
        self.service = service or FakeService()
        self.arn = ""

    def start(self, input: Any = None) -> str:
        payload = None if input is None else json.dumps(input)
        self.arn = self.service.start_execution(payload)
        return self.arn

    async def invoke(self, handler: DurableHandler[Any] | None = None) -> dict[str, Any]:
        event = self.service.invocation_event(self.arn)
        output = await (handler or self.handler).run(event, None, client=self.service)
        self.service.finish_invocation(self.arn, output)
        return output

    def advance(self) -> None:
        """Jump the virtual clock to the next timer."""
        due = self.service.next_timer(self.arn)
        assert due is not None, "nothing is waiting on a timer"
        self.service.clock.advance_to(due)
        self.service.fire_due_timers()
