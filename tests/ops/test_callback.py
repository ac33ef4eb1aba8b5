"""create_callback, Callback.result and wait_for_callback (PROTOCOL §7.6, §7.7, A.3)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from tests.helpers import Driver, short, updates_of

from adurable import (
    Callback,
    CallbackConfig,
    CallbackError,
    CallbackExternalError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    DurableContext,
    Duration,
    JsonSerDes,
    RetryDecision,
    SuspendExecution,
    ValidationError,
    WaitForCallbackConfig,
    WaitForCallbackContext,
    durable_execution,
    durable_wait_for_callback,
)
from adurable._errors import TimedSuspendExecution
from adurable._journal import Journal
from adurable.testing import FakeService, LocalRunner

pytestmark = pytest.mark.anyio

OFFICIAL = "aws_durable_execution_sdk_python.exceptions."
ID1 = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"
ID2 = "c5faca15ac2f93578b39ef4b6bbb871bdedce4ddd584fd31f0bb66fade3947e6"
ID3 = "6f760b9e9eac89f07ab0223b0f4acb04d1e355d893a1b86a83f4d4b405adee99"
ID3_1 = "4fcce65ec00309c63e7973cc7ba98d082f6db23ff491f8ae0d358d94a449573f"
ID3_2 = "5430c3612b2dbf51c497ea3272514f5540f0d18e8e5f4c6e5f52a8080385df6b"
ID1_1 = "974bfc6321e227b0ff101342eaf19b336f002dc6cc99c18f0941a7755cc20fc4"
ID1_2 = "9d8bc609108ec7b3600d6cceec22d18553e3e1ec52a3568cb251464a3d39d24f"


def no_retry(error: Exception, attempts: int) -> RetryDecision:
    return RetryDecision.no_retry()


def callback_id(service: FakeService, arn: str, name: str) -> str:
    for op in service.operations(arn):
        if op.name == name and op.callback_details is not None:
            assert op.callback_details.callback_id is not None
            return op.callback_details.callback_id
    raise AssertionError(f"no callback {name!r}")


def event_with(driver: Driver, **status_by_name: dict[str, Any]) -> dict[str, Any]:
    """The next invocation event, with the named operations' wire dicts patched."""
    event = driver.service.invocation_event(driver.arn)
    for op in event["InitialExecutionState"]["Operations"]:
        op.update(status_by_name.get(op.get("Name", ""), {}))
    return event


# ---------------------------------------------------------------------------- create_callback


async def test_create_callback_then_result_matches_appendix_a3() -> None:
    seen: list[tuple[str, bool]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = CallbackConfig(timeout=Duration(30), heartbeat_timeout=Duration(10))
        cb = await context.create_callback("approval", config)
        seen.append((cb.callback_id, context.is_replaying()))
        await context.step(lambda _: None, name="notify")
        return await cb.result()

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    cid = callback_id(driver.service, driver.arn, "approval")
    driver.service.send_callback_success(cid, b'"APPROVED"')
    output = await driver.invoke()
    assert output == {"Status": "SUCCEEDED", "Result": json.dumps('"APPROVED"')}
    assert seen == [(cid, False), (cid, True)]  # same id on replay, nothing new created
    assert updates_of(driver.service) == [
        [
            {
                "Id": ID1,
                "Name": "approval",
                "Type": "CALLBACK",
                "SubType": "Callback",
                "Action": "START",
                "CallbackOptions": {"TimeoutSeconds": 30, "HeartbeatTimeoutSeconds": 10},
            }
        ],
        [
            {"Id": ID2, "Name": "notify", "Type": "STEP", "SubType": "Step", "Action": "START"},
            {
                "Id": ID2,
                "Name": "notify",
                "Type": "STEP",
                "SubType": "Step",
                "Action": "SUCCEED",
                "Payload": "null",
            },
        ],
    ]


async def test_callback_options_always_carry_both_timeouts_and_custom_sub_type() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> str:
        cb = await context.create_callback(config=CallbackConfig(sub_type="Approval"))
        return cb.callback_id

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert updates_of(runner.service) == [
        [
            {
                "Id": ID1,
                "Type": "CALLBACK",
                "SubType": "Approval",
                "Action": "START",
                "CallbackOptions": {"TimeoutSeconds": 0, "HeartbeatTimeoutSeconds": 0},
            }
        ]
    ]
    assert result.result == result.operations[1].callback_details.callback_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "serdes", "expected"),
    [
        (b'"APPROVED"', None, '"APPROVED"'),  # passthrough: the raw string, quotes included
        (b'{"ok": true}', JsonSerDes(), {"ok": True}),
        (b"", None, None),  # empty body: no Result
        (b"", JsonSerDes(), None),
    ],
)
async def test_result_decoding(body: bytes, serdes: Any, expected: Any) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        cb = await context.create_callback("cb", CallbackConfig(serdes=serdes))
        return [await cb.result()]

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    driver.service.send_callback_success(callback_id(driver.service, driver.arn, "cb"), body)
    output = await driver.invoke()
    assert json.loads(output["Result"]) == [expected]


