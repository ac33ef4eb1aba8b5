"""The seed guide's "Testing Reference" (Python) works as written, adapted only by async/await.

The guide's test, verbatim apart from ``async def``/``async with``/``await`` and the import of
``InvocationStatus`` from ``adurable.testing``, runs three ways: unmarked (the plugin hands it
to anyio, which runs it on asyncio and trio here), under ``@pytest.mark.anyio``, and under
pytest-asyncio's ``@pytest.mark.asyncio``.
"""

from __future__ import annotations

from typing import Any

import pytest

from adurable import DurableContext, StepContext, durable_execution, durable_step
from adurable.testing import InvocationStatus
from adurable.testing.pytest_plugin import DurableTestRunner

# -- "my_module": the function under test ------------------------------------------------------


@durable_step
def fetch_user(step: StepContext, user_id: str) -> dict[str, Any]:
    return {"id": user_id, "name": "Jane"}


@durable_execution
async def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    user = await context.step(fetch_user(event["user_id"]), name="fetch-user")
    return {"success": user["id"] == event["user_id"]}


# -- the guide's test --------------------------------------------------------------------------


@pytest.mark.durable_execution(
    handler=handler,
    lambda_function_name="my_function",
)
async def test_workflow(durable_runner):  # type: ignore[no-untyped-def]
    """Test durable function workflow."""
    async with durable_runner:
        result = await durable_runner.run(input={"user_id": "123"}, timeout=10)

    assert result.status is InvocationStatus.SUCCEEDED
    assert result.result == {"success": True}

    # Get step by name
    step_result = result.get_step("fetch-user")
    assert step_result.status is InvocationStatus.SUCCEEDED


@pytest.mark.anyio
@pytest.mark.durable_execution(
    handler=handler,
    lambda_function_name="my_function",
)
async def test_workflow_anyio_marker(durable_runner):  # type: ignore[no-untyped-def]
    """Test durable function workflow."""
    async with durable_runner:
        result = await durable_runner.run(input={"user_id": "123"}, timeout=10)

    assert result.status is InvocationStatus.SUCCEEDED
    assert result.result == {"success": True}

    # Get step by name
    step_result = result.get_step("fetch-user")
    assert step_result.status is InvocationStatus.SUCCEEDED


@pytest.mark.asyncio
@pytest.mark.durable_execution(
    handler=handler,
    lambda_function_name="my_function",
)
async def test_workflow_pytest_asyncio(durable_runner):  # type: ignore[no-untyped-def]
    """Test durable function workflow."""
    async with durable_runner:
        result = await durable_runner.run(input={"user_id": "123"}, timeout=10)

    assert result.status is InvocationStatus.SUCCEEDED
    assert result.result == {"success": True}

    # Get step by name
    step_result = result.get_step("fetch-user")
    assert step_result.status is InvocationStatus.SUCCEEDED


# -- what the guide's test relies on, checked explicitly ---------------------------------------


@pytest.mark.durable_execution(handler=handler, lambda_function_name="my_function")
async def test_the_runner_names_the_function_and_records_the_history(
    durable_runner: DurableTestRunner,
) -> None:
    async with durable_runner:
        result = await durable_runner.run(input={"user_id": "123"}, timeout=10)
    assert ":function:my_function:$LATEST/durable-execution/" in result.arn
    assert result.status == "SUCCEEDED"  # a StrEnum: plain strings still compare
    assert [e["EventType"] for e in result.history] == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    step = result.get_step("fetch-user")
    assert (step.result, step.attempt) == ({"id": "123", "name": "Jane"}, 1)
