"""The local service's engine room: state, persistence, ids, execution creation.

``ServiceCore`` holds every execution's ``Record`` in memory behind one re-entrant lock.
Public methods (in ``LocalService``) run inside ``_tx()``: on the way out of the outermost
one, whatever changed is written to the store in one transaction and, once the lock is
released, the change listeners (the engine's scheduler) are told. Nothing here is async.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from adurable._wire import (
    ErrorObject,
    ExecutionDetails,
    Operation,
    OperationStatus,
    OperationType,
)
from adurable.local._clock import Clock, VirtualClock
from adurable.local._history import append_events, error_payload, event, payload
from adurable.local._model import (
    DEFAULT_EXECUTION_TIMEOUT,
    EXECUTION_TIMEOUT,
    ChainedInvokeRequest,
    ExecutionView,
    Record,
    RecordedCall,
    ServiceError,
    Timer,
    invalid,
)
from adurable.local._persist import changed_rows, load_records
from adurable.local._state import to_datetime
from adurable.local._store import MemoryStore, Store
from adurable.local._validate import MAX_PAGE, QUALIFIER_RE

__all__ = ("CRASH_ERROR_TYPE", "FunctionConfig", "ServiceCore", "error_from_exception")

_S = OperationStatus
_T = OperationType

#: ErrorType of the InvocationCompleted record of an invocation that never reported back.
CRASH_ERROR_TYPE = "Runtime.ExitError"


@dataclass(frozen=True)
class FunctionConfig:
    """A function chained invokes (and the engine) may target."""

    durable: bool
    execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT


@dataclass(eq=False)
class _Fault:
    api: str
    error: ServiceError
    after: int
    times: int
    seen: int = 0


def error_from_exception(exc: BaseException) -> ErrorObject:
    """The ErrorObject Lambda reports for an exception a function raised."""
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    return ErrorObject(error_type=name, error_message=str(exc))


def executed_version(qualifier: str | None) -> str:
    """The version a qualifier runs locally: versions as given, aliases and none → $LATEST."""
    if qualifier is not None and QUALIFIER_RE.fullmatch(qualifier):
        return qualifier
    return "$LATEST"


class ServiceCore:
    """State, persistence and service-driven changes shared by the public API."""

    #: Consecutive failed invocations after which the execution FAILS (PROTOCOL §9.2, EMU).
    max_invocation_attempts: int = 5
    #: Backoff before a failed invocation is retried, seconds (EMU).
    invocation_retry_delay: float = 5.0
    #: ``ExecutionTimeout`` of executions of functions registered without one (seconds).
    execution_timeout_seconds: int = DEFAULT_EXECUTION_TIMEOUT

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        page_size: int = 1000,
        region: str = "us-east-1",
        account: str = "123456789012",
        store: Store | None = None,
        record_calls: bool = True,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be within 1..{MAX_PAGE}, got {page_size}")
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.store: Store = store if store is not None else MemoryStore()
        self.page_size = page_size
        self.region = region
        self.account = account
        #: Every API call (checkpoint / get_state) with its answer, when ``record_calls``.
        self.calls: list[RecordedCall] = []
        self.record_calls = record_calls
        self._lock = threading.RLock()
        self._depth = 0
        self._records: dict[str, Record] = {}
        self._names: dict[tuple[str, str, str], str] = {}
        self._callbacks: dict[str, tuple[str, str]] = {}
        self._faults: list[_Fault] = []
        self._seq = 0
        self._saved_meta: dict[str, str] = {}
        self._functions: dict[str, FunctionConfig] = {}
        self._invoke_requests: list[ChainedInvokeRequest] = []
        self._listeners: list[Callable[[], None]] = []
        self._load()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """Hold the lock; on leaving the outermost level write the changes, then notify."""
        changed = False
        with self._lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    changed = self._flush()
        if changed:
            for listener in list(self._listeners):
                listener()

    def _flush(self) -> bool:
        meta = {"seq": str(self._seq)}
        if isinstance(self.clock, VirtualClock):
            meta["clock"] = repr(self.clock.now())
        rows = changed_rows(self._records.values(), {})
        if meta != self._saved_meta:
            rows.meta = meta
        if not rows:
            return False
        self.store.write(rows)
        self._saved_meta = meta
        return True

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (from the calling thread, lock released) after every change."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _load(self) -> None:
        """Rebuild the state from the store; invocations in flight when it stopped crashed."""
        loaded = load_records(self.store.load())
        self._records = loaded.records
        self._callbacks = loaded.callbacks
        self._saved_meta = loaded.meta
        self._seq = int(loaded.meta.get("seq", "0"))
        if isinstance(self.clock, VirtualClock) and "clock" in loaded.meta:
            self.clock.advance_to(float(loaded.meta["clock"]))
        for record in self._records.values():
            view = record.view
            self._names[(view.function_name, view.qualifier, view.execution_name)] = view.arn
        with self._tx():
            for record in self._records.values():
                if record.running and record.in_flight:
                    self._abandon(record, "The local engine stopped during this invocation")

    def close(self) -> None:
        """Close the store (the service is unusable afterwards)."""
        with self._lock:
            self.store.close()

    # ------------------------------------------------------------------ lookups, ids

    def _record(self, arn: str) -> Record:
        try:
            return self._records[arn]
        except KeyError:
            known = ", ".join(self._records) or "none"
            raise KeyError(f"no execution {arn!r} in this service (known: {known})") from None

    def _api_record(self, arn: str, token: str) -> Record:
        record = self._records.get(arn)
        if record is None:
            raise invalid(f"Unknown durable execution ARN {arn!r}")
        if not token or record.token is None or token != record.token:
            raise invalid(
                "Invalid checkpoint token: it was already used, belongs to an earlier invocation, "
                "or the execution has ended"
            )
        return record

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _new_token(self, record: Record) -> str:
        record.token_seq += 1
        record.dirty = True
        raw = f"{record.execution_op_id}:{record.token_seq}:{self._next_seq()}"
        return base64.b64encode(raw.encode("ascii")).decode("ascii")

    def _new_arn(self, function_name: str, qualifier: str, name: str | None = None) -> str:
        return (
            f"arn:aws:lambda:{self.region}:{self.account}:function:{function_name}:{qualifier}"
            f"/durable-execution/{name or uuid.uuid4().hex}/{uuid.uuid4()}"
        )

    # ------------------------------------------------------------------ executions

    def _create_execution(
        self,
        input_payload: str | None,
        function_name: str,
        qualifier: str,
        execution_name: str | None,
        *,
        arn: str | None = None,
        invoked_by: tuple[str, str] | None = None,
        tenant_id: str | None = None,
    ) -> str:
        if execution_name is not None:
            existing = self._names.get((function_name, qualifier, execution_name))
            if existing is not None:
                return existing
        arn = arn or self._new_arn(function_name, qualifier, execution_name)
        name, invocation_id = arn.split("/")[-2:]
        config = self._functions.get(function_name)
        timeout = config.execution_timeout if config else self.execution_timeout_seconds
        now = self.clock.now()
        view = ExecutionView(
            arn=arn,
            execution_name=name,
            invoked_by=invoked_by,
            tenant_id=tenant_id,
            function_name=function_name,
            qualifier=qualifier,
            start_time=now,
            timeout=timeout,
        )
        record = Record(view=view, execution_op_id=invocation_id, order=self._next_seq())
        op = Operation(
            id=invocation_id,
            type=_T.EXECUTION,
            status=_S.STARTED,
            start_timestamp=to_datetime(now),
            execution_details=ExecutionDetails(input_payload=input_payload),
        )
        record.put_op(op)
        record.set_timer(Timer(now + timeout, self._next_seq(), EXECUTION_TIMEOUT, ""))
        self._records[arn] = record
        self._names[(function_name, qualifier, name)] = arn
        details = {"Input": payload(input_payload), "ExecutionTimeout": timeout}
        append_events(record, [event("ExecutionStarted", op, to_datetime(now), details)])
        return arn

    # ------------------------------------------------------------------ invocations

    def _invocation_completed(self, record: Record, error: ErrorObject | None) -> None:
        now = self.clock.now()
        started = record.invocation_started if record.invocation_started is not None else now
        details: dict[str, Any] = {
            "StartTimestamp": to_datetime(started),
            "EndTimestamp": to_datetime(now),
            "RequestId": record.view.request_id or "",
        }
        if error is not None:
            details["Error"] = error_payload(error)
        append_events(record, [event("InvocationCompleted", None, to_datetime(now), details)])
        record.invocation_started = None
        record.dirty = True
        if record.running:
            record.token = None  # the invocation is over; its token dies with it

    def _abandon(self, record: Record, message: str) -> None:
        """An invocation will never report back: record the crash and re-invoke at once."""
        error = ErrorObject(error_type=CRASH_ERROR_TYPE, error_message=message)
        self._invocation_completed(record, error)
        if record.running:
            record.retry_due = True
