"""The checkpoint batcher: one task per invocation that owns the checkpoint token.

Group commit (PROTOCOL §8, with the project decision noted before §8.4):

* exactly one CheckpointDurableExecution call in flight; each uses the previous response's
  token;
* a synchronous update is sent as soon as no call is in flight, after yielding to the event
  loop once so concurrently running tasks can join the same batch; while a call is in flight
  everything queued waits and goes out in the next call the moment the response arrives;
* asynchronous updates (a step's or context's START) ride along with the next call, or go out
  after ``idle`` seconds without a synchronous update so the service sees a long step's START;
* at most 250 updates and 750 KiB per call (the first update of a batch is always taken);
  batches are cut as updates are queued, and a batch that is already full is sent without
  that yield, so the tasks the previous answer woke run while the call is in flight;
* a synchronous caller is released only after the response's operations, and any paged
  remainder, are merged into the journal (§8.5); the callers of one batch share one event;
* ``refresh()`` forces a call even when nothing is queued (``Updates: []``): the service
  applies due timers while processing any checkpoint, so its response carries them (§8.6).
  Refreshes queued together share one call, and a refresh rides along with queued updates.

Failures are delivered, not raised in the batcher's task: every waiter of the failed batch, every
queued update and every later checkpoint gets ``CheckpointFailed(source)``; the entry point
reads ``failure`` to classify the invocation's answer.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from adurable._backend import Signal, signal_factory
from adurable._enums import OperationType
from adurable._errors import CheckpointFailed, SuspendExecution
from adurable._fastwire import Update

if TYPE_CHECKING:
    from adurable._journal import Journal
    from adurable._service import DurableService

MAX_BATCH_OPERATIONS = 250
MAX_BATCH_BYTES = 768_000
IDLE_SECONDS = 0.1
#: A call that takes this long went over the network (an in-process service answers in well
#: under a millisecond or two; a call to the real service takes tens of milliseconds).
STARVED_CALL_SECONDS = 0.003


def _uuid4() -> str:
    """A random UUID4 string (the ClientToken of one checkpoint request), without importing
    ``uuid`` (and ``platform``) on the cold path."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Done:
    """An awaitable that is already complete (awaiting it never yields to the event loop)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


DONE: Awaitable[None] = _Done()


class _Batch:
    """Updates that go out in one call, filled in queue order up to the limits.

    Batches are cut as updates are queued (the first update of a batch is always taken), which
    gives the boundaries a greedy cut at send time would give. Synchronous callers wait on the
    batch's one event (made when the first of them joins) instead of an event each.
    """

    __slots__ = ("done", "error", "refresh", "size", "sync", "updates")

    def __init__(self) -> None:
        self.updates: list[Update] = []
        self.size = 0
        self.sync = 0  # synchronous callers waiting on this batch
        self.refresh = False  # call the service even if no update is queued
        self.done: Signal | None = None  # set once the response is merged
        self.error: BaseException | None = None  # what its waiters raise, if anything


class CheckpointBatcher:
    """Queue of pending updates plus the task that sends them; see the module docstring."""

    def __init__(
        self,
        service: DurableService,
        execution_arn: str,
        token: str,
        journal: Journal,
        *,
        max_operations: int = MAX_BATCH_OPERATIONS,
        max_bytes: int = MAX_BATCH_BYTES,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self._service = service
        self._arn = execution_arn
        self.token: str | None = token
        self._journal = journal
        self._max_operations = max_operations
        self._max_bytes = max_bytes
        self._idle = idle
        self._queue: deque[_Batch] = deque()  # the last one is open (still taking updates)
        self._queued = 0  # updates in the queue
        #: The running backend's Event class: ``anyio.Event()`` looks the backend up each time.
        self._event_class: type[anyio.Event] = type(anyio.Event())
        #: The per-call completion signal (cheaper than anyio.Event on asyncio; see _backend).
        self._new_signal = signal_factory()
        self._sync_queued = 0  # synchronous waiters in the queue
        self._wakeup: anyio.Event | None = None  # set while the task waits for updates
        self._closed = False
        #: The error that stopped checkpointing, if any (a BotoClientError normally).
        self.failure: BaseException | None = None
        #: True when the service withdrew this invocation's token (§8.7 rule 3).
        self.revoked = False
        #: True when an EXECUTION update was accepted: the execution is complete.
        self.completed = False
        self.calls = 0
        #: Tasks waiting for their updates to become durable.
        self.waiting = 0
        #: True when the last call took a while (a network round trip, not an in-process
        #: answer) and no full call's worth of updates was ready when it came back: producers
        #: do not keep up with the round trips, so more of them would fill the calls sooner.
        self.starved = False
        #: Called with the ids of the operations of every merged response (plugins'
        #: on_operation_change).
        self.on_merge: Callable[[list[str]], None] | None = None

    # -- producer side ------------------------------------------------------------------------

    def enqueue(self, update: Update | None, *, sync: bool) -> _Batch:
        """Queue ``update`` (None: nothing, e.g. to wait for what is queued) in the open batch,
        or in a new one when it would overflow; raises at once if checkpointing stopped."""
        if self.failure is not None or self.revoked or self._closed:
            self._raise_if_stopped()
        queue = self._queue
        batch = queue[-1] if queue else None
        if update is not None:
            if batch is None or (
                batch.updates
                and (
                    len(batch.updates) >= self._max_operations
                    or batch.size + update.size > self._max_bytes
                )
            ):
                batch = _Batch()
                queue.append(batch)
            batch.updates.append(update)
            batch.size += update.size
            self._queued += 1
        elif batch is None:
            batch = _Batch()
            queue.append(batch)
        if sync:
            batch.sync += 1
            self._sync_queued += 1
            if batch.done is None:
                batch.done = self._new_signal()
        if self._wakeup is not None:
            self._wakeup.set()
        return batch

    def checkpoint(self, update: Update, *, sync: bool) -> Awaitable[None]:
        """Record ``update``; await the result. Sync: completes once the update is durable and
        the journal is merged; async: already complete (the update rides along later).

        A plain function, so an async update costs no coroutine and a sync one a single frame.
        Raises at once if checkpointing already stopped.
        """
        batch = self.enqueue(update, sync=sync)
        return self._wait(batch) if sync else DONE

    async def flush(self) -> None:
        """Wait until everything queued so far has been sent and merged."""
        if self._closed or not self._queue:
            return
        await self._wait(self.enqueue(None, sync=True))

    async def refresh(self) -> None:
        """Call the service even with nothing to send, and wait until its answer is merged.

        The answer carries what the service changed meanwhile (waits it completed, retries it
        made READY). Raises like ``checkpoint`` when checkpointing has stopped or fails.
        """
        batch = self.enqueue(None, sync=True)
        batch.refresh = True
        await self._wait(batch)

    def close(self) -> None:
        """Stop accepting updates (suspension or invocation end); queued async ones are dropped."""
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()

    async def _wait(self, batch: _Batch) -> None:
        assert batch.done is not None
        self.waiting += 1
        try:
            await batch.done.wait()
        finally:
            self.waiting -= 1
        if batch.error is not None:
            raise batch.error

    def _raise_if_stopped(self) -> None:
        if self.failure is not None:
            raise CheckpointFailed(self.failure)
        if self.revoked:
            raise SuspendExecution("the service withdrew this invocation's checkpoint token")
        if self._closed:
            raise SuspendExecution("checkpointing has stopped: the invocation is ending")

    # -- the task -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Send batches until closed. Never raises for service errors (see ``failure``)."""
        while True:
            if self._closed:
                self._stop_with_pending()
                return
            if not self._queue:
                await self._wait_for_items()
                continue
            if not self._sync_queued and not self._full_batch_waiting():
                # Only async updates: let more join (nobody waits on these yet), unless a full
                # call's worth is queued already, which can only go out as it is.
                with anyio.move_on_after(self._idle):
                    while not (self._sync_queued or self._closed or self._full_batch_waiting()):
                        await self._wait_for_items()
                if self._closed:
                    continue
            if len(self._queue) == 1 and len(self._queue[0].updates) < self._max_operations:
                await self._let_others_join()
            # else the head batch is closed (full): send it at once, so the tasks its
            # predecessor's answer woke run while this call is in flight.
            batch = self._queue.popleft()
            self._queued -= len(batch.updates)
            self._sync_queued -= batch.sync
            await self._send(batch)
            if self.failure is not None or self.revoked or self.completed:
                self._stop_with_pending()
                return

    def _full_batch_waiting(self) -> bool:
        """A whole call's worth is queued: the head batch is full, or was cut for its size."""
        queue = self._queue
        return len(queue) > 1 or (bool(queue) and len(queue[0].updates) >= self._max_operations)

    async def _let_others_join(self) -> None:
        """Yield to the event loop until a pass adds nothing (or the batch is full), so tasks
        that are runnable right now (a fan-out's siblings) join this call whatever order the
        scheduler runs them in."""
        while True:
            queued = self._queued
            await anyio.lowlevel.checkpoint()
            if self._queued == queued or self._queued >= self._max_operations:
                return

    async def _wait_for_items(self) -> None:
        self._wakeup = wakeup = self._event_class()
        try:
            await wakeup.wait()
        finally:
            self._wakeup = None

    async def _send(self, batch: _Batch) -> None:
        error: BaseException | None = None
        if batch.updates or batch.refresh:
            try:
                await self._call(batch.updates)
            except Exception as exc:  # delivered to waiters, classified by the entry point
                self.failure = exc
                error = CheckpointFailed(exc)
        if error is None and self.revoked:
            error = SuspendExecution("the service withdrew this invocation's checkpoint token")
        if batch.done is not None:
            batch.error = error
            batch.done.set()

    async def _call(self, updates: list[Update]) -> None:
        assert self.token is not None
        self.calls += 1
        sent_at = anyio.current_time()
        reply = await self._service.send_checkpoint(
            self._arn, self.token, [u.wire for u in updates], _uuid4()
        )
        slow = anyio.current_time() - sent_at >= STARVED_CALL_SECONDS
        self.starved = slow and not self._full_batch_waiting()
        self._journal.apply_raw(reply.operations)
        changed = [op["Id"] for op in reply.operations] if self.on_merge is not None else []
        if reply.checkpoint_token is None:
            if any(u.type is OperationType.EXECUTION for u in updates):
                self.completed = True
            else:
                self.revoked = True
            self.token = None
            if self.on_merge is not None:
                self.on_merge(changed)
            return
        self.token = reply.checkpoint_token
        marker = reply.next_marker
        while marker:
            page = await self._service.fetch_state(self._arn, self.token, marker)
            self._journal.apply_raw(page.operations)
            if self.on_merge is not None:
                changed.extend(op["Id"] for op in page.operations)
            marker = page.next_marker
        if self.on_merge is not None:
            self.on_merge(changed)

    def _stop_with_pending(self) -> None:
        self._closed = True
        error: BaseException
        if self.failure is not None:
            error = CheckpointFailed(self.failure)
        else:
            error = SuspendExecution("checkpointing has stopped")
        while self._queue:
            batch = self._queue.popleft()
            if batch.done is not None:
                batch.error = error
                batch.done.set()
        self._sync_queued = self._queued = 0
