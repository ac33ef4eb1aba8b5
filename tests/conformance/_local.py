"""Run one requirement on adurable's local engine, under a virtual clock.

This plays the suite's runner: invoke (asynchronously), watch the history, answer callbacks per
``CallbackActions``, wait until the execution ends, then hand back what the suite checks — the
history, the execution (status, result) and the log lines. Time is virtual: an action's ``Delay``
is a timer on the engine's clock (``LocalEngine.call_later``), ordered with the execution's own
timers, and the delays run one after another as the real runner sleeps them out in its polling
loop; a callback nobody answers times out only once nothing else can happen, as it would while
the real runner keeps polling.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.conformance._match import Bindings
from tests.conformance._registry import Entry

from adurable.local import LocalEngine, VirtualClock

FUNCTION = "conformance"
MAX_INVOCATIONS = 500


@dataclass
class Outcome:
    events: list[dict[str, Any]]
    execution: dict[str, Any]
    logs: list[str]
    errors: list[str] = field(default_factory=list)
    #: Worth knowing when a requirement fails, not failures themselves (a handler may raise).
    notes: list[str] = field(default_factory=list)


@dataclass
class _Action:
    name: str
    operation: str
    payload: Any
    delay: float


def parse_actions(spec: dict[str, Any]) -> list[_Action]:
    actions = []
    for raw in spec.get("CallbackActions") or []:
        operation = str(raw["Operation"]).lower()
        if operation not in ("success", "failure", "heartbeat"):
            raise ValueError(f"unknown callback operation {operation!r}")
        actions.append(
            _Action(
                str(raw["CallbackName"]), operation, raw.get("Payload"), float(raw.get("Delay", 0))
            )
        )
    return actions


def name_matches(pattern: str, name: str) -> bool:
    """The suite's CallbackName rule: ``*``, the exact name, or a ``${/re/}`` search."""
    if pattern in ("*", name):
        return True
    if pattern.startswith("${/") and pattern.endswith("/}"):
        import re

        return re.search(pattern[3:-2], name) is not None
    return False


class _Callbacks:
    """Answers CallbackStarted events with the requirement's actions, one at a time per callback."""

    def __init__(self, engine: LocalEngine, actions: list[_Action], bindings: Bindings) -> None:
        self.engine = engine
        self.actions = actions
        self.bindings = bindings
        self.used: set[int] = set()
        self.handled: set[str] = set()
        self.sending: set[str] = set()
        self.errors: list[str] = []
        self.arn: str | None = None
        #: The real runner sleeps out each action's Delay in its polling loop, one action after
        #: another: nothing else is sent before this instant (clock seconds).
        self.busy_until = 0.0

    def observe(self) -> None:
        if self.arn is None:
            return
        for event in self.engine.service.history(self.arn):
            if event.get("EventType") != "CallbackStarted":
                continue
            callback_id = (event.get("CallbackStartedDetails") or {}).get("CallbackId")
            if not callback_id or callback_id in self.handled or callback_id in self.sending:
                continue
            name = event.get("Name", "")
            index = next(
                (
                    i
                    for i, action in enumerate(self.actions)
                    if i not in self.used
                    and name_matches(str(self.bindings.substitute(action.name)), name)
                ),
                None,
            )
            if index is None:
                if self.actions:
                    self.errors.append(f"no CallbackAction for callback {name!r} ({callback_id})")
                self.handled.add(callback_id)
                continue
            self.used.add(index)
            action = self.actions[index]
            if action.operation != "heartbeat":
                self.handled.add(callback_id)
            self.sending.add(callback_id)
            now = self.engine.clock.now()
            self.busy_until = max(now, self.busy_until) + action.delay
            self.engine.call_later(
                self.busy_until - now, functools.partial(self._send, callback_id, action)
            )

    def _send(self, callback_id: str, action: _Action) -> None:
        self.sending.discard(callback_id)
        payload = self.bindings.substitute(action.payload)
        try:
            if action.operation == "success":
                body = b"" if payload is None else json.dumps(payload).encode()
                self.engine.send_callback_success(callback_id, body)
            elif action.operation == "failure":
                error = {
                    key: payload[key]
                    for key in ("ErrorType", "ErrorMessage", "ErrorData", "StackTrace")
                    if isinstance(payload, dict) and key in payload
                }
                self.engine.send_callback_failure(callback_id, error)
            else:
                self.engine.send_callback_heartbeat(callback_id)
        except Exception as exc:  # the real runner reports a refused callback as a failure
            self.errors.append(f"callback {action.operation} for {callback_id} refused: {exc}")


class LineSink(io.TextIOBase):
    """A text stream that files every complete line it is written into ``lines``."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.partial += text
        *complete, self.partial = self.partial.split("\n")
        self.lines.extend(line for line in complete if line.strip())
        return len(text)


class _LambdaLogHandler(logging.Handler):
    """Lambda's plain-text log line for Python: ``[LEVEL]\\ttimestamp\\trequest id\\tmessage``."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(lambda_log_line(record))


def lambda_log_line(record: logging.LogRecord) -> str:
    """``record`` as the Lambda runtime writes it for Python (plain-text log format)."""
    stamp = dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat()
    request = getattr(record, "requestId", "")
    return f"[{record.levelname}]\t{stamp}\t{request}\t{record.getMessage()}"


@contextlib.contextmanager
def capture_logs() -> Iterator[list[str]]:
    """Everything the function writes to stdout or logs at INFO and up, line by line, in order."""
    lines: list[str] = []
    root = logging.getLogger()
    handler = _LambdaLogHandler(lines)
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    stream = LineSink(lines)
    try:
        with contextlib.redirect_stdout(stream):
            yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        if stream.partial.strip():
            lines.append(stream.partial)
        sys.stdout.flush()


async def run_local(spec: dict[str, Any], entry: Entry, bindings: Bindings) -> Outcome:
    """Run ``entry``'s handler for requirement ``spec`` and collect what the suite checks."""
    engine = LocalEngine(clock=VirtualClock(), max_invocations=MAX_INVOCATIONS)
    engine.register(FUNCTION, entry.handler)
    for name, function in entry.functions.items():
        engine.register(name, function)
    callbacks = _Callbacks(engine, parse_actions(spec), bindings)
    engine.add_observer(callbacks.observe)
    payload = json.dumps(bindings.substitute(spec.get("Input")))
    with capture_logs() as logs:
        async with engine.running():
            started = await engine.invoke(
                FUNCTION, payload, qualifier="$LATEST", invocation_type="Event"
            )
            arn = callbacks.arn = started.durable_execution_arn
            assert arn is not None
            await engine.wait_until_done(arn)
            if engine.service.execution(arn).status == "RUNNING":
                # Nothing left but callbacks nobody answers: let them time out.
                engine.time_out_callbacks = True
                await engine.wait_until_done(arn)
    notes = [f"invocation error: {exc!r}" for exc in engine.invocation_errors(arn)]
    return Outcome(
        engine.get_history(arn)["Events"], engine.get_execution(arn), logs, callbacks.errors, notes
    )