async def test_result_suspends_untimed_while_the_callback_is_started() -> None:
    suspensions: list[type[BaseException]] = []
    replaying: list[bool] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        replaying.append(context.is_replaying())
        cb = await context.create_callback("cb")
        replaying.append(context.is_replaying())  # a STARTED callback flips to NEW after it
        try:
            return await cb.result()
        except SuspendExecution as exc:
            suspensions.append(type(exc))
            raise

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    assert await driver.invoke() == {"Status": "PENDING"}  # re-invoked early: still waiting
    assert suspensions == [SuspendExecution, SuspendExecution]
    assert not issubclass(suspensions[0], TimedSuspendExecution)
    assert replaying == [False, False, True, False]
    assert [[short(u) for u in c] for c in updates_of(driver.service)] == [["CALLBACK START cb"]]


async def test_timeout_and_heartbeat_timeout_raise_callback_timeout_error() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        out = []
        for name, config in (
            ("overall", CallbackConfig(timeout=Duration(60))),
            ("heartbeat", CallbackConfig(timeout=Duration(600), heartbeat_timeout=Duration(5))),
        ):
            cb = await context.create_callback(name, config)
            try:
                await cb.result()
            except CallbackTimeoutError as exc:
                out.append([exc.message, exc.error_type, isinstance(exc, CallbackError)])
        return out

    runner = LocalRunner(handler)
    result = await runner.run(time_out_callbacks=True)
    assert result.status == "SUCCEEDED"
    timeout_type = OFFICIAL + "CallbackTimeoutError"
    assert result.result == [
        ["Callback timed out", timeout_type, True],
        ["Callback timed out on heartbeat", timeout_type, True],
    ]
    # the service's own error type stays on the operation
    details = result.get_callback("heartbeat").callback_details
    assert details is not None and details.error is not None
    assert details.error.error_type == "Callback.Heartbeat"


async def test_heartbeat_keeps_the_callback_alive() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = CallbackConfig(heartbeat_timeout=Duration(10))
        cb = await context.create_callback("cb", config)
        return await cb.result()

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    start = driver.service.clock.now()
    assert driver.service.next_timer(driver.arn) == start + 10
    driver.service.clock.advance(8)
    driver.service.send_callback_heartbeat(callback_id(driver.service, driver.arn, "cb"))
    assert driver.service.next_timer(driver.arn) == start + 18


