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
* a synchronous caller is released only after the response's operations, and any paged
  remainder, are merged into the journal (§8.5);
* ``refresh()`` forces a call even when nothing is queued (``Updates: []``): the service
  applies due timers while processing any checkpoint, so its response carries them (§8.6).
  Refreshes queued together share one call, and a refresh rides along with queued updates.

Failures are delivered, not raised in the batcher's task: every waiter of the failed batch, every
queued update and every later checkpoint gets ``CheckpointFailed(source)``; the entry point
reads ``failure`` to classify the invocation's answer.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from adurable._errors import CheckpointFailed, SuspendExecution
from adurable._wire import Operation, OperationType, OperationUpdate

if TYPE_CHECKING:
    from adurable._journal import Journal
    from adurable._service import DurableService

MAX_BATCH_OPERATIONS = 250
MAX_BATCH_BYTES = 768_000
IDLE_SECONDS = 0.1


@dataclass(slots=True)
class _Item:
    update: OperationUpdate | None  # None: a flush or refresh marker
    size: int
    done: anyio.Event | None  # set once the batch holding this item is merged (sync items)
    error: BaseException | None = None
    refresh: bool = False  # a marker that makes its batch call the service even if empty


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
        self._queue: deque[_Item] = deque()
        self._sync_queued = 0
        self._wakeup = anyio.Event()
        self._closed = False
        #: The error that stopped checkpointing, if any (a BotoClientError normally).
        self.failure: BaseException | None = None
        #: True when the service withdrew this invocation's token (§8.7 rule 3).
        self.revoked = False
        #: True when an EXECUTION update was accepted: the execution is complete.
        self.completed = False
        self.calls = 0
        #: Called with the operations of every merged response (plugins' on_operation_change).
        self.on_merge: Callable[[list[Operation]], None] | None = None

    # -- producer side ------------------------------------------------------------------------

    def enqueue(self, update: OperationUpdate | None, *, sync: bool) -> _Item:
        """Queue ``update``; raises at once if checkpointing already stopped."""
        self._raise_if_stopped()
        size = len(json.dumps(update.to_wire()).encode()) if update is not None else 0
        item = _Item(update, size, anyio.Event() if sync else None)
        self._queue.append(item)
        if sync:
            self._sync_queued += 1
        self._wakeup.set()
        return item

    async def checkpoint(self, update: OperationUpdate, *, sync: bool) -> None:
        """Record ``update``. Sync: returns once it is durable and the journal is merged."""
        item = self.enqueue(update, sync=sync)
        if sync:
            await self._wait(item)

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
        item = self.enqueue(None, sync=True)
        item.refresh = True
        await self._wait(item)

    def close(self) -> None:
        """Stop accepting updates (suspension or invocation end); queued async ones are dropped."""
        self._closed = True
        self._wakeup.set()

    async def _wait(self, item: _Item) -> None:
        assert item.done is not None
        await item.done.wait()
        if item.error is not None:
            raise item.error

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
            if not self._sync_queued:
                with anyio.move_on_after(self._idle):
                    while not self._sync_queued and not self._closed:
                        await self._wait_for_items()
                if self._closed:
                    continue
            await self._let_others_join()
            batch = self._take_batch()
            await self._send(batch)
            if self.failure is not None or self.revoked or self.completed:
                self._stop_with_pending()
                return

    async def _let_others_join(self) -> None:
        """Yield to the event loop until a pass adds nothing (or the batch is full), so tasks
        that are runnable right now (a fan-out's siblings) join this call whatever order the
        scheduler runs them in."""
        while True:
            queued = len(self._queue)
            await anyio.lowlevel.checkpoint()
            if len(self._queue) == queued or len(self._queue) >= self._max_operations:
                return

    async def _wait_for_items(self) -> None:
        self._wakeup = anyio.Event()
        await self._wakeup.wait()

    def _take_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        operations = size = 0
        while self._queue:
            item = self._queue[0]
            if item.update is not None:
                if batch and (
                    operations >= self._max_operations or size + item.size > self._max_bytes
                ):
                    break
                operations += 1
                size += item.size
            batch.append(self._queue.popleft())
            if item.done is not None:
                self._sync_queued -= 1
        return batch

    async def _send(self, batch: list[_Item]) -> None:
        updates = [item.update for item in batch if item.update is not None]
        error: BaseException | None = None
        if updates or any(item.refresh for item in batch):
            try:
                await self._call(updates)
            except Exception as exc:  # delivered to waiters, classified by the entry point
                self.failure = exc
                error = CheckpointFailed(exc)
        if error is None and self.revoked:
            error = SuspendExecution("the service withdrew this invocation's checkpoint token")
        for item in batch:
            if item.done is not None:
                item.error = error
                item.done.set()

    async def _call(self, updates: list[OperationUpdate]) -> None:
        assert self.token is not None
        self.calls += 1
        response = await self._service.checkpoint(self._arn, self.token, updates, str(uuid.uuid4()))
        state = response.new_execution_state
        self._journal.apply(state.operations)
        changed = list(state.operations)
        if response.checkpoint_token is None:
            if any(u.type is OperationType.EXECUTION for u in updates):
                self.completed = True
            else:
                self.revoked = True
            self.token = None
            if self.on_merge is not None:
                self.on_merge(changed)
            return
        self.token = response.checkpoint_token
        marker = state.next_marker
        while marker:
            page = await self._service.get_state(self._arn, self.token, marker)
            self._journal.apply(page.operations)
            changed.extend(page.operations)
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
            item = self._queue.popleft()
            if item.done is not None:
                item.error = error
                item.done.set()
        self._sync_queued = 0
