"""Where the local service keeps its state: in memory, or in a SQLite file.

The service holds every execution in memory and writes what each call changed to its store
before answering (write-through, one transaction per service call), so a process that dies
and is restarted on the same store loses nothing that was answered. A store deals in rows of
JSON text (see ``Rows``); it never interprets them.

Rows
----
``meta``        key → value: the service's id sequence and the virtual clock's time.
``executions``  one per execution: its ARN, creation order, function, qualifier, name, status,
                start time (the columns are for people querying the file) and the record as
                JSON (status, result, token, counters, delta, cached answers...).
``operations``  one per operation: ARN, id, creation position, the Operation as JSON and the
                service's metadata about it (wait seconds, callback timeouts, invoke target).
``events``      one per history event: ARN, EventId, the event as JSON.
``timers``      ARN, kind, operation id, due time, sequence — replaced per execution.
``callbacks``   callback id → (ARN, operation id).

``SqliteStore`` uses the standard library's ``sqlite3`` with WAL journaling; see its docstring
for threading. ``MemoryStore`` keeps the same rows in dictionaries, so a second service built
on the same ``MemoryStore`` resumes exactly like one built on the same SQLite file.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ("MemoryStore", "Rows", "SqliteStore", "Store")

#: (arn, seq, function_name, qualifier, name, status, start, data)
ExecutionRow = tuple[str, int, str, str, str, str, float, str]
#: (arn, op_id, position, operation, meta)
OperationRow = tuple[str, str, int, str, str]
#: (arn, event_id, event)
EventRow = tuple[str, int, str]
#: (arn, kind, op_id, due, seq)
TimerRow = tuple[str, str, str, float, int]
#: (callback_id, arn, op_id)
CallbackRow = tuple[str, str, str]


@dataclass
class Rows:
    """A set of rows: everything a store holds (``load``) or what one call changed (``write``).

    In a write, ``timers_of`` lists the executions whose timers are replaced by the ``timers``
    rows given for them (possibly none).
    """

    meta: dict[str, str] = field(default_factory=dict)
    executions: list[ExecutionRow] = field(default_factory=list)
    operations: list[OperationRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    timers: list[TimerRow] = field(default_factory=list)
    callbacks: list[CallbackRow] = field(default_factory=list)
    timers_of: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(
            self.meta
            or self.executions
            or self.operations
            or self.events
            or self.timers
            or self.callbacks
            or self.timers_of
        )


@runtime_checkable
class Store(Protocol):
    """Persistence of the local service (see the module docstring)."""

    #: True when ``write`` does blocking I/O: async callers should run it in a worker thread.
    blocking: bool

    def load(self) -> Rows:
        """Everything stored, rows in order (executions by creation, events by id...)."""
        ...

    def write(self, rows: Rows) -> None:
        """Apply ``rows`` (insert or replace) atomically."""
        ...

    def close(self) -> None:
        """Release resources; the store is unusable afterwards."""
        ...


class MemoryStore:
    """Rows in dictionaries: nothing survives the process, but a new service on the same
    ``MemoryStore`` object resumes from it (handy to test restarts without a file)."""

    blocking = False

    def __init__(self) -> None:
        self._meta: dict[str, str] = {}
        self._executions: dict[str, ExecutionRow] = {}
        self._operations: dict[tuple[str, str], OperationRow] = {}
        self._events: dict[tuple[str, int], EventRow] = {}
        self._timers: dict[str, list[TimerRow]] = {}
        self._callbacks: dict[str, CallbackRow] = {}

    def load(self) -> Rows:
        return Rows(
            meta=dict(self._meta),
            executions=sorted(self._executions.values(), key=lambda r: r[1]),
            operations=sorted(self._operations.values(), key=lambda r: (r[0], r[2])),
            events=sorted(self._events.values(), key=lambda r: (r[0], r[1])),
            timers=[row for rows in self._timers.values() for row in rows],
            callbacks=list(self._callbacks.values()),
        )

    def write(self, rows: Rows) -> None:
        self._meta.update(rows.meta)
        for execution in rows.executions:
            self._executions[execution[0]] = execution
        for op in rows.operations:
            self._operations[(op[0], op[1])] = op
        for ev in rows.events:
            self._events[(ev[0], ev[1])] = ev
        for arn in rows.timers_of:
            self._timers[arn] = [t for t in rows.timers if t[0] == arn]
        for callback in rows.callbacks:
            self._callbacks[callback[0]] = callback

    def close(self) -> None:
        """Nothing to release."""


_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    arn TEXT PRIMARY KEY, seq INTEGER NOT NULL, function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, start REAL NOT NULL,
    data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS operations (
    arn TEXT NOT NULL, op_id TEXT NOT NULL, position INTEGER NOT NULL, operation TEXT NOT NULL,
    meta TEXT NOT NULL, PRIMARY KEY (arn, op_id));
CREATE TABLE IF NOT EXISTS events (
    arn TEXT NOT NULL, event_id INTEGER NOT NULL, event TEXT NOT NULL,
    PRIMARY KEY (arn, event_id));
CREATE TABLE IF NOT EXISTS timers (
    arn TEXT NOT NULL, kind TEXT NOT NULL, op_id TEXT NOT NULL, due REAL NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (arn, kind, op_id));
CREATE TABLE IF NOT EXISTS callbacks (
    callback_id TEXT PRIMARY KEY, arn TEXT NOT NULL, op_id TEXT NOT NULL);
"""