async def test_external_failure_is_deferred_to_result_and_replays_identically() -> None:
    trace: list[str] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        cb = await context.create_callback("pay")
        trace.append("created")  # runs identically whatever the callback's outcome
        try:
            await cb.result()
        except CallbackExternalError as exc:
            trace.append(f"{exc.message}|{exc.data}|{exc.error_type}")
        await context.wait(Duration(1))
        return "done"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "RUNNING"
    error = {"ErrorMessage": "declined", "ErrorType": "Denied", "ErrorData": '{"code":7}'}
    runner.service.send_callback_failure(callback_id(runner.service, result.arn, "pay"), error)
    result = await runner.resume(result.arn)
    assert (result.status, result.result) == ("SUCCEEDED", "done")
    failure = f'declined|{{"code":7}}|{OFFICIAL}CallbackExternalError'
    assert trace == ["created", "created", failure, "created", failure]


@pytest.mark.parametrize(
    ("status", "error", "raised", "message"),
    [
        ("FAILED", None, CallbackExternalError, "Callback failed"),
        ("CANCELLED", None, CallbackExternalError, "Callback failed"),
        ("STOPPED", {"ErrorMessage": "stopped by user"}, CallbackExternalError, "stopped by user"),
        ("TIMED_OUT", None, CallbackTimeoutError, "Callback timed out"),
    ],
)
async def test_result_outcome_per_stored_status(
    status: str, error: dict[str, Any] | None, raised: type[Exception], message: str
) -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        cb = await context.create_callback("cb")
        try:
            await cb.result()
        except CallbackError as exc:
            return [type(exc).__name__, exc.message]
        return None

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    cid = callback_id(driver.service, driver.arn, "cb")
    details: dict[str, Any] = {"CallbackId": cid}
    if error is not None:
        details["Error"] = error
    event = event_with(driver, cb={"Status": status, "CallbackDetails": details})
    output = await handler.run(event, None, client=driver.service)
    assert output == {"Status": "SUCCEEDED", "Result": json.dumps([raised.__name__, message])}


async def test_a_stored_callback_without_details_is_a_callback_error() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        try:
            cb = await context.create_callback("cb")
        except CallbackError as exc:
            return str(exc)
        return await cb.result()

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    event = event_with(driver)
    for op in event["InitialExecutionState"]["Operations"]:
        op.pop("CallbackDetails", None)
    output = await handler.run(event, None, client=driver.service)
    assert output["Status"] == "SUCCEEDED"
    assert json.loads(output["Result"]).startswith("Missing callback details")


async def test_result_of_a_missing_operation_is_a_callback_error() -> None:
    class NoScope:
        journal = Journal()
        execution_arn = "arn"

    cb: Callback[Any] = Callback("id", operation_id="nope", scope=NoScope(), serdes=None)  # type: ignore[arg-type]
    with pytest.raises(CallbackError, match="Callback operation must exist"):
        await cb.result()
    assert repr(cb) == "Callback(callback_id='id')"


async def test_create_callback_allocates_its_position_at_call_time() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        first = context.create_callback("first")
        second = context.create_callback("second")
        b = await second
        a = await first
        return [a.callback_id != b.callback_id]

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == [True]
    ids = {u["Name"]: u["Id"] for call in updates_of(runner.service) for u in call}
    assert ids == {"first": ID1, "second": ID2}


def test_callback_sub_type_is_validated_at_config_construction() -> None:
    with pytest.raises(ValidationError):
        CallbackConfig(sub_type="no spaces")


# ---------------------------------------------------------------------------- wait_for_callback


