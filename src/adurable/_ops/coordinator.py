"""The scheduler of one map/parallel: slots, workers, timed resumes (PROTOCOL §7.9.3, §8.6).

Shape: a task group holding a pool of up to ``min(max_concurrency or N, N, MAX_WORKERS)``
workers, started one by one as items are claimed, and one timer task. Workers claim work (a
due resume first, else the next index while a slot is free) and run one branch at a time;
spawning a task per item would cost more than the items themselves in large maps.

* **Slots.** An item holds a slot from admission until it SUCCEEDS or FAILS; a suspended
  branch keeps its slot but frees its worker. Admission is strictly in index order. A NESTED
  item that ends frees its slot (and counts for the completion policy) as soon as its SUCCEED
  or FAIL is queued, not once it is durable: the next item's updates then ride in the same
  checkpoint call, instead of every slot waiting out a round trip between two items. The
  worker goes on at once (it waits for durability only when a plugin observes operation ends;
  the pool may then hold up to twice the limit of workers), and the operation ends only once
  every such update is durable: the container's SUCCEED/FAIL is queued after them and awaited.
  Counting outcomes in the order their updates are queued keeps the result in agreement with
  the checkpoints: when completion stops the batch, an item counted as ended has its
  SUCCEED/FAIL queued before the container's SUCCEED, and an item whose SUCCEED/FAIL was
  queued is counted.
* **Completion.** After every outcome the policy is re-evaluated (O(1)). Once it says stop,
  the container's fence is closed (a cancelled branch can record nothing more) and the task
  group is cancelled: branches still running are cancelled, not orphaned. Outcomes that
  raced the decision still update their item.
* **Suspension.** When no branch runs and nothing can be admitted or resumed, the loop ends
  and the whole operation suspends: timed (earliest resume) if any branch is timed.
* **Timed resume.** While other branches run, the timer task sleeps until the earliest due
  branch (anyio clock), sends an empty refresh checkpoint so the service reports what came
  due, and hands the due branches back to the workers in index order.

Fatal errors stop everything at once; retryable branch errors are raised after the loop.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from adurable._batch import BatchItem, BatchItemStatus, BatchResult, CompletionReason
from adurable._config import CompletionConfig
from adurable._ops.branches import BatchSpec, Outcome, OutcomeKind, run_branch
from adurable._ops.completion import CompletionPolicy, ItemsView
from adurable._scope import Scope

if TYPE_CHECKING:
    from adurable._wire import ErrorObject

__all__ = ("MAX_WORKERS", "Coordinator", "sleep_until")

#: Upper bound of concurrently running branches when max_concurrency allows more.
MAX_WORKERS = 1024
#: Workers started at once; the pool then grows by one per claimed item (see ``_grow``).
FIRST_WORKERS = 64
#: Past this many workers the pool grows only when more would help (see ``_grow``).
BASE_WORKERS = 256

#: How the timer waits for a deadline on the anyio clock (tests substitute virtual time).
sleep_until = anyio.sleep_until

_S = BatchItemStatus


class Coordinator:
    """Runs the branches of one map/parallel in ``container`` and builds its BatchResult."""

    def __init__(
        self,
        spec: BatchSpec,
        container: Scope,
        max_concurrency: int | None,
        completion: CompletionConfig,
    ) -> None:
        if container.fence is None:
            raise ValueError("a map/parallel container scope needs its own fence")
        n = spec.count
        self._spec = spec
        self._container = container
        self._fence = container.fence
        self._limit = n if max_concurrency is None else min(max_concurrency, n)
        self._statuses: list[BatchItemStatus | None] = [None] * n
        self._results: list[Any] = [None] * n
        self._errors: dict[int, ErrorObject] = {}
        self._policy = CompletionPolicy(completion, n, ItemsView(spec.name_of, self._statuses))
        self._next = 0  # next index to admit
        self._in_flight = 0  # items holding a slot (running or suspended)
        self._early: set[int] = set()  # ended and counted (update queued), run not yet settled
        self._running = 0  # items claimed by a worker
        self._due: deque[int] = deque()  # suspended items to run again
        self._timed: list[tuple[float, int, float]] = []  # heap of (deadline, index, epoch)
        self._untimed = 0
        self._parked: deque[anyio.Event] = deque()
        self._refreshing = False
        self._reason: CompletionReason | None = None  # set when completion stops the batch
        self._fatal: BaseException | None = None
        self._retryable: BaseException | None = None
        self._error: Exception | None = None  # raised by should_complete: fails the operation
        self._done = anyio.Event()
        self._timer_changed = anyio.Event()
        self._timer_sleep: anyio.CancelScope | None = None
        self._pool_size = min(2 * self._limit, n, MAX_WORKERS)
        self._batcher = container.invocation.batcher
        self._workers = 0
        self._task_group: anyio.abc.TaskGroup | None = None

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> BatchResult[Any]:
        """Run to completion and return the result, or raise (see module docstring).

        Raises the first fatal error; else the first retryable branch error; else what
        ``should_complete`` raised; else suspends the whole operation through the container's
        suspender when nothing can progress.
        """
        self._evaluate()
        if not self._finished():
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                self._workers = min(self._pool_size, FIRST_WORKERS)
                for _ in range(self._workers):
                    tg.start_soon(self._worker)
                tg.start_soon(self._timer)
                await self._done.wait()
                self._fence.close()
                tg.cancel_scope.cancel()
        for error in (self._fatal, self._retryable, self._error):
            if error is not None:
                raise error
        if self._reason is None:
            await self._suspend()
        return self._result()

    def _finished(self) -> bool:
        if self._fatal is not None or self._error is not None or self._reason is not None:
            return True
        return not (self._running or self._due or self._refreshing or self._can_admit())

    def _can_admit(self) -> bool:
        return self._in_flight < self._limit and self._next < self._spec.count

    def _evaluate(self) -> None:
        """Ask the policy; on stop, fence the running branches off at once."""
        try:
            stop = self._policy.evaluate()
        except Exception as exc:
            self._error = self._error or exc
            stop = False
        if stop:
            self._reason = self._policy.reason()
        if stop or self._error is not None:
            self._fence.close()

    async def _suspend(self) -> None:
        epochs = [epoch for _, _, epoch in self._timed]
        waiting = len(self._timed) + self._untimed
        message = f"map/parallel {self._spec.op_id}: {waiting} branch(es) waiting"
        await self._container.suspend(message, min(epochs) if epochs else None)

    def _result(self) -> BatchResult[Any]:
        items: list[BatchItem[Any]] = []
        for index, status in enumerate(self._statuses):
            if status is None:
                break  # admission is in index order: nothing after this started
            items.append(BatchItem(index, status, self._results[index], self._errors.get(index)))
        assert self._reason is not None
        return BatchResult(items, self._reason)

    # -- workers ------------------------------------------------------------------------------

    async def _worker(self) -> None:
        # One cancel scope serves the worker's runs one after another until a run suspends
        # (which cancels it); entering a scope per item cost ~13 % of a trivial item.
        new_scope = self._container.invocation.cancel_scope
        while True:
            with new_scope() as scope:
                while not scope.cancel_called:
                    index = self._claim()
                    if index is None:
                        if self._next >= self._spec.count and not self._timed:
                            self._workers -= 1  # every item is admitted, none will come due
                            return
                        parked = anyio.Event()
                        self._parked.append(parked)
                        await parked.wait()
                        continue
                    self._grow()
                    outcome = await run_branch(
                        self._spec, self._container, index, self._recorded, scope
                    )
                    self._settle(index, outcome)

    def _grow(self) -> None:
        """One more worker while work is waiting and the pool is not full.

        Past the first ``FIRST_WORKERS``, the pool grows as items are claimed rather than all
        at once, so the first updates reach the service while the rest is still starting.
        Past ``BASE_WORKERS`` it grows only while more workers would help: when at least half
        of them are busy in user code (awaiting I/O, say) rather than waiting for their updates
        to become durable, or when the updates for the next call were not ready as the last
        one came back from the network (``CheckpointBatcher.starved``). Otherwise more workers
        would only wait for the same full calls, each keeping its stack and scopes alive for
        the garbage collector to walk (~100 objects each) and the caches to miss.
        """
        if self._workers < self._pool_size and (self._due or self._can_admit()):
            if self._workers >= BASE_WORKERS and not self._more_would_help():
                return
            assert self._task_group is not None
            self._workers += 1
            self._task_group.start_soon(self._worker)

    def _more_would_help(self) -> bool:
        batcher = self._batcher
        return 2 * batcher.waiting < self._workers or batcher.starved

    def _recorded(self, index: int, succeeded: bool, value: Any) -> None:
        """Item ``index`` queued its SUCCEED or FAIL: free its slot and count it now (see
        Slots). Outcomes are counted in the order their updates are queued, so the result
        agrees with what the checkpoints say whenever completion stops the batch."""
        self._in_flight -= 1
        self._early.add(index)
        if succeeded:
            self._succeeded(index, value)
        else:
            self._record(index, Outcome(OutcomeKind.FAILED, error=value))
        if self._reason is None and self._error is None:
            self._evaluate()
        if self._finished():
            self._done.set()
        elif self._can_admit() and self._claimable():
            if self._parked:
                self._parked.popleft().set()
            else:
                self._grow()

    def _claimable(self) -> bool:
        return self._reason is None and self._fatal is None and self._error is None

    def _claim(self) -> int | None:
        if not self._claimable():
            return None
        if self._due:
            self._running += 1
            return self._due.popleft()
        if not self._can_admit():
            return None
        index = self._next
        self._next += 1
        self._in_flight += 1
        self._running += 1
        self._statuses[index] = _S.STARTED
        return index

    def _settle(self, index: int, outcome: Outcome) -> None:
        self._running -= 1
        kind = outcome.kind
        if kind is OutcomeKind.SUSPENDED:
            self._park_suspended(index, outcome)
        elif kind is OutcomeKind.FATAL:
            self._fatal = self._fatal or outcome.exception
            self._fence.close()  # the others are about to be cancelled: record nothing more
        elif index in self._early:
            self._early.discard(index)  # counted when its SUCCEED or FAIL was queued
        elif kind is not OutcomeKind.STOPPED:
            self._in_flight -= 1
            self._record(index, outcome)
            if self._reason is None and self._error is None:
                self._evaluate()
        if self._finished():
            self._done.set()

    def _record(self, index: int, outcome: Outcome) -> None:
        if outcome.kind is OutcomeKind.SUCCEEDED:
            self._succeeded(index, outcome.value)
            return
        self._policy.failed += 1
        if outcome.kind is OutcomeKind.RETRYABLE:
            self._retryable = self._retryable or outcome.exception
            return
        self._statuses[index] = _S.FAILED
        if outcome.error is not None:
            self._errors[index] = outcome.error

    def _succeeded(self, index: int, value: Any) -> None:
        self._statuses[index] = _S.SUCCEEDED
        self._results[index] = value
        self._policy.succeeded += 1

    def _park_suspended(self, index: int, outcome: Outcome) -> None:
        if outcome.deadline is None or outcome.resume_at is None:
            self._untimed += 1
            return
        entry = (outcome.deadline, index, outcome.resume_at)
        heapq.heappush(self._timed, entry)
        if self._timed[0] is entry:  # a new earliest deadline: re-arm the timer
            self._timer_changed.set()
            if self._timer_sleep is not None:
                self._timer_sleep.cancel()

    # -- timed resume (§8.6) ------------------------------------------------------------------

    async def _timer(self) -> None:
        while True:
            if not self._timed:
                self._timer_changed = anyio.Event()
                await self._timer_changed.wait()
                continue
            deadline = self._timed[0][0]
            with anyio.CancelScope() as self._timer_sleep:
                await sleep_until(deadline)
            self._timer_sleep = None
            if not self._timer_sleep_cancelled(deadline):
                await self._refresh(max(deadline, anyio.current_time()))

    def _timer_sleep_cancelled(self, deadline: float) -> bool:
        """True when an earlier deadline arrived meanwhile (the sleep was cut short)."""
        return not self._timed or self._timed[0][0] < deadline

    async def _refresh(self, now: float) -> None:
        """One empty checkpoint, then every branch due by ``now`` runs again, in index order."""
        self._refreshing = True
        try:
            await self._container.invocation.batcher.refresh()
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:  # checkpointing failed or stopped: nothing can go on
            self._fatal = self._fatal or exc
            self._fence.close()
            self._done.set()
            return
        finally:
            self._refreshing = False
        due: list[int] = []
        while self._timed and self._timed[0][0] <= now:
            due.append(heapq.heappop(self._timed)[1])
        self._due.extend(sorted(due))
        for _ in range(min(len(due), len(self._parked))):
            self._parked.popleft().set()
        if self._finished():
            self._done.set()
