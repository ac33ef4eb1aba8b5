"""Plugins: synchronous hooks around invocations, operations and user functions (PROTOCOL §13).

Registration (once, when the handler is decorated): ``durable_execution(plugins=[factory, ...])``
and/or the environment variable ``DURABLE_EXECUTION_PLUGINS="name1,name2"`` naming entry points
of group ``aws_durable_execution.plugins``. A *factory* is any object with a callable
``create_plugin(info, /)``; it is asked for a fresh plugin at the start of every invocation.

Every hook is optional and synchronous. A hook that raises is logged and ignored (so are
factories that raise or return nothing); only KeyboardInterrupt, SystemExit and GeneratorExit
propagate, after ``on_invocation_end`` has been delivered. Hooks are enough to build tracing
(OpenTelemetry spans per operation) without adurable depending on any tracer.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from adurable._enums import OperationStatus, OperationType
from adurable._errors import PluginLoadError

if TYPE_CHECKING:
    from adurable._wire import ErrorObject, Operation

_log = logging.getLogger("adurable.plugins")

ENTRY_POINT_GROUP = "aws_durable_execution.plugins"
ENV_VAR = "DURABLE_EXECUTION_PLUGINS"
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)


class UserFunctionOutcome(enum.StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    INCOMPLETE = "INCOMPLETE"  # a suspension or cancellation passed through


class PluginInvocationStatus(enum.StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PENDING = "PENDING"
    RETRY = "RETRY"  # the invocation raised: Lambda retries it


@dataclass(frozen=True, kw_only=True)
class OperationInfo:
    operation_id: str
    operation_type: OperationType
    sub_type: str | None
    name: str | None
    parent_id: str | None
    start_time: dt.datetime | None
    is_replayed: bool
    status: OperationStatus
    end_time: dt.datetime | None = None
    result: str | None = None
    error: ErrorObject | None = None
    attempt: int | None = None

    @classmethod
    def of(cls, op: Operation, *, is_replayed: bool, **overrides: Any) -> Any:
        result, error = _outcome(op)
        info = cls(
            operation_id=op.id,
            operation_type=op.type,
            sub_type=op.sub_type,
            name=op.name,
            parent_id=op.parent_id,
            start_time=op.start_timestamp,
            is_replayed=is_replayed,
            status=op.status,
            end_time=op.end_timestamp,
            result=result,
            error=error,
            attempt=op.step_details.attempt if op.step_details else None,
        )
        return replace(info, **overrides) if overrides else info


class OperationStartInfo(OperationInfo):
    pass


class OperationEndInfo(OperationInfo):
    pass


@dataclass(frozen=True, kw_only=True)
class UserFunctionStartInfo(OperationInfo):
    is_replay_children: bool = False


@dataclass(frozen=True, kw_only=True)
class UserFunctionEndInfo(OperationInfo):
    is_replay_children: bool = False
    outcome: UserFunctionOutcome = UserFunctionOutcome.SUCCEEDED


@dataclass(frozen=True, kw_only=True)
class InvocationInfo:
    request_id: str | None
    execution_arn: str
    is_first_invocation: bool
    execution_start_time: dt.datetime | None
    execution_input: Any = None
    operations: dict[str, OperationInfo] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class InvocationStartInfo(InvocationInfo):
    updated_operations: dict[str, OperationInfo] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, kw_only=True)
class InvocationEndInfo(InvocationInfo):
    status: PluginInvocationStatus = PluginInvocationStatus.SUCCEEDED
    error: ErrorObject | None = None
    execution_result: str | None = None


@dataclass(frozen=True)
class OperationChangeInfo:
    execution_arn: str
    updated_operations: list[OperationInfo]
    operations: dict[str, OperationInfo] = field(repr=False, compare=False)


@dataclass(frozen=True)
class PropagationInput:
    execution_arn: str
    operation_id: str
    target_function_name: str
    parent_operation_id: str | None = None


@dataclass(frozen=True)
class PropagationMetadata:
    x_amzn_trace_id: str | None = None


class DurablePlugin:
    """Base class of plugins: override the hooks you need (all synchronous, all optional)."""

    def provide_propagation_metadata(self, info: PropagationInput) -> PropagationMetadata | None:
        return None

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        pass

    def on_operation_start(self, info: OperationStartInfo) -> None:
        pass

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        pass

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        pass

    def on_operation_end(self, info: OperationEndInfo) -> None:
        pass

    def on_operation_change(self, info: OperationChangeInfo) -> None:
        pass

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        pass


def _outcome(op: Operation) -> tuple[str | None, ErrorObject | None]:
    details: Any = (
        op.step_details or op.context_details or op.callback_details or op.chained_invoke_details
    )
    if details is None:
        return None, None
    return details.result, (details.error.model_copy() if details.error else None)


# -- registration ---------------------------------------------------------------------------------


def _is_factory(obj: object) -> bool:
    create = getattr(obj, "create_plugin", None)
    if create is None or not callable(create):
        return False
    if isinstance(obj, type):
        # A plugin class is a factory only if create_plugin is bound (a classmethod).
        return getattr(create, "__self__", None) is obj
    return True


def _registration_meta(factory: object) -> tuple[str | None, Callable[[bool], Any] | None]:
    owner = factory if isinstance(factory, type) else type(factory)
    if getattr(owner, "__durable_registration_api__", None) != 1:
        return None, None
    group = getattr(owner, "exclusive_group", None)
    if group is not None and (not isinstance(group, str) or not group):
        raise PluginLoadError(
            f"plugin factory {factory!r}: exclusive_group must be None or a non-empty string"
        )
    callback = getattr(factory, "on_registration_result", None)
    return group, callback if callable(callback) else None


def _from_environment() -> list[object]:
    raw = os.environ.get(ENV_VAR, "")
    if not raw.strip():
        return []
    names = [n.strip() for n in raw.split(",")]
    if any(not n for n in names):
        raise PluginLoadError(f"{ENV_VAR}={raw!r} contains an empty plugin name")
    if len(set(names)) != len(names):
        raise PluginLoadError(f"{ENV_VAR}={raw!r} names a plugin twice")
    from importlib.metadata import entry_points

    found = entry_points(group=ENTRY_POINT_GROUP)
    factories = []
    for name in names:
        matches = [ep for ep in found if ep.name == name]
        if not matches:
            known = ", ".join(sorted(ep.name for ep in found)) or "none installed"
            raise PluginLoadError(
                f"no plugin entry point {name!r} in group {ENTRY_POINT_GROUP!r} ({known})"
            )
        if len(matches) > 1:
            raise PluginLoadError(f"plugin entry point {name!r} is ambiguous: {matches}")
        try:
            factories.append(matches[0].load())
        except Exception as exc:
            raise PluginLoadError(f"could not load plugin {name!r}: {exc}") from exc
    return factories


def load_factories(explicit: Iterable[object] | None) -> tuple[object, ...]:
    """Resolve explicit and environment factories once; raises PluginLoadError on problems."""
    factories: list[object] = []
    for factory in [*(explicit or ()), *_from_environment()]:
        if any(factory is seen for seen in factories):
            continue  # listed explicitly and via the environment: used once
        if not _is_factory(factory):
            raise PluginLoadError(
                f"{factory!r} is not a plugin factory: it needs a callable create_plugin(info) "
                "(on a class, create_plugin must be a classmethod)"
            )
        factories.append(factory)
    groups: dict[str, object] = {}
    callbacks = []
    for factory in factories:
        group, callback = _registration_meta(factory)
        if group is not None:
            if group in groups:
                raise PluginLoadError(
                    f"plugins {groups[group]!r} and {factory!r} are both in exclusive group "
                    f"{group!r}; register only one of them"
                )
            groups[group] = factory
        if callback is not None:
            callbacks.append(callback)
    for callback in callbacks:
        _contain(callback, True)
    return tuple(factories)


# -- per invocation ------------------------------------------------------------------------------


def _contain(hook: Callable[..., Any], *args: Any) -> Any:
    try:
        return hook(*args)
    except _FATAL:
        raise
    except BaseException:
        _log.exception("plugin hook %s failed; ignored", getattr(hook, "__qualname__", hook))
        return None


class PluginRun:
    """The plugins of one invocation and the bookkeeping that keeps hooks once-per-operation."""

    def __init__(self, plugins: Sequence[Any]) -> None:
        self.plugins = list(plugins)
        self.started: set[str] = set()
        self.ended: set[str] = set()
        self._pending_fatal: BaseException | None = None

    @classmethod
    def create(cls, factories: Sequence[object], info: InvocationStartInfo) -> PluginRun:
        plugins = []
        for factory in factories:
            plugin = _contain(factory.create_plugin, info)  # type: ignore[attr-defined]
            if plugin is None:
                _log.warning("plugin factory %r returned no plugin; skipped", factory)
                continue
            plugins.append(plugin)
        run = cls(plugins)
        run.plugins = [p for p in plugins if run._deliver(p, "on_invocation_start", info)]
        return run

    def __bool__(self) -> bool:
        return bool(self.plugins)

    def _deliver(self, plugin: Any, hook: str, info: Any) -> bool:
        method = getattr(plugin, hook, None)
        if method is None:
            return True
        try:
            method(info)
        except _FATAL as exc:
            self._pending_fatal = self._pending_fatal or exc
            return False
        except BaseException:
            # Contained, and the plugin stays in: a start hook that began and then failed may
            # already hold what its later hooks (on_invocation_end) release.
            _log.exception("plugin %r failed in %s; ignored", plugin, hook)
        return True

    def emit(self, hook: str, info: Any) -> None:
        for plugin in self.plugins:
            self._deliver(plugin, hook, info)

    def operation_start(self, info: OperationStartInfo) -> None:
        if info.operation_id not in self.started:
            self.started.add(info.operation_id)
            self.emit("on_operation_start", info)

    def operation_end(self, info: OperationEndInfo) -> None:
        if info.operation_id not in self.ended:
            self.ended.add(info.operation_id)
            self.emit("on_operation_end", info)

    def propagation(self, info: PropagationInput) -> str | None:
        chosen: str | None = None
        for plugin in self.plugins:
            method = getattr(plugin, "provide_propagation_metadata", None)
            if method is None:
                continue
            meta = _contain(method, info)
            trace = getattr(meta, "x_amzn_trace_id", None)
            if trace and trace.strip():
                if chosen is None:
                    chosen = trace
                elif trace != chosen:
                    _log.warning("plugins disagree on X-Amzn-Trace-Id; keeping the first")
        return chosen

    def end(self, info: InvocationEndInfo) -> None:
        self.emit("on_invocation_end", info)
        if self._pending_fatal is not None:
            raise self._pending_fatal


def snapshot(
    operations: Iterable[Operation], updated: Iterable[str] = ()
) -> dict[str, OperationInfo]:
    updated_ids = set(updated)
    return {op.id: OperationInfo.of(op, is_replayed=op.id not in updated_ids) for op in operations}


def deep_copy_input(value: Any) -> Any:
    return copy.deepcopy(value)