async def test_wait_for_callback_matches_appendix_a3_and_replays() -> None:
    submitted: list[str] = []
    caught: list[tuple[str | None, str | None, str]] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        await context.create_callback("a")  # positions 1 and 2 are taken, like in A.3
        await context.step(lambda _: None, name="b")

        def submit(cid: str, ctx: WaitForCallbackContext) -> None:
            submitted.append(cid)

        try:
            await context.wait_for_callback(
                submit, name="wfc", config=WaitForCallbackConfig(timeout=Duration(60))
            )
        except CallbackExternalError as exc:
            caught.append((exc.message, exc.data, exc.error_type))
        await context.wait(Duration(1))
        return "handled"

    driver = Driver(handler)
    driver.start()
    assert await driver.invoke() == {"Status": "PENDING"}
    cid = callback_id(driver.service, driver.arn, "wfc create callback id")
    error = {"ErrorMessage": "denied", "ErrorType": "Denied", "ErrorData": '{"d":1}'}
    driver.service.send_callback_failure(cid, error)
    assert await driver.invoke() == {"Status": "PENDING"}
    driver.advance()
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '"handled"'}
    assert submitted == [cid]  # the submitter step ran once
    external = OFFICIAL + "CallbackExternalError"
    assert caught == [("denied", '{"d":1}', external)] * 2  # first run and replay
    calls = updates_of(driver.service)
    container = {"Id": ID3, "Name": "wfc", "Type": "CONTEXT", "SubType": "WaitForCallback"}
    submitter = {"Id": ID3_2, "ParentId": ID3, "Name": "wfc submitter", "Type": "STEP"}
    assert calls[2:] == [
        [
            {**container, "Action": "START"},
            {
                "Id": ID3_1,
                "ParentId": ID3,
                "Name": "wfc create callback id",
                "Type": "CALLBACK",
                "SubType": "Callback",
                "Action": "START",
                "CallbackOptions": {"TimeoutSeconds": 60, "HeartbeatTimeoutSeconds": 0},
            },
        ],
        [
            {**submitter, "SubType": "Step", "Action": "START"},
            {**submitter, "SubType": "Step", "Action": "SUCCEED", "Payload": "null"},
        ],
        [
            {
                **container,
                "Action": "FAIL",
                "Error": {"ErrorMessage": "denied", "ErrorType": external, "ErrorData": '{"d":1}'},
            }
        ],
        [
            {
                "Id": "e8e70dc170e14333627b32c20ac6051fb9b6bd369c036afbaca2d9cd7ac3de65",
                "Type": "WAIT",
                "SubType": "Wait",
                "Action": "START",
                "WaitOptions": {"WaitSeconds": 1},
            }
        ],
    ]


async def test_wait_for_callback_success_reserializes_with_the_extended_serdes() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        async def submit(cid: str, ctx: WaitForCallbackContext) -> None:
            ctx.logger.info("submitting %s", cid)

        return await context.wait_for_callback(submit)

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    driver.service.send_callback_success(
        callback_id(driver.service, driver.arn, "create callback id"), b'"APPROVED"'
    )
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": json.dumps('"APPROVED"')}
    calls = updates_of(driver.service)
    assert [[short(u) for u in c] for c in calls] == [
        ["CONTEXT START", "CALLBACK START create callback id"],
        ["STEP START submitter", "STEP SUCCEED submitter"],
        ["CONTEXT SUCCEED"],
    ]
    assert calls[2][0] == {
        "Id": ID1,
        "Type": "CONTEXT",
        "SubType": "WaitForCallback",
        "Action": "SUCCEED",
        "Payload": json.dumps('"APPROVED"', separators=(",", ":")),
        "ContextOptions": {"ReplayChildren": False},
    }
    assert calls[0][1]["Id"] == ID1_1 and calls[1][0]["Id"] == ID1_2


async def test_custom_serdes_decodes_the_result_and_encodes_the_submitter_value() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        def submit(cid: str, ctx: WaitForCallbackContext) -> dict[str, int]:
            return {"sent": 1}

        config = WaitForCallbackConfig(serdes=JsonSerDes())
        return await context.wait_for_callback(submit, name="w", config=config)

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    cid = callback_id(driver.service, driver.arn, "w create callback id")
    driver.service.send_callback_success(cid, b'{"answer": 42}')
    assert await driver.invoke() == {"Status": "SUCCEEDED", "Result": '{"answer": 42}'}
    succeed = updates_of(driver.service)[1][1]
    assert (succeed["Name"], succeed["Payload"]) == ("w submitter", '{"sent": 1}')


