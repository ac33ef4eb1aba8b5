"""``map`` and ``parallel``: a CONTEXT operation whose body schedules branches (PROTOCOL §7.9).

``map_operation`` / ``parallel_operation`` validate, allocate the container's position at call
time and return the coroutine that runs it. The container ``M`` (SubType Map / Parallel) is a
child context (§7.5) whose body is the ``Coordinator``; branch ``i`` is ``h(M-i)``, so ids do
not depend on scheduling. The container's payload is the BatchResult (``br`` envelope by
default); when that exceeds 256 KiB the container records a completion record instead
(ReplayChildren) and replays rebuild the result from it and from the branch checkpoints.

Replay: a SUCCEEDED container returns its recorded result without running any branch; a
STARTED one runs the coordinator again, finished NESTED branches returning their recorded
outcome; a FAILED one raises ChildContextError.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

from adurable._batch import BatchResult
from adurable._config import CompletionConfig, MapConfig, ParallelConfig
from adurable._enums import OperationSubType, OperationType
from adurable._errors import ValidationError
from adurable._ops.branches import BatchSpec
from adurable._ops.child import ContextFactory, ContextOp, resume_context
from adurable._ops.coordinator import Coordinator
from adurable._ops.replay_batch import batch_summary, rebuild_batch_result
from adurable._ops.step import call_user
from adurable._scope import Fence, Scope
from adurable._serde import READ_BACK_SERDES, SerDes, deserialize, serialize

__all__ = ("ParallelBranch", "durable_parallel_branch", "map_operation", "parallel_operation")

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class ParallelBranch(Generic[T]):
    """A parallel branch with an explicit name: ``ParallelBranch(func, name="fetch")``.

    ``func(ctx)`` runs in the branch's own child context. ``name=None`` names the branch
    ``parallel-branch-<i>``; ``""`` writes no name. Calling the object calls ``func``.
    """

    func: Callable[[Any], Awaitable[T]]
    name: str | None = None

    def __call__(self, context: Any) -> Awaitable[T]:
        return self.func(context)


def durable_parallel_branch(
    name: str | None = None,
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., ParallelBranch[T]]]:
    """Decorate ``f(ctx, *args, **kwargs)`` so that ``f(*args, **kwargs)`` is a named
    ``ParallelBranch`` for ``context.parallel``."""

    def decorate(func: Callable[..., Awaitable[T]]) -> Callable[..., ParallelBranch[T]]:
        @functools.wraps(func)
        def factory(*args: Any, **kwargs: Any) -> ParallelBranch[T]:
            async def run(context: Any) -> T:
                return await func(context, *args, **kwargs)

            return ParallelBranch(run, name)

        return factory

    return decorate


# -- entry points -------------------------------------------------------------------------------


def map_operation(
    scope: Scope,
    inputs: Iterable[Any],
    func: Callable[..., Any],
    name: str | None,
    config: MapConfig | None,
    make_context: ContextFactory,
) -> Coroutine[Any, Any, BatchResult[Any]]:
    """Validate and allocate ``context.map``'s position now; the coroutine runs it.

    Raises ValidationError (before any id is used) when ``func`` is not callable or
    ``min_successful`` exceeds the number of items. ``inputs`` is materialised into a list.
    """
    if not callable(func):
        raise ValidationError(f"map expects a callable func(ctx, item, index, items), got {func!r}")
    config = config or MapConfig()
    items = list(inputs)
    _check_min_successful(config.completion_config, len(items))
    op_id = scope.next_id()

    def call(context: Any, index: int) -> Awaitable[Any]:
        return call_user(func, context, items[index], index, items)

    return _run_batch(
        scope,
        _Batch(op_id, name, OperationSubType.MAP, OperationSubType.MAP_ITERATION, len(items)),
        call,
        config,
        make_context,
        namer=_map_namer(items, config.item_namer),
    )


def parallel_operation(
    scope: Scope,
    functions: Iterable[Any],
    name: str | None,
    config: ParallelConfig | None,
    make_context: ContextFactory,
) -> Coroutine[Any, Any, BatchResult[Any]]:
    """Validate and allocate ``context.parallel``'s position now; the coroutine runs it.

    Each entry is a callable ``func(ctx)`` or a ``ParallelBranch``. Raises ValidationError
    (before any id is used) for anything else or when ``min_successful`` exceeds the count.
    """
    branches = [_as_branch(entry, index) for index, entry in enumerate(functions)]
    config = config or ParallelConfig()
    _check_min_successful(config.completion_config, len(branches))
    op_id = scope.next_id()

    def call(context: Any, index: int) -> Awaitable[Any]:
        return call_user(branches[index].func, context)

    def namer() -> Callable[[int], str | None]:
        names = [_branch_name(branch, index) for index, branch in enumerate(branches)]
        return names.__getitem__

    return _run_batch(
        scope,
        _Batch(
            op_id, name, OperationSubType.PARALLEL, OperationSubType.PARALLEL_BRANCH, len(branches)
        ),
        call,
        config,
        make_context,
        namer=namer,
    )


def _check_min_successful(completion: CompletionConfig, count: int) -> None:
    minimum = completion.min_successful
    if minimum is not None and minimum > count:
        raise ValidationError(
            f"min_successful ({minimum}) cannot exceed the number of items ({count})"
        )


def _as_branch(entry: Any, index: int) -> ParallelBranch[Any]:
    if isinstance(entry, ParallelBranch):
        return entry
    if callable(entry):
        return ParallelBranch(entry)
    raise ValidationError(
        f"parallel branch {index} must be a callable func(ctx) or a ParallelBranch, got {entry!r}"
    )


def _branch_name(branch: ParallelBranch[Any], index: int) -> str | None:
    return branch.name if branch.name is not None else f"parallel-branch-{index}"


def _map_namer(
    items: Sequence[Any], item_namer: Callable[[Any, int], str] | None
) -> Callable[[], Callable[[int], str | None]]:
    def namer() -> Callable[[int], str | None]:
        if item_namer is None:
            return _default_item_name
        names = [item_namer(item, index) for index, item in enumerate(items)]
        return names.__getitem__

    return namer


def _default_item_name(index: int) -> str:
    return f"map-item-{index}"


# -- the container ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Batch:
    op_id: str
    name: str | None
    sub_type: OperationSubType
    branch_sub_type: OperationSubType
    count: int


async def _run_batch(
    scope: Scope,
    batch: _Batch,
    call: Callable[[Any, int], Awaitable[Any]],
    config: MapConfig | ParallelConfig,
    make_context: ContextFactory,
    *,
    namer: Callable[[], Callable[[int], str | None]],
) -> BatchResult[Any]:
    """Run (or replay) the container operation; see the module docstring.

    Raises ChildContextError when the container failed (e.g. ``item_namer`` raised), the first
    retryable branch error, and ExecutionError / checkpoint failures unchanged; suspends when
    no branch can progress.
    """
    summary = functools.partial(batch_summary, batch.sub_type, config.summary_generator)
    # With the default codec throughout, every item result already went through it: the
    # BatchResult reads back equal, so its payload need not be decoded on this run.
    default_codec = config.serdes is None and config.item_serdes is None
    op = ContextOp(
        batch.op_id,
        scope.identity(OperationType.CONTEXT, batch.sub_type, batch.name),
        READ_BACK_SERDES if default_codec else config.serdes,
        summary,
    )
    stored = scope.lookup(batch.op_id, op.wanted)
    flip = scope.before_operation(stored)
    spec_of = functools.partial(_spec, batch, call, config, make_context, namer)

    def open_container() -> Scope:
        return scope.child(batch.op_id, fence=Fence(scope.fence))

    async def body(container: Scope) -> BatchResult[Any]:
        return await Coordinator(
            spec_of(), container, config.max_concurrency, config.completion_config
        ).run()

    async def replay_children(record: str | None) -> Any:
        rebuilt = await rebuild_batch_result(spec_of(), open_container(), record)
        # The first run handed out the result round-tripped through config.serdes (§10.3).
        ids = {"operation_id": batch.op_id, "execution_arn": scope.execution_arn}
        payload = serialize(config.serdes, rebuilt, **ids)
        return None if payload is None else deserialize(config.serdes, payload, **ids)

    try:
        return await resume_context(  # type: ignore[no-any-return]
            scope, op, stored, open_container, body, replay_children=replay_children
        )
    finally:
        scope.after_operation(flip)


def _spec(
    batch: _Batch,
    call: Callable[[Any, int], Awaitable[Any]],
    config: MapConfig | ParallelConfig,
    make_context: ContextFactory,
    namer: Callable[[], Callable[[int], str | None]],
) -> BatchSpec:
    item_serdes: SerDes[Any] | None = config.item_serdes or config.serdes
    return BatchSpec(
        op_id=batch.op_id,
        count=batch.count,
        branch_sub_type=batch.branch_sub_type,
        name_of=namer(),
        call=call,
        make_context=make_context,
        item_serdes=item_serdes,
        nesting=config.nesting_type,
    )
