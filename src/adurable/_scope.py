"""What an operation needs to do its work: the invocation, and the scope (context) it runs in.

``Invocation`` holds the per-invocation machinery (journal, batcher, cancel scope of the user
code). ``Scope`` is one durable context: it allocates operation ids in call order, tracks the
context's replay status (§6.4), and knows how to suspend. Operations in ``_ops`` receive a
Scope and never see the public façade.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from adurable._batcher import CheckpointBatcher
from adurable._enums import OperationAction, OperationStatus, OperationType
from adurable._errors import (
    NonDeterministicExecutionError,
    OrphanedChildException,
    SuspendExecution,
    TimedSuspendExecution,
)
from adurable._failures import error_object_from_exception
from adurable._fastwire import Update, simple_update
from adurable._ids import blake2b, operation_id
from adurable._journal import Identity, Journal
from adurable._logger import DEFAULT_LOGGER, DurableLogger

if TYPE_CHECKING:
    from adurable._plugins import OperationStartInfo, PluginRun
    from adurable._wire import Operation

# adurable._plugins is imported where plugins are involved only: an invocation has a PluginRun
# (which needed that module) or takes none of those paths.

#: Raises the suspension for a scope: root scopes end the invocation, branch scopes
#: (map/parallel) report to their coordinator.
Suspender = Callable[[str, float | None], Any]


class Fence:
    """Closed once the work of a scope may no longer record anything (PROTOCOL §7.9.5).

    A map/parallel closes its fence when it completes (its running branches are being
    cancelled) and a branch run closes its own when it suspends. Fences chain: a scope is
    fenced off when its fence or any enclosing one is closed.
    """

    __slots__ = ("_closed", "_parent")

    def __init__(self, parent: Fence | None = None) -> None:
        self._parent = parent
        self._closed = False

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        fence: Fence | None = self
        while fence is not None:
            if fence._closed:
                return True
            fence = fence._parent
        return False


@dataclass(eq=False)
class Invocation:
    """One Lambda invocation of the handler."""

    execution_arn: str
    journal: Journal
    batcher: CheckpointBatcher
    lambda_context: Any = None
    updated_operation_ids: frozenset[str] = frozenset()
    user_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    suspended: bool = False
    #: An error that fails the execution whatever the user code does with it.
    fatal: BaseException | None = None
    #: This invocation's plugins (None when none are registered).
    plugins: PluginRun | None = None
    base_logger: Any = DEFAULT_LOGGER
    _cancel_scope_class: type[anyio.CancelScope] | None = field(default=None, repr=False)

    def cancel_scope(self) -> anyio.CancelScope:
        """A new cancel scope (``anyio.CancelScope()`` looks the backend up every time)."""
        cls = self._cancel_scope_class
        if cls is None:
            scope = anyio.CancelScope()
            self._cancel_scope_class = type(scope)
            return scope
        return cls()

    async def suspend(self, message: str, resume_at: float | None = None) -> NoReturn:
        """End the invocation PENDING: flush pending checkpoints, then cancel the user code.

        Everything queued (async STARTs included) is made durable first; after that nothing
        more is checkpointed and every task of the handler is cancelled, so no work outlives
        the invocation. Raises the suspension so the caller's frame unwinds at once.
        """
        if not self.suspended:
            self.suspended = True
            try:
                await self.batcher.flush()
            finally:
                self.batcher.close()
                self.user_scope.cancel()
        if resume_at is None:
            raise SuspendExecution(message)
        raise TimedSuspendExecution(message, resume_at)


class Scope:
    """One durable context: id allocation, parent id, replay status, logging, suspension."""

    __slots__ = (
        "_counter",
        "_draws",
        "_durable_logger",
        "_log_during_replay",
        "_logger",
        "_suspender",
        "fence",
        "invocation",
        "journal",
        "parent_id",
        "prefix",
        "replaying",
    )

    def __init__(
        self,
        invocation: Invocation,
        *,
        prefix: str | None,
        parent_id: str | None,
        replaying: bool,
        suspender: Suspender | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.invocation = invocation
        self.journal = invocation.journal
        self.prefix = prefix
        self.parent_id = parent_id
        self.replaying = replaying
        self.fence = fence
        self._suspender = suspender or invocation.suspend
        self._counter = 0
        self._draws = 0
        self._logger: Any = invocation.base_logger
        self._log_during_replay = False
        self._durable_logger: DurableLogger | None = None

    # -- ids ----------------------------------------------------------------------------------

    def next_id(self) -> str:
        """Allocate the next position in this context (at call time, in call order)."""
        self._counter += 1
        return operation_id(self.prefix, self._counter)

    def deterministic_seed(self) -> bytes:
        """32 bytes fixed by (execution, context, position, call number): replay-safe."""
        self._draws += 1
        raw = f"{self.execution_arn}|{self.prefix or ''}|{self._counter}|{self._draws}"
        return blake2b(raw.encode(), digest_size=32).digest()

    def peek_next_id(self) -> str:
        return operation_id(self.prefix, self._counter + 1)

    def child(self, op_id: str, *, virtual: bool = False, fence: Fence | None = None) -> Scope:
        """The scope of a child context owned by operation ``op_id`` (§5.3).

        It suspends like this scope and is fenced by ``fence`` (default: this scope's fence).
        """
        return self._inherit_logging(
            Scope(
                self.invocation,
                prefix=op_id,
                parent_id=self.parent_id if virtual else op_id,
                replaying=self.replaying,
                suspender=self._suspender,
                fence=fence if fence is not None else self.fence,
            )
        )

    def branch(
        self, branch_id: str, *, nested: bool, replaying: bool, suspender: Suspender, fence: Fence
    ) -> Scope:
        """The scope of one run of a map item / parallel branch; ``self`` is the container's.

        Ids use the branch id as prefix; ParentId is the branch (NESTED) or the container
        (FLAT, §5.3). Suspending reports to ``suspender`` instead of ending the invocation.
        """
        return self._inherit_logging(
            Scope(
                self.invocation,
                prefix=branch_id,
                parent_id=branch_id if nested else self.parent_id,
                replaying=replaying,
                suspender=suspender,
                fence=fence,
            )
        )

    def _inherit_logging(self, scope: Scope) -> Scope:
        """A context made here logs like this one (``set_logger`` is inherited, as in the
        official SDK, where a child context takes its creator's logger)."""
        scope._logger = self._logger
        scope._log_during_replay = self._log_during_replay
        return scope

    # -- journal and checkpoints --------------------------------------------------------------

    @property
    def execution_arn(self) -> str:
        return self.invocation.execution_arn

    def identity(self, type: OperationType, sub_type: str | None, name: str | None) -> Identity:
        return Identity(type, str(sub_type) if sub_type else None, name or None, self.parent_id)

    def lookup(self, op_id: str, wanted: Identity) -> Operation | None:
        try:
            stored = self.journal.check(op_id, wanted)
        except NonDeterministicExecutionError as exc:
            # Fail closed: even if user code catches it, the invocation answers FAILED.
            self.invocation.fatal = exc
            raise
        plugins = self.invocation.plugins
        if plugins and stored is not None:
            from adurable._plugins import OperationEndInfo, OperationStartInfo

            if stored.status.is_terminal:
                if op_id in self.invocation.updated_operation_ids:  # completed while suspended
                    plugins.operation_end(OperationEndInfo.of(stored, is_replayed=True))
            elif stored.status is not OperationStatus.READY:
                plugins.operation_start(OperationStartInfo.of(stored, is_replayed=True))
        return stored

    def update(
        self,
        op_id: str,
        wanted: Identity,
        action: OperationAction,
        payload: str | None = None,
        context_options: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Update:
        """The update of ``op_id`` (its identity repeated, §4.3); ``fields`` as for Update."""
        type_, sub_type, name, parent_id = wanted
        if not fields:
            return simple_update(
                op_id, type_, action, parent_id, name, sub_type, payload, context_options
            )
        return Update(
            op_id,
            type_,
            action,
            parent_id=parent_id,
            name=name,
            sub_type=sub_type,
            payload=payload,
            context_options=context_options,
            **fields,
        )

    def checkpoint(self, update: Update, *, sync: bool) -> Awaitable[None]:
        """Record ``update`` (await the result: see ``CheckpointBatcher.checkpoint``).

        Raises OrphanedChildException once this scope is fenced off.
        """
        if self.fence is not None and self.fence.closed:
            raise OrphanedChildException(
                f"operation {update.id} belongs to a map/parallel branch that has stopped; "
                "nothing it does is recorded any more",
                update.id,
            )
        plugins = self.invocation.plugins
        if not plugins:
            return self.invocation.batcher.checkpoint(update, sync=sync)
        return self._checkpoint_reported(update, sync, plugins)

    async def _checkpoint_reported(self, update: Update, sync: bool, plugins: PluginRun) -> None:
        from adurable._plugins import OperationEndInfo

        if update.action is OperationAction.START:
            plugins.operation_start(self._started_info(update))
        await self.invocation.batcher.checkpoint(update, sync=sync)
        if update.action in (OperationAction.SUCCEED, OperationAction.FAIL):
            recorded = self.journal.get(update.id)
            if recorded is not None and recorded.status.is_terminal:
                plugins.operation_end(OperationEndInfo.of(recorded, is_replayed=False))

    def _started_info(self, update: Update) -> OperationStartInfo:
        from adurable._plugins import OperationStartInfo

        return OperationStartInfo(
            operation_id=update.id,
            operation_type=update.type,
            sub_type=update.sub_type,
            name=update.name,
            parent_id=update.parent_id,
            start_time=_now(),
            is_replayed=update.id in self.journal,
            status=OperationStatus.STARTED,
        )

    def user_function(
        self,
        op_id: str,
        wanted: Identity,
        *,
        attempt: int | None = None,
        is_replay_children: bool = False,
    ) -> contextlib.AbstractContextManager[None]:
        """Report a user body (step attempt, check, context body) to the plugins around it."""
        if not self.invocation.plugins:
            return _NO_PLUGINS
        return self._reported(op_id, wanted, attempt, is_replay_children)

    @contextlib.contextmanager
    def _reported(
        self, op_id: str, wanted: Identity, attempt: int | None, is_replay_children: bool
    ) -> Iterator[None]:
        plugins = self.invocation.plugins
        assert plugins is not None
        from adurable._plugins import (
            UserFunctionEndInfo,
            UserFunctionOutcome,
            UserFunctionStartInfo,
        )

        fields: dict[str, Any] = {
            "operation_id": op_id,
            "operation_type": wanted.type,
            "sub_type": wanted.sub_type,
            "name": wanted.name,
            "parent_id": wanted.parent_id,
            "start_time": _now(),
            "is_replayed": False,
            "status": OperationStatus.STARTED,
            "attempt": attempt,
            "is_replay_children": is_replay_children,
        }
        plugins.emit("on_user_function_start", UserFunctionStartInfo(**fields))
        outcome, error = UserFunctionOutcome.SUCCEEDED, None
        try:
            yield
        except Exception as exc:
            outcome, error = UserFunctionOutcome.FAILED, error_object_from_exception(exc)
            raise
        except BaseException:
            outcome = UserFunctionOutcome.INCOMPLETE
            raise
        finally:
            end = UserFunctionEndInfo(**fields, outcome=outcome, error=error, end_time=_now())
            plugins.emit("on_user_function_end", end)

    async def suspend(self, message: str, resume_at: float | None = None) -> NoReturn:
        await self._suspender(message, resume_at)
        raise SuspendExecution(message)  # a suspender must raise; this is a safety net

    async def suspend_for(self, message: str, seconds: float) -> NoReturn:
        await self.suspend(message, time.time() + max(seconds, 0))

    # -- replay status (§6.4) -----------------------------------------------------------------

    def before_operation(self, stored: Operation | None) -> bool:
        """Update replay status before an operation; returns whether to flip to NEW after it."""
        if not self.replaying:
            return False
        if stored is None:
            self.replaying = False
            return False
        if not stored.status.is_terminal:
            if stored.type is OperationType.STEP:
                self.replaying = False
                return False
            return True
        return False

    def after_operation(self, flip: bool) -> None:
        if flip or (self.replaying and self.peek_next_id() not in self.journal):
            self.replaying = False

    # -- logging ------------------------------------------------------------------------------

    @property
    def logger(self) -> DurableLogger:
        """This context's replay-aware logger (made on first use: most scopes never log)."""
        logger = self._durable_logger
        if logger is None:
            extra = {"executionArn": self.execution_arn}
            if self.parent_id:
                extra["parentId"] = self.parent_id
            logger = self._durable_logger = DurableLogger(
                self._logger, extra, _never if self._log_during_replay else self._is_replaying
            )
        return logger

    def _is_replaying(self) -> bool:
        return self.replaying

    def set_logger(self, logger: Any, *, log_during_replay: bool = False) -> None:
        self._logger = logger
        self._log_during_replay = log_during_replay
        self._durable_logger = None


_NO_PLUGINS: contextlib.nullcontext[None] = contextlib.nullcontext()


def _never() -> bool:
    return False


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