async def test_submitter_gets_the_callback_id_and_a_context_and_may_be_sync() -> None:
    seen: list[Any] = []

    @durable_wait_for_callback
    def notify(cid: str, ctx: WaitForCallbackContext, email: str) -> None:
        seen.append((cid, email, type(ctx).__name__, threading.current_thread().name))

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return await context.wait_for_callback(notify("a@example.com"))

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "RUNNING"
    cid = callback_id(runner.service, result.arn, "notify create callback id")
    [(got, email, kind, thread)] = seen
    assert (got, email, kind) == (cid, "a@example.com", "WaitForCallbackContext")
    assert thread != threading.main_thread().name
    assert result.get_context("notify").sub_type == "WaitForCallback"
    assert result.get_step("notify submitter").status.value == "SUCCEEDED"


async def test_async_decorated_submitter() -> None:
    @durable_wait_for_callback
    async def ask(cid: str, ctx: WaitForCallbackContext, who: str) -> None:
        ctx.logger.info("asking %s", who)

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        return await context.wait_for_callback(ask("bob"), name="explicit")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.get_context("explicit").sub_type == "WaitForCallback"
    assert ask.__name__ == "ask"


async def test_failed_submitter_raises_callback_submitter_error() -> None:
    attempts: list[int] = []

    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        def submit(cid: str, ctx: WaitForCallbackContext) -> None:
            attempts.append(1)
            raise ConnectionError("queue down")

        try:
            await context.wait_for_callback(
                submit, name="w", config=WaitForCallbackConfig(retry_strategy=no_retry)
            )
        except CallbackSubmitterError as exc:
            cause = exc.__cause__
            return [exc.message, exc.error_type, type(cause).__name__, cause.error_type]  # type: ignore[union-attr]
        return None

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    step_error = OFFICIAL + "StepError"
    assert result.result == [
        "queue down",
        OFFICIAL + "CallbackSubmitterError",
        "StepError",
        step_error,
    ]
    assert attempts == [1]
    context_error = result.get_context("w").context_details
    assert context_error is not None and context_error.error is not None
    assert context_error.error.error_type == step_error


async def test_wait_for_callback_timeout_raises_callback_timeout_error() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        config = WaitForCallbackConfig(timeout=Duration(30))
        try:
            await context.wait_for_callback(lambda cid, ctx: None, config=config)
        except CallbackTimeoutError as exc:
            return exc.message
        return None

    result = await LocalRunner(handler).run(time_out_callbacks=True)
    assert (result.status, result.result) == ("SUCCEEDED", "Callback timed out")


async def test_other_container_failures_stay_child_context_errors() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        try:
            await context.wait_for_callback(lambda cid, ctx: None, name="w")
        except ChildContextError as exc:
            return [type(exc).__name__, exc.error_type, exc.message]
        return None

    driver = Driver(handler)
    driver.start()
    await driver.invoke()
    failed = {
        "Status": "FAILED",
        "ContextDetails": {"Error": {"ErrorType": "ValueError", "ErrorMessage": "odd"}},
    }
    output = await handler.run(event_with(driver, w=failed), None, client=driver.service)
    assert json.loads(output["Result"]) == ["ChildContextError", "ValueError", "odd"]


async def test_wait_for_callback_validation() -> None:
    @durable_execution
    async def handler(event: Any, context: DurableContext) -> Any:
        errors = []
        for args in ((None,), (lambda c, x: None, None, CallbackConfig())):
            try:
                context.wait_for_callback(*args)  # type: ignore[arg-type]
            except ValidationError as exc:
                errors.append(str(exc)[:30])
        await context.step(lambda _: 1, name="first")  # no position was consumed
        return errors

    runner = LocalRunner(handler)
    result = await runner.run()
    assert len(result.result) == 2
    assert updates_of(runner.service)[0][0]["Id"] == ID1
