"""The entry point: envelope, input, output encoding, failure classification (PROTOCOL §2, §9.2)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from tests.helpers import Driver, updates_of

from adurable import DurableContext, Duration, ExecutionError, durable_execution
from adurable.testing import FakeService, LocalRunner

pytestmark = pytest.mark.anyio


@durable_execution
async def echo(event: Any, context: DurableContext) -> Any:
    return event


@pytest.mark.parametrize(
    "event", [{}, {"CheckpointToken": "t"}, {"DurableExecutionArn": "a"}, None, "x"]
)
async def test_malformed_event_raises_the_clear_error(event: Any) -> None:
    with pytest.raises(ExecutionError, match="Check your resource configurations"):
        await echo.run(event, None, client=FakeService())


@pytest.mark.parametrize(
    ("payload", "expected"), [(None, {}), ("   ", {}), ('{"a": [1, 2]}', {"a": [1, 2]})]
)
async def test_input_is_plain_json_and_empty_means_empty_dict(
    payload: str | None, expected: Any
) -> None:
    service = FakeService()
    arn = service.start_execution(payload)
    output = await echo.run(service.invocation_event(arn), None, client=service)
    assert output == {"Status": "SUCCEEDED", "Result": json.dumps(expected)}


async def test_result_uses_json_dumps_defaults_and_none_is_null() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return event.get("value")

    service = FakeService()
    arn = service.start_execution(json.dumps({"value": {"a": 1, "b": [1.5, "é"]}}))
    out = await handler.run(service.invocation_event(arn), None, client=service)
    assert out["Result"] == '{"a": 1, "b": [1.5, "\\u00e9"]}'
    arn = service.start_execution(None)
    assert (await handler.run(service.invocation_event(arn), None, client=service))[
        "Result"
    ] == "null"


async def test_unserializable_result_fails_with_type_error() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return dt.datetime(2024, 1, 1)

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert result.error == {
        "ErrorType": "TypeError",
        "ErrorMessage": "Object of type datetime is not JSON serializable",
    }


async def test_user_exception_fails_with_its_type() -> None:
    class Declined(Exception):
        pass

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        raise Declined("card declined")

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert result.error == {
        "ErrorType": f"{__name__}.test_user_exception_fails_with_its_type.<locals>.Declined",
        "ErrorMessage": "card declined",
    }


async def test_large_result_is_checkpointed_as_appendix_a8() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        return "q" * (6 * 1024 * 1024 - 40)  # over the response limit, under 6 MiB

    driver = Driver(handler)
    driver.start()
    output = await driver.invoke()
    assert output == {"Status": "SUCCEEDED", "Result": ""}
    [[update]] = updates_of(driver.service)
    assert update["Id"].startswith("execution-result-") and update["Id"][17:].isdigit()
    assert update["Type"] == "EXECUTION" and update["Action"] == "SUCCEED"
    assert update["Payload"] == json.dumps("q" * (6 * 1024 * 1024 - 40))
    assert driver.service.execution(driver.arn).status == "SUCCEEDED"


async def test_initial_state_paging_loads_every_page() -> None:
    service = FakeService(page_size=3)
    steps = 10

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> int:
        total = 0
        for i in range(steps):
            total += await context.step(lambda _, i=i: i, name=f"s{i}")
        await context.wait(Duration(5), name="w")
        return total

    result = await LocalRunner(handler, service=service).run()
    assert (result.status, result.result) == ("SUCCEEDED", sum(range(steps)))
    # The second invocation's event carried one page of 3; the rest came through GetState.
    pages = [c for c in service.calls if c.api == "get_state"]
    assert len(pages) >= 3
    # Nothing was re-run: the replay found all ten steps.
    assert sum(1 for c in service.calls if c.api == "checkpoint") == steps + 1


def test_sync_lambda_entry_point_reuses_one_event_loop() -> None:
    service = FakeService()
    handler = durable_execution(client=service)(echo.func)
    arn = service.start_execution('{"n": 1}')
    assert handler(service.invocation_event(arn), None) == {
        "Status": "SUCCEEDED",
        "Result": '{"n": 1}',
    }
    arn = service.start_execution('{"n": 2}')
    assert handler(service.invocation_event(arn), None) == {
        "Status": "SUCCEEDED",
        "Result": '{"n": 2}',
    }


def test_sync_entry_point_on_trio() -> None:
    service = FakeService()
    handler = durable_execution(client=service, backend="trio")(echo.func)
    arn = service.start_execution('{"n": 3}')
    assert handler(service.invocation_event(arn), None) == {
        "Status": "SUCCEEDED",
        "Result": '{"n": 3}',
    }


async def test_an_invocation_relaxes_young_collections_from_an_empty_young_generation() -> None:
    import gc

    from adurable._execution import GC_THRESHOLD

    seen: dict[str, Any] = {}

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> None:
        seen["threshold"] = gc.get_threshold()[0]
        seen["young"] = gc.get_count()[0]

    before = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD - 1, before[1], before[2])
    try:
        gc.collect(0)
        garbage = [[] for _ in range(20_000)]  # young, and not collected automatically
        assert gc.get_count()[0] >= 19_000
        assert (await LocalRunner(handler).run()).status == "SUCCEEDED"
        del garbage
        assert seen["threshold"] == GC_THRESHOLD
        # counted from the young collection at the invocation's start, not from before it
        assert seen["young"] < 19_000
        assert gc.get_threshold()[0] == GC_THRESHOLD - 1  # restored when it ended
    finally:
        gc.set_threshold(*before)
