"""Fault tests of whole invocations over real HTTP: aiobotocore → 127.0.0.1 → FakeService.

Issue 2 acceptance: checkpoint 429 and 5xx are retried; "Invalid checkpoint token" answers
PENDING without duplicating side effects; other 4xx fail the execution; get-state paging with
several pages. The default client path (AWS_ENDPOINT_URL_LAMBDA) is exercised too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.service.http_server import CHECKPOINT, STATE, DurableHTTPServer, serve

from adurable import (
    CheckpointError,
    DurableContext,
    Duration,
    StepConfig,
    StepContext,
    StepSemantics,
    durable_execution,
)
from adurable._service import close_shared_lambda_service, open_lambda_client
from adurable.testing import FakeService

pytestmark = [
    pytest.mark.anyio,
]

CHECKPOINT_ERROR = "aws_durable_execution_sdk_python.exceptions.CheckpointError"


@pytest.fixture
def service(request: pytest.FixtureRequest) -> FakeService:
    return FakeService(page_size=getattr(request, "param", 2))


@pytest.fixture
def server(service: FakeService) -> Iterator[DurableHTTPServer]:
    with serve(service) as running:
        yield running


@pytest.fixture
async def client(server: DurableHTTPServer) -> AsyncIterator[Any]:
    async with open_lambda_client(endpoint_url=server.url, max_attempts=3) as lambda_client:
        yield lambda_client


class Workflow:
    """A handler with observable side effects: step a, wait, step b."""

    def __init__(self) -> None:
        self.effects: list[str] = []

        @durable_execution
        async def handler(event: Any, context: DurableContext) -> str:
            a = await context.step(self._effect("a"), name="a")
            await context.wait(Duration(5), name="pause")
            b = await context.step(self._effect("b"), name="b")
            return a + b

        self.handler = handler

    def _effect(self, label: str) -> Any:
        def run(_: StepContext) -> str:
            self.effects.append(label)
            return label

        return run

    async def invoke(self, service: FakeService, arn: str, client: Any) -> dict[str, Any]:
        output = await self.handler.run(service.invocation_event(arn), None, client=client)
        service.finish_invocation(arn, output)
        return output


def _advance(service: FakeService, arn: str) -> None:
    due = service.next_timer(arn)
    assert due is not None
    service.clock.advance_to(due)
    service.fire_due_timers()


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "TooManyRequestsException"), (503, "ServiceException"), (500, "ServiceException")],
)
async def test_throttling_and_5xx_are_retried_by_the_client(
    service: FakeService, server: DurableHTTPServer, client: Any, status: int, code: str
) -> None:
    flow = Workflow()
    arn = service.start_execution(None)
    server.inject(status, code, "try again", route=CHECKPOINT, times=2)
    assert await flow.invoke(service, arn, client) == {"Status": "PENDING"}
    assert server.counts[CHECKPOINT] == 2 + 2  # two refused, then [a START+SUCCEED], [WAIT START]
    _advance(service, arn)
    assert await flow.invoke(service, arn, client) == {"Status": "SUCCEEDED", "Result": '"ab"'}
    assert flow.effects == ["a", "b"]


async def test_persistent_5xx_raises_so_lambda_retries_the_invocation(
    service: FakeService, server: DurableHTTPServer, client: Any
) -> None:
    flow = Workflow()
    arn = service.start_execution(None)
    server.inject(503, "ServiceException", "down", route=CHECKPOINT, times=3)
    event = service.invocation_event(arn)
    with pytest.raises(CheckpointError) as info:
        await flow.handler.run(event, None, client=client)
    assert info.value.is_retryable()
    service.fail_invocation(arn, info.value)
    assert await flow.invoke(service, arn, client) == {"Status": "PENDING"}


@pytest.mark.parametrize(
    ("service", "refused_call"),
    [(1000, CHECKPOINT), (2, STATE)],  # stale on the START checkpoint / while paging the state
    indirect=["service"],
)
async def test_stale_token_answers_pending_and_duplicates_nothing(
    service: FakeService, server: DurableHTTPServer, client: Any, refused_call: str
) -> None:
    charges: list[int] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        await context.step(lambda _: "ok", name="prepare")
        await context.wait(Duration(5), name="pause")

        def charge(step: StepContext) -> str:
            charges.append(step.attempt)
            return "charged"

        once = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
        return await context.step(charge, name="charge", config=once)

    arn = service.start_execution(None)
    first = service.invocation_event(arn)
    assert (await handler.run(first, None, client=client)) == {"Status": "PENDING"}
    service.finish_invocation(arn, {"Status": "PENDING"})
    _advance(service, arn)

    stale = service.invocation_event(arn)
    fresh = service.invocation_event(arn)  # a concurrent invocation took over: `stale` is stale
    before = dict(server.counts)
    assert await handler.run(stale, None, client=client) == {"Status": "PENDING"}
    sent = {route: server.counts[route] - before.get(route, 0) for route in (CHECKPOINT, STATE)}
    # Exactly one refused call, and nothing was sent after it.
    assert (
        sent == {CHECKPOINT: 1, STATE: 0} if refused_call == CHECKPOINT else sent[CHECKPOINT] == 0
    )
    assert charges == []  # the at-most-once body never ran without a durable START

    output = await handler.run(fresh, None, client=client)
    service.finish_invocation(arn, output)
    assert output == {"Status": "SUCCEEDED", "Result": '"charged"'}
    assert charges == [1]
    checkpointed = [
        u["Name"] + " " + u["Action"]
        for call in service.calls
        if call.api == "checkpoint" and call.error is None
        for u in call.request.get("Updates") or []
    ]
    assert checkpointed.count("prepare SUCCEED") == 1
    assert checkpointed.count("charge START") == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "InvalidParameterValueException"),
        (403, "AccessDeniedException"),
        (502, "KMSAccessDeniedException"),
    ],
)
async def test_other_4xx_and_kms_errors_fail_the_execution(
    service: FakeService, server: DurableHTTPServer, client: Any, status: int, code: str
) -> None:
    flow = Workflow()
    arn = service.start_execution(None)
    attempts = 3 if status >= 500 else 1  # botocore retries any 5xx, KMS ones included
    server.inject(status, code, "Updates[0]: no way", route=CHECKPOINT, times=attempts)
    output = await flow.handler.run(service.invocation_event(arn), None, client=client)
    assert output["Status"] == "FAILED"
    assert output["Error"]["ErrorType"] == CHECKPOINT_ERROR
    assert "no way" in output["Error"]["ErrorMessage"]
    assert server.counts[CHECKPOINT] == attempts


async def test_get_state_paging_over_http(
    service: FakeService, server: DurableHTTPServer, client: Any
) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        total = 0
        for i in range(9):
            total += await context.step(lambda _, i=i: i, name=f"s{i}")
        await context.wait(Duration(5), name="pause")
        return total

    arn = service.start_execution(json.dumps({}))
    out = await handler.run(service.invocation_event(arn), None, client=client)
    service.finish_invocation(arn, out)
    _advance(service, arn)
    event = service.invocation_event(arn)
    assert event["InitialExecutionState"]["NextMarker"]
    before = server.counts[STATE]
    out = await handler.run(event, None, client=client)
    assert out == {"Status": "SUCCEEDED", "Result": str(sum(range(9)))}
    assert server.counts[STATE] - before >= 4  # 11 operations in pages of 2


async def test_default_client_follows_aws_endpoint_url_lambda(
    service: FakeService, server: DurableHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.url)
    flow = Workflow()
    arn = service.start_execution(None)
    try:
        output = await flow.handler.run(service.invocation_event(arn), None)
    finally:
        await close_shared_lambda_service()
    assert output == {"Status": "PENDING"}
    assert server.counts[CHECKPOINT] >= 2
