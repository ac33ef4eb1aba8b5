"""The pytest plugin, tested the way pytest plugins are: inner pytest runs (``pytester``).

Every inner run uses ``--strict-markers`` and turns warnings into errors, so an unregistered
marker or a deprecation in the plugin fails here.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import anyio
import pytest

from adurable import DurableContext, Duration, durable_execution
from adurable.testing import InvocationStatus
from adurable.testing.pytest_plugin import DurableTestRunner

pytest_plugins = ["pytester"]

MY_MODULE = """
from adurable import DurableContext, Duration, WaitForCallbackConfig, durable_execution

@durable_execution
async def handler(event, context: DurableContext):
    user = await context.step(lambda _: {"id": event["user_id"]}, name="fetch-user")
    await context.wait(Duration.from_hours(1), name="cool-down")
    return {"success": user["id"] == event["user_id"]}

@durable_execution
async def approval(event, context: DurableContext):
    return await context.wait_for_callback(
        lambda callback_id, ctx: None,
        name="approve",
        config=WaitForCallbackConfig(timeout=Duration.from_minutes(5)),
    )
"""

INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider
filterwarnings = error
asyncio_default_fixture_loop_scope = function
"""

GUIDE_TEST = '''
import pytest
from adurable.testing import InvocationStatus
from my_module import handler

@pytest.mark.durable_execution(
    handler=handler,
    lambda_function_name="my_function",
)
{decorator}
async def test_workflow(durable_runner, virtual_clock):
    """Test durable function workflow."""
    start = virtual_clock.now()
    async with durable_runner:
        result = await durable_runner.run(input={{"user_id": "123"}}, timeout=10)

    assert result.status is InvocationStatus.SUCCEEDED
    assert result.result == {{"success": True}}
    assert virtual_clock.now() == start + 3600  # the hour-long wait cost no real time

    # Get step by name
    step_result = result.get_step("fetch-user")
    assert step_result.status is InvocationStatus.SUCCEEDED
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(my_module=MY_MODULE)
    return pytester


def test_entry_point_is_registered() -> None:
    [plugin] = [e for e in entry_points(group="pytest11") if e.name == "adurable"]
    assert plugin.value == "adurable.testing.pytest_plugin"


def test_marker_is_registered(project: pytest.Pytester) -> None:
    result = project.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.durable_execution(handler*"])


@pytest.mark.parametrize(
    ("decorator", "outcomes"),
    [
        pytest.param("@pytest.mark.anyio", {"passed": 2}, id="anyio-asyncio-and-trio"),
        pytest.param("@pytest.mark.asyncio", {"passed": 1}, id="pytest-asyncio"),
        pytest.param("", {"passed": 2}, id="unmarked-goes-to-anyio"),
    ],
)
def test_guide_example_under_each_async_plugin(
    project: pytest.Pytester, decorator: str, outcomes: dict[str, int]
) -> None:
    project.makepyfile(test_guide=GUIDE_TEST.format(decorator=decorator))
    result = project.runpytest("-v")
    result.assert_outcomes(**outcomes)
    if decorator != "@pytest.mark.asyncio":
        result.stdout.fnmatch_lines(
            ["*test_workflow?asyncio? PASSED*", "*test_workflow?trio? PASSED*"]
        )


def test_pytest_asyncio_auto_mode_keeps_unmarked_tests(project: pytest.Pytester) -> None:
    project.makepyfile(test_guide=GUIDE_TEST.format(decorator=""))
    result = project.runpytest("-v", "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=1)  # run once, by pytest-asyncio, not also by anyio


def test_module_level_marker_and_positional_handler(project: pytest.Pytester) -> None:
    # A lone callable positional argument would make pytest decorate it: use with_args.
    project.makepyfile(
        test_module_mark="""
        import pytest
        from my_module import handler

        pytestmark = [pytest.mark.anyio, pytest.mark.durable_execution.with_args(handler)]

        async def test_one(durable_runner):
            result = await durable_runner.run(input={"user_id": "7"})
            assert result.result == {"success": True}
            assert result.arn.split(":")[6] == "fn"  # no lambda_function_name: "fn"
        """
    )
    project.runpytest().assert_outcomes(passed=2)


def test_callbacks_through_the_runner(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_callbacks="""
        import pytest
        from adurable.testing import InvocationStatus
        from my_module import approval

        @pytest.mark.anyio
        @pytest.mark.durable_execution(handler=approval, lambda_function_name="approver")
        async def test_approve(durable_runner):
            async with durable_runner:
                waiting = await durable_runner.run(timeout=10)
                assert waiting.status is InvocationStatus.RUNNING
                callback = waiting.get_callback("approve create callback id")
                assert callback.status is InvocationStatus.STARTED
                durable_runner.send_callback_success(callback.callback_id, '"yes"')
                result = await durable_runner.resume(waiting.arn, timeout=10)
            assert result.status is InvocationStatus.SUCCEEDED
            assert result.result == '"yes"'
            context = result.get_context("approve")
            assert [c.type.value for c in context.children] == ["CALLBACK", "STEP"]
            assert context.get_callback("approve create callback id").result == "yes"

        @pytest.mark.anyio
        @pytest.mark.durable_execution(handler=approval, time_out_callbacks=True)
        async def test_time_out(durable_runner):
            result = await durable_runner.run(timeout=10)
            assert result.status is InvocationStatus.FAILED
            assert result.error["ErrorType"].endswith("CallbackTimeoutError")
            callback = result.get_context("approve").children[0]
            assert callback.status is InvocationStatus.TIMED_OUT
            assert callback.error.error_type == "Callback.Timeout"
        """
    )
    project.runpytest().assert_outcomes(passed=4)


def test_forced_replay_through_the_marker(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_forced="""
        import pytest
        from my_module import handler

        @pytest.mark.anyio
        @pytest.mark.durable_execution(handler=handler, replay="always")
        async def test_forced(durable_runner):
            result = await durable_runner.run(input={"user_id": "1"})
            assert result.result == {"success": True}
            # re-invoked after every change: more invocations than the two a normal run needs
            assert result.invocations > 2
        """
    )
    project.runpytest().assert_outcomes(passed=2)


def test_durable_runner_without_marker_is_a_clear_error(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_no_marker="""
        def test_forgot(durable_runner):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*has no @pytest.mark.durable_execution(handler=*"])


def test_unknown_marker_option_is_a_clear_error(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_typo="""
        import pytest
        from my_module import handler

        @pytest.mark.durable_execution(handler=handler, function_name="x")
        def test_typo(durable_runner):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown durable_execution option(s) function_name*"])


def test_virtual_clock_alone_is_a_fresh_clock(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_clock="""
        from adurable.testing import VirtualClock

        def test_clock(virtual_clock):
            assert isinstance(virtual_clock, VirtualClock)
            virtual_clock.advance(5)
        """
    )
    project.runpytest().assert_outcomes(passed=1)


# ---------------------------------------------------------------------------- the runner itself


@durable_execution
async def stuck(event: Any, context: DurableContext) -> None:
    async def forever(_: Any) -> None:
        await anyio.sleep_forever()  # a step that never comes back

    await context.step(forever, name="forever")


@durable_execution
async def napping(event: Any, context: DurableContext) -> str:
    await context.wait(Duration.from_days(30), name="month")
    return "rested"


@pytest.mark.anyio
async def test_timeout_is_a_wall_clock_guard() -> None:
    runner = DurableTestRunner(stuck)
    with pytest.raises(TimeoutError, match=r"did not finish within 0.2 s of real time"):
        await runner.run(timeout=0.2)


@pytest.mark.anyio
async def test_timeout_does_not_limit_virtual_time() -> None:
    runner = DurableTestRunner(napping)
    start = runner.clock.now()
    result = await runner.run(timeout=5)
    assert (result.status, result.result) == (InvocationStatus.SUCCEEDED, "rested")
    assert runner.clock.now() - start == 30 * 86_400
    assert result.history[-1]["EventType"] == "ExecutionSucceeded"


@pytest.mark.parametrize("bad", [0, -1, "10", True])
@pytest.mark.anyio
async def test_bad_timeouts_are_rejected(bad: Any) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        await DurableTestRunner(napping).run(timeout=bad)


def test_runner_repr_and_sync_context_manager() -> None:
    with DurableTestRunner(napping, lambda_function_name="nap") as runner:
        assert repr(runner) == "<DurableTestRunner napping as 'nap'>"
