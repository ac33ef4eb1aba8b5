"""LocalRunner: the invoke → suspend → advance → re-invoke loop, with toy handlers.

The handlers below use ``Toy``, a deliberately tiny durable engine (sequential ids, JSON
payloads, one update list per call) that talks to the fake through the same awaitable client
methods the SDK uses. It is not the SDK; it only has to be good enough to drive the fake.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adurable._wire import OperationType
from adurable.testing import (
    ExecutionResult,
    FakeService,
    LambdaContext,
    LocalRunner,
    ServiceError,
    VirtualClock,
)

START = 1_767_225_600.0


class Suspend(BaseException):
    """The toy's suspension signal."""


class Toy:
    def __init__(self, event: dict[str, Any], client: FakeService) -> None:
        self.arn: str = event["DurableExecutionArn"]
        self.token: str | None = event["CheckpointToken"]
        self.client = client
        self.ops: dict[str, dict[str, Any]] = {}
        self.counter = 0
        self.updated: list[str] = event["UpdatedOperationIds"]
        self.pages = 0

    async def load(self, state: dict[str, Any]) -> None:
        for op in state["Operations"]:
            self.ops[op["Id"]] = op
        marker = state.get("NextMarker")
        while marker:
            assert self.token is not None
            page = await self.client.get_durable_execution_state(
                DurableExecutionArn=self.arn,
                CheckpointToken=self.token,
                Marker=marker,
                MaxItems=1000,
            )
            self.pages += 1
            for op in page["Operations"]:
                self.ops[op["Id"]] = op
            marker = page.get("NextMarker")

    def input(self) -> Any:
        payload = self.ops[self.arn.split("/")[-1]]["ExecutionDetails"].get("InputPayload")
        return json.loads(payload) if payload else None

    async def checkpoint(self, *updates: dict[str, Any]) -> None:
        assert self.token is not None
        response = await self.client.checkpoint_durable_execution(
            DurableExecutionArn=self.arn, CheckpointToken=self.token, Updates=list(updates)
        )
        self.token = response.get("CheckpointToken")
        await self.load(response["NewExecutionState"])

    def next_id(self) -> str:
        self.counter += 1
        return f"op-{self.counter}"

    async def step(
        self, name: str, fn: Callable[[int], Any], *, attempts: int = 1, delay: int = 1
    ) -> Any:
        op_id = self.next_id()
        base = {"Id": op_id, "Type": "STEP", "SubType": "Step", "Name": name}
        op = self.ops.get(op_id)
        status = op["Status"] if op else None
        if status == "SUCCEEDED":
            return json.loads(op["StepDetails"]["Result"])  # type: ignore[index]
        if status == "FAILED":
            raise RuntimeError(op["StepDetails"]["Error"]["ErrorMessage"])  # type: ignore[index]
        if status == "PENDING":
            raise Suspend
        attempt = (op["StepDetails"]["Attempt"] if op else 0) + 1
        start = [] if status == "STARTED" else [{**base, "Action": "START"}]
        try:
            value = fn(attempt)
        except Exception as exc:
            error = {"ErrorType": type(exc).__name__, "ErrorMessage": str(exc)}
            if attempt < attempts:
                options = {"NextAttemptDelaySeconds": delay}
                await self.checkpoint(
                    *start, {**base, "Action": "RETRY", "Error": error, "StepOptions": options}
                )
                raise Suspend from None
            await self.checkpoint(*start, {**base, "Action": "FAIL", "Error": error})
            raise
        await self.checkpoint(*start, {**base, "Action": "SUCCEED", "Payload": json.dumps(value)})
        return value

    async def wait(self, name: str, seconds: int) -> None:
        op_id = self.next_id()
        op = self.ops.get(op_id)
        if op is None:
            await self.checkpoint(
                {
                    "Id": op_id,
                    "Type": "WAIT",
                    "SubType": "Wait",
                    "Name": name,
                    "Action": "START",
                    "WaitOptions": {"WaitSeconds": seconds},
                }
            )
            op = self.ops[op_id]
        if op["Status"] != "SUCCEEDED":
            raise Suspend

    async def callback(self, name: str, *, timeout_s: int = 0) -> tuple[str, dict[str, Any]]:
        op_id = self.next_id()
        if op_id not in self.ops:
            await self.checkpoint(
                {
                    "Id": op_id,
                    "Type": "CALLBACK",
                    "SubType": "Callback",
                    "Name": name,
                    "Action": "START",
                    "CallbackOptions": {"TimeoutSeconds": timeout_s, "HeartbeatTimeoutSeconds": 0},
                }
            )
        op = self.ops[op_id]
        return op["CallbackDetails"]["CallbackId"], op


