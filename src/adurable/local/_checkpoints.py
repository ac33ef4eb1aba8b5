"""The two calls the SDK makes: ``CheckpointDurableExecution`` and ``GetDurableExecutionState``.

How a checkpoint is processed
-----------------------------
1. fault injection (``inject_fault``) — a faulted call is recorded and changes nothing;
2. ``ClientToken`` replay — the same ``(ClientToken, CheckpointToken)`` pair returns the cached
   response without looking at the (by now consumed) token again;
3. the token must be the execution's current one (single use, chained);
4. due timers are applied (the service completes due waits / readies due retries whenever it
   processes a checkpoint, PROTOCOL §8.6);
5. every update is validated against §3.7 / §4.4 / §4.7 on an overlay (``_state``); the first
   violation rejects the whole call with 400 ``InvalidParameterValueException`` and no state
   change; otherwise the overlay is committed atomically;
6. the response carries a new token (none when an EXECUTION update ended the execution, or in
   forced-replay mode, see ``replay_always``) and the **delta**.

The delta: each execution keeps an ordered set of operation ids the *service* changed (timers,
callbacks, chained invokes) that no checkpoint response has delivered yet. A checkpoint
response returns those ids first, then the ids touched by the call in update order, and
empties the set. A new invocation does not empty it (PROTOCOL Appendix A.2). A separate set
feeds ``UpdatedOperationIds`` and is emptied by ``invocation_event``.

Markers: ``get_state`` pages ``"ops:<offset>"`` (the full operation list in creation order) and
``"delta:<n>:<offset>"`` (the remainder of checkpoint response number ``<n>``).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from adurable.local._core import _Fault
from adurable.local._history import append_events
from adurable.local._lifecycle import ServiceLifecycle
from adurable.local._model import Record, RecordedCall, ServiceError, invalid
from adurable.local._state import Batch, validate
from adurable.local._validate import CLIENT_TOKEN_RE, MAX_PAGE, parse_marker
from adurable.local._views import dump_op, identity

__all__ = ("CheckpointApi",)

_R = TypeVar("_R")


class CheckpointApi(ServiceLifecycle):
    """Checkpoint and state calls, botocore-shaped (sync) and aiobotocore-shaped (async)."""

    #: Forced replay: withdraw the token after every checkpoint call that changed something,
    #: so the SDK ends the invocation (PENDING) and the handler is re-invoked from the start.
    replay_always: bool = False

    def checkpoint(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Updates: list[dict[str, Any]] | None = None,
        ClientToken: str | None = None,
    ) -> dict[str, Any]:
        """``CheckpointDurableExecution`` (PROTOCOL §3.3)."""
        request: dict[str, Any] = {
            "DurableExecutionArn": DurableExecutionArn,
            "CheckpointToken": CheckpointToken,
        }
        if Updates is not None:
            request["Updates"] = copy.deepcopy(Updates)
        if ClientToken is not None:
            request["ClientToken"] = ClientToken
        run = functools.partial(
            self._checkpoint, DurableExecutionArn, CheckpointToken, Updates, ClientToken
        )
        with self._tx():
            return self._call("checkpoint", request, run)

    def get_state(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Marker: str | None = None,
        MaxItems: int | None = None,
    ) -> dict[str, Any]:
        """``GetDurableExecutionState`` (PROTOCOL §3.4)."""
        request: dict[str, Any] = {
            "DurableExecutionArn": DurableExecutionArn,
            "CheckpointToken": CheckpointToken,
        }
        if Marker is not None:
            request["Marker"] = Marker
        if MaxItems is not None:
            request["MaxItems"] = MaxItems
        run = functools.partial(
            self._get_state, DurableExecutionArn, CheckpointToken, Marker, MaxItems
        )
        with self._tx():
            return self._call("get_state", request, run)

    async def checkpoint_durable_execution(self, **kwargs: Any) -> dict[str, Any]:
        """Awaitable ``checkpoint`` (the aiobotocore client method name)."""
        return await self.call_async(functools.partial(self.checkpoint, **kwargs))

    async def get_durable_execution_state(self, **kwargs: Any) -> dict[str, Any]:
        """Awaitable ``get_state`` (the aiobotocore client method name)."""
        return await self.call_async(functools.partial(self.get_state, **kwargs))

    async def call_async(self, call: Callable[[], _R]) -> _R:
        """Run a service call from async code: in a worker thread if the store blocks."""
        if self.store.blocking:
            return await anyio.to_thread.run_sync(call)
        await anyio.lowlevel.checkpoint()
        return call()

    def inject_fault(
        self, api: str, error: ServiceError, *, times: int = 1, after: int = 0
    ) -> None:
        """Make calls ``after + 1`` … ``after + times`` of ``api`` (counted from now) fail.

        ``api`` is ``"checkpoint"`` or ``"get_state"``. A faulted call is recorded in ``calls``
        and changes nothing (the token stays valid). Faults injected separately count their
        windows independently; when two windows cover the same call the older one wins.
        """
        if api not in ("checkpoint", "get_state"):
            raise ValueError(f"api must be 'checkpoint' or 'get_state', not {api!r}")
        if times < 1 or after < 0:
            raise ValueError("need times >= 1 and after >= 0")
        with self._lock:
            self._faults.append(_Fault(api, error, after, times))

    # ------------------------------------------------------------------ internals: calls

    def _call(
        self, api: str, request: dict[str, Any], run: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        fault = self._take_fault(api)
        if fault is not None:
            self._recorded(RecordedCall(api, request, None, fault))
            raise fault
        try:
            response = run()
        except ServiceError as exc:
            self._recorded(RecordedCall(api, request, None, exc))
            raise
        self._recorded(RecordedCall(api, request, copy.deepcopy(response), None))
        return response

    def _recorded(self, call: RecordedCall) -> None:
        if self.record_calls:
            self.calls.append(call)

    def _take_fault(self, api: str) -> ServiceError | None:
        hit: ServiceError | None = None
        for fault in self._faults:
            if fault.api != api:
                continue
            fault.seen += 1
            if hit is None and fault.after < fault.seen <= fault.after + fault.times:
                hit = fault.error
        self._faults = [f for f in self._faults if f.seen < f.after + f.times]
        return hit

    def _get_state(
        self, arn: str, token: str, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        record = self._api_record(arn, token)
        if max_items is not None and not 0 <= max_items <= MAX_PAGE:
            raise invalid(f"MaxItems must be within 0..{MAX_PAGE}, got {max_items}")
        limit = min(max_items, self.page_size) if max_items else self.page_size
        kind, seq, offset = parse_marker(marker or "ops:0")
        if kind == "ops":
            ids = list(record.view.operations)
        else:
            snapshot = record.delta_snapshot
            if snapshot is None or snapshot[0] != seq:
                raise invalid(f"Marker {marker!r} has expired")
            ids = snapshot[1]
        if offset > len(ids):
            raise invalid(f"Marker {marker!r} is past the end of the list")
        page = ids[offset : offset + limit]
        ops = record.view.operations
        response: dict[str, Any] = {"Operations": [dump_op(ops[i], identity) for i in page]}
        end = offset + len(page)
        if end < len(ids):
            response["NextMarker"] = f"ops:{end}" if kind == "ops" else f"delta:{seq}:{end}"
        return response

    def _checkpoint(
        self, arn: str, token: str, updates: Any, client_token: str | None
    ) -> dict[str, Any]:
        record = self._records.get(arn)
        if client_token is not None and record is not None:
            cached = record.client_tokens.get((client_token, token))
            if cached is not None:
                return copy.deepcopy(cached)
        record = self._api_record(arn, token)
        if client_token is not None and not CLIENT_TOKEN_RE.fullmatch(client_token):
            raise invalid("ClientToken must be 1-64 printable ASCII characters")
        if updates is not None and not isinstance(updates, list):
            raise invalid("Updates must be a list")
        self._fire_due(record)
        seq = self._seq
        try:
            batch = validate(
                Batch(record, self.clock.now(), self._next_seq, self._resolve), updates or []
            )
        except ServiceError:
            self._seq = seq  # a rejected call leaves no trace, not even in the id sequence
            raise
        self._commit(record, batch)
        response = self._respond(record, batch, revoke=self.replay_always and bool(updates))
        if client_token is not None:
            record.remember_response((client_token, token), copy.deepcopy(response))
        return response

    def _commit(self, record: Record, batch: Batch) -> None:
        for op in batch.ops.values():
            record.put_op(op)
        for key, timer in batch.timers:
            if timer is None:
                record.drop_timer(*key)
            else:
                record.set_timer(timer)
        for callback_id, op_id in batch.callbacks.items():
            self._callbacks[callback_id] = (record.view.arn, op_id)
            record.new_callbacks.append((callback_id, op_id))
        record.op_meta.update(batch.meta)
        append_events(record, batch.events)
        for op_id in batch.invokes:
            self._start_target(record, op_id)
        if batch.completion is not None:
            self._complete(record, batch.completion, batch.now)
            batch.touched[record.execution_op_id] = None

    def _respond(self, record: Record, batch: Batch, *, revoke: bool) -> dict[str, Any]:
        """The checkpoint answer: the new token (unless the execution ended or the token is
        withdrawn) and the delta, paged when larger than ``page_size``."""
        ids = list(dict.fromkeys([*record.delta_pending, *batch.touched]))
        record.delta_pending.clear()
        record.dirty = True
        state: dict[str, Any] = {}
        response: dict[str, Any] = {}
        if record.running and not revoke:
            record.token = self._new_token(record)
            response["CheckpointToken"] = record.token
            if len(ids) > self.page_size:
                record.delta_seq += 1
                record.delta_snapshot = (record.delta_seq, ids)
                state["NextMarker"] = f"delta:{record.delta_seq}:{self.page_size}"
                ids = ids[: self.page_size]
        else:
            record.token = None  # ended, or withdrawn: nothing to page with, all inline
            record.reinvoke = record.running
        ops = record.view.operations
        response["NewExecutionState"] = {"Operations": [dump_op(ops[i], identity) for i in ids]}
        response["NewExecutionState"].update(state)
        return response
