"""The one in-memory fake of the durable-execution service that every SDK is measured against.

Small and fast on purpose, and identical for every SDK: it chains checkpoint tokens, stores the
operations the updates create (STEP, CONTEXT, EXECUTION; enough for the benchmark workloads) and
answers with the delta of the call, in botocore's response shapes (timestamps as ``datetime``,
like botocore hands them over). It does not validate like ``adurable.testing.FakeService``.

* :class:`FakeService` is the service itself (plain Python, no dependencies): the SDK-facing
  clients below and the Lambda driver in ``benchmarks/driver.py`` share it.
* :class:`SyncClient` is what the official SDK gets as its ``boto3_client``;
  :class:`AsyncClient` is what adurable gets as its ``client``. Both forward to the same
  :class:`FakeService` methods, so a checkpoint costs the same whoever calls it. With
  ``latency`` each checkpoint call also waits that long (``time.sleep`` on the official SDK's
  checkpoint thread; for adurable, ``time.sleep`` in a worker thread the event loop awaits, see
  :func:`network_delay`).

Operations are stored compactly (a list per operation) and the response dicts are built per
call, so a million-operation execution does not weigh the measured process down by gigabytes.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

PAGE = 1000  # operations per invocation-event page / GetDurableExecutionState page
UTC = dt.UTC

# Stored operation: [type, status, parent_id, name, sub_type, start, end, result, error,
#                    attempt, replay_children]
_TYPE, _STATUS, _PARENT, _NAME, _SUB, _START, _END, _RESULT, _ERROR, _ATTEMPT, _REPLAY = range(11)


class ServiceError(Exception):
    """Shaped like botocore's ClientError: ``.response`` carries the code and HTTP status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"An error occurred ({code}): {message}")
        self.response = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


class FakeService:
    """One durable execution, in memory."""

    def __init__(self, *, latency: float = 0.0, arn: str | None = None) -> None:
        self.latency = latency
        self.execution_name = "bench"
        self.invocation_id = "inv-exec"
        self.arn = arn or (
            "arn:aws:lambda:us-east-1:123456789012:function:bench:$LATEST"
            f"/durable-execution/{self.execution_name}/{self.invocation_id}"
        )
        self._ops: dict[str, list[Any]] = {}
        self._token_seq = 0
        self._token: str | None = None
        self.completed = False
        self.result: str | None = None
        # counters
        self.checkpoint_calls = 0
        self.updates = 0
        self.max_updates_per_call = 0
        self.state_calls = 0
        self.first_checkpoint_at: float | None = None  # time.time() of the first checkpoint

    # -- setup ------------------------------------------------------------------------------

    def start(self, payload: Any) -> None:
        """Create the EXECUTION operation with ``payload`` (JSON) as its input."""
        now = dt.datetime.now(UTC)
        self._ops[self.invocation_id] = [
            "EXECUTION", "STARTED", None, self.execution_name, None, now, None,
            json.dumps(payload), None, 0, False,
        ]  # fmt: skip

    def preload_steps(self, ids_and_results: list[tuple[str, str]]) -> None:
        """Record already-SUCCEEDED root steps (the replay workload)."""
        now = dt.datetime.now(UTC)
        for op_id, result in ids_and_results:
            self._ops[op_id] = ["STEP", "SUCCEEDED", None, None, "Step", now, now, result, None,
                                1, False]  # fmt: skip

    # -- Lambda's side ------------------------------------------------------------------------

    def invocation_event(self) -> dict[str, Any]:
        """The next invocation's envelope: a fresh token and the first page of operations."""
        self._token_seq += 1
        self._token = f"tok{self._token_seq}"
        ids = list(self._ops)
        operations = [self._dump(i, millis=True) for i in ids[:PAGE]]
        state: dict[str, Any] = {"Operations": operations}
        if len(ids) > PAGE:
            state["NextMarker"] = str(PAGE)
        return {
            "DurableExecutionArn": self.arn,
            "CheckpointToken": self._token,
            "InitialExecutionState": state,
        }

    # -- the two APIs ---------------------------------------------------------------------------

    def checkpoint(
        self,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Updates: list[dict[str, Any]] | None = None,
        ClientToken: str | None = None,
    ) -> dict[str, Any]:
        if self.first_checkpoint_at is None:
            self.first_checkpoint_at = time.time()
        self._check(DurableExecutionArn, CheckpointToken)
        updates = Updates or []
        self.checkpoint_calls += 1
        self.updates += len(updates)
        self.max_updates_per_call = max(self.max_updates_per_call, len(updates))
        now = dt.datetime.now(UTC)
        touched: dict[str, None] = {}
        finished = False
        for update in updates:
            op_id = update["Id"]
            if update["Type"] == "EXECUTION":
                finished = True
                self.completed = True
                self.result = update.get("Payload")
                continue
            self._apply(op_id, update, now)
            touched[op_id] = None
        response: dict[str, Any] = {
            "NewExecutionState": {"Operations": [self._dump(i) for i in touched]},
        }
        if finished:
            self._token = None
        else:
            self._token_seq += 1
            self._token = f"tok{self._token_seq}"
            response["CheckpointToken"] = self._token
        return response

    def get_state(
        self,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Marker: str | None = None,
        MaxItems: int | None = None,
    ) -> dict[str, Any]:
        self._check(DurableExecutionArn, CheckpointToken)
        self.state_calls += 1
        start = int(Marker or 0)
        size = min(MaxItems or PAGE, PAGE)
        ids = list(self._ops)[start : start + size]
        response: dict[str, Any] = {"Operations": [self._dump(i) for i in ids]}
        if start + size < len(self._ops):
            response["NextMarker"] = str(start + size)
        return response

    # -- internals ------------------------------------------------------------------------------

    def _check(self, arn: str, token: str) -> None:
        if arn != self.arn:
            raise ServiceError("ResourceNotFoundException", "no such execution", 404)
        if token != self._token:
            raise ServiceError("InvalidParameterValueException", "Invalid checkpoint token", 400)

    def _apply(self, op_id: str, update: dict[str, Any], now: dt.datetime) -> None:
        action = update["Action"]
        op = self._ops.get(op_id)
        if op is None:
            op = [update["Type"], "STARTED", update.get("ParentId"), update.get("Name"),
                  update.get("SubType"), now, None, None, None, 0, False]  # fmt: skip
            self._ops[op_id] = op
        if action == "START":
            op[_STATUS] = "STARTED"
            return
        if action == "SUCCEED":
            op[_STATUS] = "SUCCEEDED"
            op[_RESULT] = update.get("Payload")
        elif action == "FAIL":
            op[_STATUS] = "FAILED"
            op[_ERROR] = update.get("Error")
        elif action == "RETRY":  # not used by the workloads; kept plausible
            op[_STATUS] = "PENDING"
            op[_ERROR] = update.get("Error")
        if op[_TYPE] == "STEP":
            op[_ATTEMPT] += 1
        options = update.get("ContextOptions")
        if options:
            op[_REPLAY] = bool(options.get("ReplayChildren"))
        if op[_STATUS] != "PENDING":
            op[_END] = now

    def _dump(self, op_id: str, *, millis: bool = False) -> dict[str, Any]:
        """One operation in the response shape (``millis``: the invocation event's encoding)."""
        op = self._ops[op_id]
        kind = op[_TYPE]
        out: dict[str, Any] = {"Id": op_id, "Type": kind, "Status": op[_STATUS]}
        if op[_PARENT]:
            out["ParentId"] = op[_PARENT]
        if op[_NAME]:
            out["Name"] = op[_NAME]
        if op[_SUB]:
            out["SubType"] = op[_SUB]
        start, end = op[_START], op[_END]
        if millis:
            out["StartTimestamp"] = int(start.timestamp() * 1000)
            if end is not None:
                out["EndTimestamp"] = int(end.timestamp() * 1000)
        else:
            out["StartTimestamp"] = start
            if end is not None:
                out["EndTimestamp"] = end
        if kind == "STEP":
            details: dict[str, Any] = {"Attempt": op[_ATTEMPT]}
            if op[_RESULT] is not None:
                details["Result"] = op[_RESULT]
            if op[_ERROR] is not None:
                details["Error"] = op[_ERROR]
            out["StepDetails"] = details
        elif kind == "CONTEXT":
            details = {}
            if op[_REPLAY]:
                details["ReplayChildren"] = True
            if op[_RESULT] is not None:
                details["Result"] = op[_RESULT]
            if op[_ERROR] is not None:
                details["Error"] = op[_ERROR]
            out["ContextDetails"] = details
        elif kind == "EXECUTION":
            out["ExecutionDetails"] = {"InputPayload": op[_RESULT]}
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "checkpoint_calls": self.checkpoint_calls,
            "updates": self.updates,
            "max_updates_per_call": self.max_updates_per_call,
            "state_calls": self.state_calls,
            "operations": len(self._ops),
        }


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


