"""adurable's own service client (aiobotocore via ``open_lambda_client``) against the server.

The handler's checkpoints travel over real HTTP: the engine invokes the handler in-process, and
the handler talks back to the server through aiobotocore (aiohttp on asyncio, httpx on trio),
exactly as it would to Lambda.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adurable import DurableContext, Duration, StepContext, durable_execution
from adurable._errors import CheckpointError, GetExecutionStateError
from adurable._execution import DurableHandler
from adurable._service import ClientService, open_lambda_client
from adurable.local import LocalEngine
from adurable.local._server import DurableServer

pytestmark = [
    pytest.mark.anyio,
]


class OverHttp(DurableHandler[Any]):
    """A durable handler that ignores the engine's in-process client and uses ``http_client``."""

    def __init__(self, inner: DurableHandler[Any], http_client: Any) -> None:
        super().__init__(inner.func)
        self.http_client = http_client

    async def run(
        self, event: Any, lambda_context: Any = None, *, client: Any = None
    ) -> dict[str, Any]:
        return await super().run(event, lambda_context, client=self.http_client)


@pytest.fixture
async def aio_lambda(server: DurableServer) -> AsyncIterator[Any]:
    async with open_lambda_client(endpoint_url=server.url, max_attempts=1) as client:
        yield client


async def test_invoke_and_read_back_with_aiobotocore(aio_lambda: Any) -> None:
    response = await aio_lambda.invoke(FunctionName="greet:$LATEST", Payload=b'{"name": "aio"}')
    assert json.loads(await response["Payload"].read()) == {"greeting": "hello aio"}
    arn = response["DurableExecutionArn"]
    execution = await aio_lambda.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "SUCCEEDED"
    history = await aio_lambda.get_durable_execution_history(DurableExecutionArn=arn)
    assert history["Events"][0]["EventType"] == "ExecutionStarted"
    assert history["Events"][-1]["EventType"] == "ExecutionSucceeded"


async def test_sdk_checkpoints_over_http(engine: LocalEngine, aio_lambda: Any) -> None:
    effects: list[str] = []

    @durable_execution
    async def workflow(event: Any, context: DurableContext) -> int:
        def count(step: StepContext) -> int:
            effects.append("counted")
            return len(event["items"])

        n = await context.step(count, name="count")
        await context.wait(Duration.from_hours(1), name="nap")
        total = 0
        for i in range(n):  # enough operations to page GetDurableExecutionState
            total += await context.step(lambda _, i=i: i, name=f"item-{i}")
        return total

    engine.register("over-http", OverHttp(workflow, aio_lambda), durable=True)
    response = await aio_lambda.invoke(
        FunctionName="over-http:$LATEST", Payload=json.dumps({"items": list(range(12))}).encode()
    )
    assert json.loads(await response["Payload"].read()) == sum(range(12))
    assert effects == ["counted"]  # replayed, not re-run, after the wait
    history = await aio_lambda.get_durable_execution_history(
        DurableExecutionArn=response["DurableExecutionArn"]
    )
    types = [e["EventType"] for e in history["Events"]]
    assert types.count("InvocationCompleted") == 2
    assert types.count("StepSucceeded") == 13


async def test_client_service_classifies_server_errors(aio_lambda: Any) -> None:
    response = await aio_lambda.invoke(
        FunctionName="approval:$LATEST", InvocationType="Event", Payload=b"{}"
    )
    arn = response["DurableExecutionArn"]
    service = ClientService(aio_lambda)
    with pytest.raises(CheckpointError) as stale:
        await service.checkpoint(arn, "c3RhbGU=", [], "client-token-1")
    assert stale.value.is_retryable()  # "Invalid checkpoint token": a concurrent invocation won
    with pytest.raises(GetExecutionStateError) as stale_state:
        await service.get_state(arn, "c3RhbGU=", "ops:1")
    assert stale_state.value.is_retryable()

    unknown = arn.rsplit("/", 1)[0] + "/no-such-invocation"
    with pytest.raises(CheckpointError) as missing:
        await service.checkpoint(unknown.replace("approval", "nobody"), "c3RhbGU=", [], "t-2")
    assert not missing.value.is_retryable()  # a 4xx other than a stale token is fatal
