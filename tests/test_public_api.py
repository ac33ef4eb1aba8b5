"""The public API is small, flat and exported once; importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import adurable
import adurable.testing

EXPECTED = {
    "BatchCompletionError",
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "Callback",
    "CallbackConfig",
    "CallbackError",
    "CallbackExternalError",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "CheckpointError",
    "ChildConfig",
    "ChildContextError",
    "CompletionConfig",
    "CompletionDecision",
    "CompletionItemStatus",
    "CompletionOutcome",
    "CompletionReason",
    "CompletionStatus",
    "Duration",
    "DurableContext",
    "DurableExecutionsError",
    "DurableHandler",
    "DurableOperationError",
    "EXTENDED_TYPES_SERDES",
    "ExecutionContext",
    "ExecutionError",
    "ExtendedTypeSerDes",
    "GetExecutionStateError",
    "InvocationError",
    "InvokeConfig",
    "InvokeError",
    "JitterStrategy",
    "JsonSerDes",
    "LinearRetryStrategyConfig",
    "MapConfig",
    "NestingType",
    "NonDeterministicExecutionError",
    "ParallelBranch",
    "ParallelConfig",
    "PassThroughSerDes",
    "PluginLoadError",
    "RetryDecision",
    "RetryPresets",
    "RetryStrategyConfig",
    "RetryableSerDesError",
    "SerDes",
    "SerDesContext",
    "SerDesError",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "SuspendExecution",
    "ValidationError",
    "WaitForCallbackConfig",
    "WaitForCallbackContext",
    "WaitForConditionCheckContext",
    "WaitForConditionConfig",
    "WaitForConditionDecision",
    "WaitForConditionError",
    "WaitStrategyConfig",
    "WithRetryConfig",
    "__version__",
    "create_linear_retry_strategy",
    "create_retry_strategy",
    "create_wait_strategy",
    "durable_execution",
    "durable_parallel_branch",
    "durable_step",
    "durable_wait_for_callback",
    "durable_with_child_context",
    "with_retry",
}


SUBMODULES = {"testing", "plugins", "local"}


def test_all_is_exactly_the_public_api() -> None:
    assert isinstance(adurable.__all__, tuple)
    assert set(adurable.__all__) == EXPECTED
    assert len(adurable.__all__) == len(set(adurable.__all__))
    public = {
        n
        for n in dir(adurable)
        # "@py_builtins"/"@pytest_ar": pytest's assertion rewriting of our pytest11 plugin
        if not n.startswith(("_", "@")) and n not in SUBMODULES
    }
    public |= {"__version__"}
    assert public == EXPECTED


def test_exported_classes_claim_the_package_as_their_module() -> None:
    for name in adurable.__all__:
        obj = getattr(adurable, name)
        if isinstance(obj, type):
            assert obj.__module__ == "adurable", name


def test_plugins_namespace_exports() -> None:
    import adurable.plugins

    assert isinstance(adurable.plugins.__all__, tuple)
    for name in adurable.plugins.__all__:
        assert hasattr(adurable.plugins, name)


def test_testing_namespace_exports() -> None:
    assert isinstance(adurable.testing.__all__, tuple)
    for name in adurable.testing.__all__:
        assert hasattr(adurable.testing, name)


def test_import_does_not_load_botocore_asyncio_backends_or_trio() -> None:
    code = (
        "import sys, adurable; "
        "heavy = ('aiobotocore', 'botocore', 'boto3', 'trio', 'httpx', 'httpx2'); "
        "bad = [m for m in heavy if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
