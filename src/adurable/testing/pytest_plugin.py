"""pytest plugin (``pytest11`` entry point ``adurable``): the guide's testing section, async.

    import pytest
    from adurable.testing import InvocationStatus
    from my_module import handler

    @pytest.mark.durable_execution(handler=handler, lambda_function_name="my_function")
    async def test_workflow(durable_runner):
        async with durable_runner:
            result = await durable_runner.run(input={"user_id": "123"}, timeout=10)
        assert result.status is InvocationStatus.SUCCEEDED
        assert result.get_step("fetch-user").status is InvocationStatus.SUCCEEDED

What it provides:

* the marker ``durable_execution(handler=..., lambda_function_name=...)`` naming the durable
  handler under test (also ``functions={name: handler}``: chained-invoke targets,
  ``time_out_callbacks=True``: let virtual time run into callback timeouts by default, and
  ``replay="always"``: forced-replay mode, the handler re-runs from the start at every step);
* the fixture ``durable_runner``: a ``DurableTestRunner`` for the marked handler, a
  ``LocalRunner`` on its own in-memory service and virtual clock;
* the fixture ``virtual_clock``: that runner's ``VirtualClock`` (a fresh one in tests without
  ``durable_runner``).

Async back ends: the fixtures are synchronous, so the test may run under anyio's plugin
(``@pytest.mark.anyio``, asyncio or trio) or under pytest-asyncio (``@pytest.mark.asyncio``).
An ``async def`` test that carries ``durable_execution`` and no async marker at all is handed
to anyio's plugin, so the guide's example runs as written; pytest-asyncio's auto mode keeps
its own tests.

``timeout`` in ``run``/``resume`` is a wall-clock guard in real seconds, not a budget of
virtual time: waits and retry delays never cost real time (the clock jumps over them), so the
only way a local run takes long is a handler that is really slow or stuck; the guard turns
that into a ``TimeoutError`` instead of a hung test run.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any, Literal

import anyio
import pytest

from adurable.testing._clock import VirtualClock
from adurable.testing._result import ExecutionResult
from adurable.testing._runner import LocalRunner

__all__ = ("MARKER", "DurableTestRunner", "durable_runner", "virtual_clock")

#: The marker naming the handler under test.
MARKER = "durable_execution"

_MARKER_HELP = (
    "durable_execution(handler, lambda_function_name='fn', functions=None, "
    "time_out_callbacks=False, replay='auto'): the durable handler the durable_runner fixture "
    "runs (adurable.testing.pytest_plugin)"
)
_OPTIONS = ("handler", "lambda_function_name", "functions", "time_out_callbacks", "replay")
_ASYNC_MARKERS = ("anyio", "asyncio", "trio")


class DurableTestRunner:
    """What the ``durable_runner`` fixture hands a test: a ``LocalRunner`` with test manners.

    ``run`` starts an execution of the marked handler and drives it until it ends or waits on
    the outside world (status ``RUNNING``: complete the callback with ``send_callback_success``
    and ``resume``). Every result carries the execution's ``history``. Entering the runner
    (``async with durable_runner:``, or ``with``) is optional; it mirrors the guide's shape and
    leaves room for engines that need starting and stopping. ``replay="always"`` runs the
    handler in forced-replay mode (see ``LocalRunner``).
    """

    def __init__(
        self,
        handler: Any,
        *,
        lambda_function_name: str = "fn",
        functions: Mapping[str, Any] | None = None,
        time_out_callbacks: bool = False,
        replay: Literal["auto", "always"] = "auto",
    ) -> None:
        self.handler = handler
        self.lambda_function_name = lambda_function_name
        self.time_out_callbacks = time_out_callbacks
        #: The underlying runner (its ``service`` is the in-memory durable-execution service).
        self.runner = LocalRunner(handler, replay=replay)
        for name, target in (functions or {}).items():
            self.runner.register(name, target)

    # -- what tests reach for -------------------------------------------------------------------

    @property
    def service(self) -> Any:
        """The in-memory service the executions run on (callbacks, history, operations)."""
        return self.runner.service

    @property
    def clock(self) -> VirtualClock:
        """The virtual clock of this runner's service."""
        clock = self.runner.service.clock
        if not isinstance(clock, VirtualClock):  # pragma: no cover - LocalRunner is virtual
            raise TypeError(f"the runner's service runs on {clock!r}, not a VirtualClock")
        return clock

    def register(self, function_name: str, handler: Any) -> None:
        """Make ``function_name`` a chained-invoke target (see ``LocalRunner.register``)."""
        self.runner.register(function_name, handler)

    async def run(
        self,
        input: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the guide's API; a wall-clock guard
        execution_name: str | None = None,
        time_out_callbacks: bool | None = None,
    ) -> ExecutionResult:
        """Start an execution with ``input`` (JSON-encoded; None → no payload) and drive it.

        ``timeout``: real seconds the call may take before it gives up with ``TimeoutError``
        (None: no limit); virtual time is unlimited. ``execution_name`` makes the start
        idempotent like ``X-Amz-Durable-Execution-Name``. ``time_out_callbacks`` (default: the
        marker's) lets virtual time run into callback timeouts instead of returning RUNNING.
        """
        payload = None if input is None else json.dumps(input)
        with self._guard(timeout, "run"):
            arn = self.service.start_execution(
                payload, function_name=self.lambda_function_name, execution_name=execution_name
            )
            result = await self.runner.resume(
                arn, time_out_callbacks=self._callbacks(time_out_callbacks)
            )
        return self._with_history(result)

    async def resume(
        self,
        arn: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - same guard as run()
        time_out_callbacks: bool | None = None,
    ) -> ExecutionResult:
        """Keep driving ``arn`` (after completing a callback, say); same options as ``run``."""
        with self._guard(timeout, "resume"):
            result = await self.runner.resume(
                arn, time_out_callbacks=self._callbacks(time_out_callbacks)
            )
        return self._with_history(result)

    def send_callback_success(self, callback_id: str, result: bytes | str = b"") -> None:
        """Complete a callback successfully (the body is the raw result, usually JSON text)."""
        self.service.send_callback_success(callback_id, result)

    def send_callback_failure(self, callback_id: str, error: Mapping[str, Any]) -> None:
        """Fail a callback with an ErrorObject dict (``{"ErrorType": .., "ErrorMessage": ..}``)."""
        self.service.send_callback_failure(callback_id, error)

    def send_callback_heartbeat(self, callback_id: str) -> None:
        """Restart a callback's heartbeat timeout."""
        self.service.send_callback_heartbeat(callback_id)

    def history(self, arn: str) -> list[dict[str, Any]]:
        """The execution's history events (PROTOCOL §14)."""
        events: list[dict[str, Any]] = self.service.history(arn)
        return events

    # -- context manager ------------------------------------------------------------------------

    async def __aenter__(self) -> DurableTestRunner:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __enter__(self) -> DurableTestRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __repr__(self) -> str:
        name = getattr(self.handler, "__name__", type(self.handler).__name__)
        return f"<DurableTestRunner {name} as {self.lambda_function_name!r}>"

    # -- internals ------------------------------------------------------------------------------

    def _callbacks(self, value: bool | None) -> bool:
        return self.time_out_callbacks if value is None else value

    def _guard(self, timeout: float | None, what: str) -> AbstractContextManager[None]:
        if timeout is None:
            return nullcontext()
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        return _wall_clock_guard(float(timeout), what)

    def _with_history(self, result: ExecutionResult) -> ExecutionResult:
        if not result.history:
            result.history = self.history(result.arn)
        return result