Script = Callable[[Toy, Any], Awaitable[Any]]


class ToyHandler:
    """Exposes ``async run(event, lambda_context, *, client)`` like the SDK's decorated handler."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.contexts: list[LambdaContext] = []
        self.events: list[dict[str, Any]] = []
        self.toys: list[Toy] = []

    async def run(
        self, event: dict[str, Any], lambda_context: Any, *, client: Any
    ) -> dict[str, Any]:
        self.contexts.append(lambda_context)
        self.events.append(event)
        toy = Toy(event, client)
        self.toys.append(toy)
        await toy.load(event["InitialExecutionState"])
        try:
            result = await self.script(toy, toy.input())
        except Suspend:
            return {"Status": "PENDING"}
        except RuntimeError as exc:
            return {
                "Status": "FAILED",
                "Error": {"ErrorType": "RuntimeError", "ErrorMessage": str(exc)},
            }
        return {"Status": "SUCCEEDED", "Result": json.dumps(result)}


def handler(script: Script) -> ToyHandler:
    return ToyHandler(script)


def constant(value: int) -> Callable[[int], int]:
    return lambda attempt: value


pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------------------- basics


async def test_echo_in_one_invocation() -> None:
    async def echo(toy: Toy, data: Any) -> Any:
        return {"got": data}

    h = handler(echo)
    runner = LocalRunner(h)
    result = await runner.run({"a": [1, 2]})
    assert isinstance(result, ExecutionResult)
    assert result.status == "SUCCEEDED"
    assert result.result == {"got": {"a": [1, 2]}}
    assert result.error is None
    assert result.invocations == 1
    assert [op.type for op in result.operations] == [OperationType.EXECUTION]
    execution = runner.service.operations(result.arn)[0]
    assert execution.execution_details is not None
    assert execution.execution_details.input_payload == '{"a": [1, 2]}'
    assert runner.service.clock.now() == START


async def test_no_input_means_no_payload() -> None:
    async def show(toy: Toy, data: Any) -> Any:
        return data

    runner = LocalRunner(handler(show))
    result = await runner.run()
    assert result.result is None
    op = result.operations[0]
    assert op.execution_details is not None
    assert op.execution_details.input_payload is None


async def test_steps_and_a_wait_skip_virtual_time() -> None:
    calls: list[str] = []

    def record(name: str, value: int) -> Callable[[int], int]:
        def body(attempt: int) -> int:
            calls.append(name)
            return value

        return body

    async def flow(toy: Toy, data: Any) -> Any:
        a = await toy.step("a", record("a", 1))
        await toy.wait("nap", 7 * 24 * 3600)
        b = await toy.step("b", record("b", 2))
        return a + b

    h = handler(flow)
    runner = LocalRunner(h)
    result = await runner.run(execution_name="week-long")
    assert "/durable-execution/week-long/" in result.arn
    assert (result.status, result.result, result.invocations) == ("SUCCEEDED", 3, 2)
    assert calls == ["a", "b"]  # "a" replayed, not re-run
    assert runner.service.clock.now() == START + 7 * 24 * 3600
    nap = result.get_wait("nap")
    assert nap.status == "SUCCEEDED"
    assert result.get_step("b").step_details is not None
    assert h.events[1]["UpdatedOperationIds"] == [nap.id]
    # Lambda context: fresh request id per invocation, matching the history
    ids = [c.aws_request_id for c in h.contexts]
    assert len(set(ids)) == 2
    history = runner.service.history(result.arn)
    completed = [e for e in history if e["EventType"] == "InvocationCompleted"]
    assert [e["InvocationCompletedDetails"]["RequestId"] for e in completed] == ids
    assert h.contexts[0].invoked_function_arn == result.arn.split("/")[0]


async def test_step_retries_count_attempts() -> None:
    seen: list[int] = []

    def flaky(attempt: int) -> str:
        seen.append(attempt)
        if attempt < 3:
            raise ValueError(f"boom {attempt}")
        return "ok"

    async def flow(toy: Toy, data: Any) -> Any:
        return await toy.step("flaky", flaky, attempts=5, delay=4)

    runner = LocalRunner(handler(flow))
    result = await runner.run()
    assert (result.status, result.result, result.invocations) == ("SUCCEEDED", "ok", 3)
    assert seen == [1, 2, 3]
    step = result.get_step("flaky")
    assert step.step_details is not None
    assert step.step_details.attempt == 3
    assert runner.service.clock.now() == START + 8


async def test_step_failure_fails_the_execution() -> None:
    def bad(attempt: int) -> None:
        raise RuntimeError("nope")

    async def flow(toy: Toy, data: Any) -> Any:
        return await toy.step("bad", bad, attempts=2, delay=1)

    result = await LocalRunner(handler(flow)).run()
    assert result.status == "FAILED"
    assert result.error == {"ErrorType": "RuntimeError", "ErrorMessage": "nope"}
    assert result.get_step("bad").status == "FAILED"
    assert result.invocations == 2


# ---------------------------------------------------------------------------- callbacks


async def test_callback_leaves_the_execution_running_until_completed() -> None:
    async def flow(toy: Toy, data: Any) -> Any:
        _, op = await toy.callback("approval")
        if op["Status"] == "SUCCEEDED":
            return op["CallbackDetails"]["Result"]
        raise Suspend

    runner = LocalRunner(handler(flow))
    result = await runner.run()
    assert result.status == "RUNNING"
    assert result.result is None
    assert result.invocations == 1
    callback = result.get_callback("approval")
    assert callback.callback_details is not None
    assert callback.callback_details.callback_id is not None
    runner.service.send_callback_success(callback.callback_details.callback_id, b'"APPROVED"')
    result = await runner.resume(result.arn)
    assert (result.status, result.result, result.invocations) == (
        "SUCCEEDED",
        '"APPROVED"',
        2,
    )


async def test_callback_timeout_is_driven_by_the_clock() -> None:
    async def flow(toy: Toy, data: Any) -> Any:
        _, op = await toy.callback("approval", timeout_s=3600)
        if op["Status"] == "STARTED":
            raise Suspend
        return op["Status"]

    runner = LocalRunner(handler(flow))
    waiting = await runner.run()  # waiting on the outside world: the test may complete it
    assert waiting.status == "RUNNING"
    assert runner.service.clock.now() == START
    result = await runner.resume(waiting.arn, time_out_callbacks=True)
    assert (result.status, result.result) == ("SUCCEEDED", "TIMED_OUT")
    assert runner.service.clock.now() == START + 3600


# ---------------------------------------------------------------------------- invocation errors


async def test_a_raising_handler_is_retried() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        async def run(self, event: dict[str, Any], lambda_context: Any, *, client: Any) -> Any:
            self.calls += 1
            if self.calls < 3:
                raise ConnectionError(f"transient {self.calls}")
            return {"Status": "SUCCEEDED", "Result": "42"}

    runner = LocalRunner(Flaky())
    result = await runner.run()
    assert (result.status, result.result, result.invocations) == ("SUCCEEDED", 42, 3)
    assert [str(e) for e in result.invocation_errors] == ["transient 1", "transient 2"]
    assert runner.service.clock.now() == START + 10  # two 5 s backoffs


async def test_an_always_raising_handler_fails_after_five_invocations() -> None:
    class Broken:
        async def run(self, event: dict[str, Any], lambda_context: Any, *, client: Any) -> Any:
            raise KeyError("missing")

    result = await LocalRunner(Broken()).run()
    assert result.status == "FAILED"
    assert result.invocations == 5
    assert result.error == {"ErrorType": "KeyError", "ErrorMessage": "'missing'"}
    assert len(result.invocation_errors) == 5


async def test_stale_token_error_from_the_fake_is_retried() -> None:
    async def flow(toy: Toy, data: Any) -> Any:
        return await toy.step("s", lambda attempt: attempt)

    service = FakeService()
    stale = ServiceError("InvalidParameterValueException", "Invalid checkpoint token", 400)
    service.inject_fault("checkpoint", stale)
    result = await LocalRunner(handler(flow), service=service).run()
    assert (result.status, result.result, result.invocations) == ("SUCCEEDED", 1, 2)
    assert result.invocation_errors == [stale]


async def test_max_invocations_guards_against_loops() -> None:
    async def forever(toy: Toy, data: Any) -> Any:
        toy.counter = len(toy.ops)  # a fresh position on every invocation: never replays
        await toy.wait("again", 1)

    runner = LocalRunner(handler(forever), max_invocations=3)
    with pytest.raises(RuntimeError, match="max_invocations"):
        await runner.run()
    assert (
        runner.service.execution(runner.service.calls[0].request["DurableExecutionArn"]).invocations
        == 3
    )


# ---------------------------------------------------------------------------- plumbing


async def test_paging_through_the_runner() -> None:
    async def many(toy: Toy, data: Any) -> Any:
        total = 0
        for i in range(10):
            total += await toy.step(f"s{i}", constant(i))
        await toy.wait("w", 1)
        return total

    h = handler(many)
    runner = LocalRunner(h, service=FakeService(page_size=4))
    result = await runner.run()
    assert (result.status, result.result) == ("SUCCEEDED", 45)
    assert h.toys[1].pages == 2  # 12 operations, pages of 4: event + 2 get_state calls
    assert len(h.toys[1].ops) == 12


async def test_shared_service_and_clock() -> None:
    clock = VirtualClock(1000.0)
    service = FakeService(clock=clock)

    async def flow(toy: Toy, data: Any) -> Any:
        await toy.wait("w", 30)
        return "done"

    h = handler(flow)
    result = await LocalRunner(h, service=service).run()
    assert result.result == "done"
    assert clock.now() == 1030.0
    # the Lambda context counts down in virtual time from the start of its invocation
    assert h.contexts[0].get_remaining_time_in_millis() == 900_000 - 30_000
    assert h.contexts[1].get_remaining_time_in_millis() == 900_000


async def test_get_operation_errors_list_names() -> None:
    async def flow(toy: Toy, data: Any) -> Any:
        await toy.step("charge", lambda attempt: 1)
        return None

    result = await LocalRunner(handler(flow)).run()
    assert result.get_operation("charge").type is OperationType.STEP
    with pytest.raises(KeyError, match=r"no operation named 'refund'.*'charge' \(STEP\)"):
        result.get_operation("refund")
    with pytest.raises(KeyError, match="no WAIT operation named 'charge'"):
        result.get_wait("charge")
    with pytest.raises(KeyError, match="CONTEXT"):
        result.get_context("charge")


async def test_non_json_result_is_reported() -> None:
    class Raw:
        async def run(self, event: dict[str, Any], lambda_context: Any, *, client: Any) -> Any:
            return {"Status": "SUCCEEDED", "Result": "not json"}

    with pytest.raises(ValueError, match="not JSON"):
        await LocalRunner(Raw()).run()


def test_lambda_context_without_clock() -> None:
    context = LambdaContext(aws_request_id="r1")
    assert context.get_remaining_time_in_millis() == 900_000
    assert context.function_name == "fn"
