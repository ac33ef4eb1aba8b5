"""Plugin registration and failure containment (PROTOCOL §13.1, §13.2)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from adurable import PluginLoadError
from adurable._plugins import (
    ENV_VAR,
    DurablePlugin,
    InvocationEndInfo,
    InvocationStartInfo,
    PluginRun,
    PropagationInput,
    PropagationMetadata,
    load_factories,
)

START = InvocationStartInfo(
    request_id="r", execution_arn="arn", is_first_invocation=True, execution_start_time=None
)


class Recorder(DurablePlugin):
    def __init__(self, log: list[str], trace: str | None = None) -> None:
        self.log = log
        self.trace = trace

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.log.append("start")

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self.log.append("end")

    def provide_propagation_metadata(self, info: PropagationInput) -> PropagationMetadata:
        return PropagationMetadata(self.trace)


class Factory:
    def __init__(self, log: list[str], trace: str | None = None) -> None:
        self.log = log
        self.trace = trace

    def create_plugin(self, info: InvocationStartInfo, /) -> Recorder:
        return Recorder(self.log, self.trace)


def test_factories_are_validated_and_deduplicated() -> None:
    factory = Factory([])
    assert load_factories([factory, factory]) == (factory,)
    with pytest.raises(PluginLoadError, match="not a plugin factory"):
        load_factories([object()])
    with pytest.raises(PluginLoadError, match="classmethod"):
        load_factories([Recorder])


def test_class_with_classmethod_factory_is_accepted() -> None:
    class Plugin(DurablePlugin):
        @classmethod
        def create_plugin(cls, info: Any, /) -> Plugin:
            return cls()

    assert load_factories([Plugin]) == (Plugin,)


def test_exclusive_groups_conflict_and_registration_results_are_reported() -> None:
    results: list[bool] = []

    class Grouped(Factory):
        __durable_registration_api__ = 1
        exclusive_group: ClassVar[str] = "tracing"

        def on_registration_result(self, registered: bool) -> None:
            results.append(registered)

    one = Grouped([])
    assert load_factories([one]) == (one,)
    assert results == [True]
    with pytest.raises(PluginLoadError, match="exclusive group 'tracing'"):
        load_factories([Grouped([]), Grouped([])])


def test_environment_names_unknown_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "no-such-plugin")
    with pytest.raises(PluginLoadError, match="no plugin entry point 'no-such-plugin'"):
        load_factories([])
    monkeypatch.setenv(ENV_VAR, "a,,b")
    with pytest.raises(PluginLoadError, match="empty plugin name"):
        load_factories([])
    monkeypatch.setenv(ENV_VAR, "a,a")
    with pytest.raises(PluginLoadError, match="twice"):
        load_factories([])


def test_hook_failures_are_contained_and_fatal_ones_wait_for_invocation_end() -> None:
    log: list[str] = []

    class Broken(Recorder):
        def on_operation_start(self, info: Any) -> None:
            raise RuntimeError("plugin bug")

    class Interrupting(Recorder):
        def on_operation_end(self, info: Any) -> None:
            raise KeyboardInterrupt

    run = PluginRun([Broken(log), Interrupting(log)])
    run.emit("on_operation_start", object())  # logged, ignored
    run.emit("on_operation_end", object())  # remembered
    end = InvocationEndInfo(
        request_id="r", execution_arn="arn", is_first_invocation=True, execution_start_time=None
    )
    with pytest.raises(KeyboardInterrupt):
        run.end(end)
    assert log == ["end", "end"]  # every plugin still got on_invocation_end


def test_factory_returning_none_or_raising_is_skipped_for_the_invocation() -> None:
    log: list[str] = []

    class NoneFactory:
        def create_plugin(self, info: Any, /) -> None:
            return None

    class RaisingFactory:
        def create_plugin(self, info: Any, /) -> Any:
            raise ValueError("no")

    run = PluginRun.create([NoneFactory(), RaisingFactory(), Factory(log)], START)
    assert len(run.plugins) == 1 and log == ["start"]


def test_first_non_blank_trace_id_wins() -> None:
    run = PluginRun([Recorder([], "  "), Recorder([], "Root=1"), Recorder([], "Root=2")])
    info = PropagationInput("arn", "op", "fn:1")
    assert run.propagation(info) == "Root=1"
