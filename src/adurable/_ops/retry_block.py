"""``with_retry``: retry a whole block of durable code (PROTOCOL §7.2).

A plain loop over ``func(ctx, attempt)``: when it raises, the retry strategy decides; to retry,
the block waits durably (``ctx.wait``) and runs again with the next attempt number. Every
attempt's operations get fresh positions, so on replay the failed attempts replay their
recorded failures, the backoff waits return at once, and the loop reaches the same point.
By default the whole loop runs inside one child context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from adurable._config import ChildConfig
from adurable._duration import Duration
from adurable._errors import ExecutionError, InvocationError, ValidationError
from adurable._retry import RetryStrategy, create_retry_strategy

if TYPE_CHECKING:
    from adurable._context import DurableContext

T = TypeVar("T")


@dataclass(frozen=True)
class WithRetryConfig:
    """Options of ``with_retry``.

    ``retry_strategy`` defaults to ``create_retry_strategy()`` (3 attempts, 5 s doubling up to
    5 min, full jitter). ``wrap_with_run_in_child_context`` runs the loop in a child context
    (configured by ``child_context_config``), so the final failure is a ChildContextError.
    """

    retry_strategy: RetryStrategy | None = None
    wrap_with_run_in_child_context: bool = True
    child_context_config: ChildConfig | None = None


def with_retry(
    context: DurableContext,
    func: Callable[[DurableContext, int], Awaitable[T]],
    config: WithRetryConfig | None = None,
    name: str | None = None,
) -> Coroutine[Any, Any, T]:
    """Run ``await func(ctx, attempt)`` (attempt starts at 1), retrying it when it raises.

    Between attempts the block waits ``decision.delay`` (at least 1 s) with a durable wait named
    ``"<name>-backoff-<attempt>"`` (unnamed without ``name``): the invocation suspends and is
    re-invoked when the wait is over. When the strategy gives up, the last error is raised —
    wrapped in ChildContextError when the loop runs in a child context (the default), whose
    position is allocated now. Suspension, ExecutionError and retryable InvocationError are
    never retried. Await the returned coroutine.
    """
    if not callable(func):
        raise ValidationError(f"with_retry expects func(context, attempt), got {func!r}")
    cfg = config if config is not None else WithRetryConfig()
    strategy = cfg.retry_strategy or create_retry_strategy()

    async def loop(ctx: DurableContext) -> T:
        return await _retry_loop(ctx, func, strategy, name)

    if not cfg.wrap_with_run_in_child_context:
        return loop(context)
    return context.run_in_child_context(loop, name=name, config=cfg.child_context_config)


async def _retry_loop(
    ctx: DurableContext,
    func: Callable[[DurableContext, int], Awaitable[T]],
    strategy: RetryStrategy,
    name: str | None,
) -> T:
    attempt = 1
    while True:
        try:
            return await func(ctx, attempt)
        except Exception as exc:
            if _never_retried(exc):
                raise
            decision = strategy(exc, attempt)
            if not decision.should_retry:
                raise
        delay = Duration(max(1, decision.delay.to_seconds()))
        await ctx.wait(delay, name=f"{name}-backoff-{attempt}" if name else None)
        attempt += 1


def _never_retried(exc: Exception) -> bool:
    """Non-determinism fails the execution and a retryable invocation error retries the whole
    invocation: neither is the block's to retry."""
    if isinstance(exc, ExecutionError):
        return True
    return isinstance(exc, InvocationError) and exc.is_retryable()