async def network_delay(latency: float) -> None:
    """Wait ``latency`` seconds the way a reply from the network arrives on an event loop.

    A worker thread sleeps with ``time.sleep`` (as the official SDK's checkpoint thread does)
    until a deadline fixed when the call starts, then wakes the loop through its self-pipe: an
    event that epoll reports at once, as it reports a socket becoming readable. An event-loop
    timer (``anyio.sleep``) would add up to 2 ms to every call on asyncio: the selector rounds
    the remaining timeout up to a whole millisecond, and for some values (9, 13, 18 ms) CPython
    rounds it up once more when it converts it for epoll_wait. That is the harness's cost, not
    the SDK's; measured in ``benchmarks/RESULTS.md`` (latency-bound).
    """
    import anyio.to_thread

    await anyio.to_thread.run_sync(_sleep_until, time.monotonic() + latency)


class SyncClient:
    """The fake as a boto3 ``lambda`` client (for the official SDK)."""

    def __init__(self, service: FakeService) -> None:
        self.service = service

    def checkpoint_durable_execution(self, **kw: Any) -> dict[str, Any]:
        if self.service.latency:
            time.sleep(self.service.latency)
        return self.service.checkpoint(**kw)

    def get_durable_execution_state(self, **kw: Any) -> dict[str, Any]:
        return self.service.get_state(**kw)


class AsyncClient:
    """The fake as an aiobotocore ``lambda`` client (for adurable)."""

    def __init__(self, service: FakeService) -> None:
        self.service = service

    async def checkpoint_durable_execution(self, **kw: Any) -> dict[str, Any]:
        if self.service.latency:
            await network_delay(self.service.latency)
        return self.service.checkpoint(**kw)

    async def get_durable_execution_state(self, **kw: Any) -> dict[str, Any]:
        return self.service.get_state(**kw)