@contextmanager
def _wall_clock_guard(timeout: float, what: str) -> Iterator[None]:
    try:
        with anyio.fail_after(timeout if math.isfinite(timeout) else None):
            yield
    except TimeoutError:
        raise TimeoutError(
            f"durable_runner.{what}() did not finish within {timeout:g} s of real time. "
            "Virtual time (waits, retry delays) costs nothing, so the handler itself is slow or "
            "stuck: blocking calls outside steps, a step that never returns, or a loop that "
            "never reaches a durable operation."
        ) from None


# ---------------------------------------------------------------------------- pytest hooks


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line("markers", _MARKER_HELP)


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Any:
    """Hand unmarked ``async def`` durable tests to anyio (before anyio's own hook looks)."""
    if _unclaimed_async_durable_test(collector, name, obj):
        pytest.mark.anyio(obj)
    return (yield)


def _unclaimed_async_durable_test(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> bool:
    if not (collector.istestfunction(obj, name) and inspect.iscoroutinefunction(obj)):
        return False
    own = [mark.name for mark in getattr(obj, "pytestmark", ())]
    if MARKER not in own and collector.get_closest_marker(MARKER) is None:
        return False
    if any(m in own or collector.get_closest_marker(m) is not None for m in _ASYNC_MARKERS):
        return False
    config = collector.config
    if not config.pluginmanager.has_plugin("anyio"):
        return False
    return not (_ini(config, "asyncio_mode") == "auto" or _ini(config, "anyio_mode") == "auto")


def _ini(config: pytest.Config, name: str) -> object:
    option = config.getoption(name, default=None)
    if option is not None:
        return option
    try:
        return config.getini(name)
    except ValueError:  # no plugin registered this ini key
        return None


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def durable_runner(request: pytest.FixtureRequest) -> DurableTestRunner:
    """A ``DurableTestRunner`` for the handler named by ``@pytest.mark.durable_execution``."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        pytest.fail(
            f"{request.node.nodeid} uses the durable_runner fixture but has no "
            "@pytest.mark.durable_execution(handler=..., lambda_function_name=...) marker",
            pytrace=False,
        )
    return DurableTestRunner(**_marker_options(marker, request.node.nodeid))


@pytest.fixture
def virtual_clock(request: pytest.FixtureRequest) -> VirtualClock:
    """The ``durable_runner``'s virtual clock; a fresh ``VirtualClock`` without one."""
    if "durable_runner" in request.fixturenames:
        runner: DurableTestRunner = request.getfixturevalue("durable_runner")
        return runner.clock
    return VirtualClock()


def _marker_options(marker: pytest.Mark, where: str) -> dict[str, Any]:
    options = dict(marker.kwargs)
    if marker.args:
        if len(marker.args) > 1 or "handler" in options:
            pytest.fail(
                f"{where}: durable_execution takes the handler once, as its only positional "
                "argument or as handler=...",
                pytrace=False,
            )
        options["handler"] = marker.args[0]
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        pytest.fail(
            f"{where}: unknown durable_execution option(s) {', '.join(unknown)}; "
            f"expected {', '.join(_OPTIONS)}",
            pytrace=False,
        )
    handler: Callable[..., Any] | None = options.get("handler")
    if handler is None:
        pytest.fail(f"{where}: durable_execution needs handler=<durable handler>", pytrace=False)
    return options