class SqliteStore:
    """Rows in a SQLite file (stdlib ``sqlite3``, WAL journal, ``synchronous=NORMAL``).

    Every ``write`` is one transaction, committed before the service answers: a process that
    is killed (not a power cut) loses nothing it answered. One connection is shared by every
    thread (``check_same_thread=False``) behind a lock; the service calls the store while it
    holds its own lock, from whatever thread called the service. ``blocking`` is True, so the
    engine and the service's awaitable methods run service calls in a worker thread
    (``anyio.to_thread.run_sync``) and the event loop never waits on the disk.
    """

    blocking = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        #: Closes the connection when the store is dropped without ``close()``.
        self._finalizer = weakref.finalize(self, self._conn.close)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _SCHEMA_VERSION):
            raise RuntimeError(
                f"{self.path} has schema version {version}; this adurable reads version "
                f"{_SCHEMA_VERSION}"
            )
        self._conn.executescript(_SCHEMA)
        self._conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    def load(self) -> Rows:
        with self._lock:
            query = self._conn.execute
            return Rows(
                meta=dict(query("SELECT key, value FROM meta").fetchall()),
                executions=query(
                    "SELECT arn, seq, function_name, qualifier, name, status, start, data "
                    "FROM executions ORDER BY seq"
                ).fetchall(),
                operations=query(
                    "SELECT arn, op_id, position, operation, meta FROM operations "
                    "ORDER BY arn, position"
                ).fetchall(),
                events=query(
                    "SELECT arn, event_id, event FROM events ORDER BY arn, event_id"
                ).fetchall(),
                timers=query("SELECT arn, kind, op_id, due, seq FROM timers").fetchall(),
                callbacks=query("SELECT callback_id, arn, op_id FROM callbacks").fetchall(),
            )

    def write(self, rows: Rows) -> None:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._write(conn, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _write(conn: sqlite3.Connection, rows: Rows) -> None:
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows.meta.items())
        conn.executemany(
            "INSERT OR REPLACE INTO executions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows.executions
        )
        conn.executemany(
            "INSERT OR REPLACE INTO operations VALUES (?, ?, ?, ?, ?)", rows.operations
        )
        conn.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?)", rows.events)
        conn.executemany("DELETE FROM timers WHERE arn = ?", [(arn,) for arn in rows.timers_of])
        conn.executemany("INSERT OR REPLACE INTO timers VALUES (?, ?, ?, ?, ?)", rows.timers)
        conn.executemany("INSERT OR REPLACE INTO callbacks VALUES (?, ?, ?)", rows.callbacks)

    def close(self) -> None:
        with self._lock:
            self._finalizer()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"
