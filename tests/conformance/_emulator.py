"""Run the requirements against the official local emulator instead of adurable's engine.

The emulator is ``dex-local-runner start-server`` from ``aws-durable-execution-sdk-python-testing``
(installed on first use into its own venv, ``.cache/conformance/emulator-venv``, git-ignored; it
never enters adurable's venv). It keeps the executions and serves the durable-execution REST API
(checkpoint, state, history, callbacks, get execution); to run a handler it calls Lambda's
``Invoke`` on an endpoint we give it. That endpoint is :class:`LambdaEndpoint`, a small HTTP
server in this process: it runs the registered adurable handler with the invocation envelope,
talking back to the emulator through an aiobotocore ``lambda`` client made exactly like
adurable's own (``adurable._service.lambda_client_config``; dummy credentials), and answers with
the handler's output — so every checkpoint and state page crosses the real wire to a service we
did not write. Invoke targets (``Entry.functions``) are Lambda functions on the same endpoint,
declared to the emulator with ``--function-configs`` (durable ones with a ``DurableConfig``).

The driver then plays the suite's polling runner in real time: start the execution, poll the
history, answer ``CallbackActions`` (sleeping their ``Delay``), stop at a terminal status, after
30 s without a new event, or at a per-requirement cap. Requirements run in parallel threads
against one emulator. Logs are captured per requirement (stdout and logging, routed by a
context variable the invocation sets), in the Lambda line format ``_local`` uses.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import http.server
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
from anyio.from_thread import BlockingPortal
from tests.conformance._local import (
    LineSink,
    Outcome,
    lambda_log_line,
    name_matches,
    parse_actions,
)
from tests.conformance._match import Bindings
from tests.conformance._registry import TARGETS, Entry
from tests.conformance._requirements import CACHE

from adurable.local._context import LambdaContext, exception_payload, function_error_payload
from adurable.local._core import CRASH_ERROR_TYPE
from adurable.local._scheduler import call_plain, exit_status

PACKAGE = "aws-durable-execution-sdk-python-testing"
VERSION = "1.4.0"
VENV = CACHE / "emulator-venv"
REGION = "us-west-2"
ACCOUNT = "123456789012"
#: What the suite's runner waits for a new event before giving up (its config.py).
NO_PROGRESS_TIMEOUT = 30.0
POLL_INTERVAL = 0.5
#: Wall-clock cap per requirement (the longest ones wait ~20 s of durable time).
REQUIREMENT_CAP = 150.0
EXECUTION_TIMEOUT = 900
#: Start latency of an invoke target (a separate Lambda function), seconds; see RESULTS.md.
TARGET_LATENCY = 0.5
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})
_DUMMY_KEY = "conformance"

log = logging.getLogger(__name__)


# -- the emulator process ------------------------------------------------------------------------


def ensure_emulator() -> Path:
    """``dex-local-runner`` of the pinned emulator, installing it into its own venv if needed."""
    runner = VENV / "bin" / "dex-local-runner"
    marker = VENV / f".{PACKAGE}-{VERSION}"
    if runner.exists() and marker.exists():
        return runner
    python = os.environ.get("ADURABLE_EMULATOR_PYTHON", "python3")
    if not (VENV / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{PACKAGE}=={VERSION}"],
        check=True,
    )
    marker.touch()
    return runner


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def emulator_process(lambda_endpoint: str, function_configs: dict[str, Any]) -> Iterator[str]:
    """Start ``dex-local-runner start-server`` (real time); yield its URL; stop it after."""
    runner = ensure_emulator()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    CACHE.mkdir(parents=True, exist_ok=True)
    configs = CACHE / "emulator-function-configs.json"
    configs.write_text(json.dumps(function_configs))
    command = [
        str(runner), "start-server",
        "--host", "127.0.0.1", "--port", str(port),
        "--lambda-endpoint", lambda_endpoint,
        "--local-runner-endpoint", url,
        "--local-runner-region", REGION,
        "--log-level", "WARNING",
        "--function-configs", f"file://{configs}",
    ]  # fmt: skip
    with (CACHE / "emulator.log").open("wb") as output:
        # Its boto3 Invoke client signs requests: local dummy keys, no credential chain lookups.
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": _DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": _DUMMY_KEY,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_PROFILE", None)
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"dex-local-runner did not start; see {CACHE / 'emulator.log'}"
                        ) from None
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- log capture ---------------------------------------------------------------------------------

#: The lines of the requirement whose code is running (set per invocation).
_SINK: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "conformance_log_sink", default=None
)


class _RoutedStdout(io.TextIOBase):
    """stdout that files complete lines into the current requirement's sink, else passes on."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self.streams: dict[int, LineSink] = {}

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        sink = _SINK.get()
        if sink is None:
            return int(self.fallback.write(text))
        stream = self.streams.get(id(sink))
        if stream is None:
            stream = self.streams[id(sink)] = LineSink(sink)
        return stream.write(text)

    def flush(self) -> None:
        self.fallback.flush()


class _RoutedLogs(logging.Handler):
    """Lambda's plain-text line ``[LEVEL]\\ttimestamp\\trequest id\\tmessage``, per requirement."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = _SINK.get()
        if sink is not None:
            sink.append(lambda_log_line(record))


@contextlib.contextmanager
def routed_capture() -> Iterator[None]:
    root = logging.getLogger()
    handler = _RoutedLogs(logging.INFO)
    saved_level, saved_stdout = root.level, sys.stdout
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    sys.stdout = _RoutedStdout(saved_stdout)
    try:
        yield
    finally:
        sys.stdout = saved_stdout
        root.removeHandler(handler)
        root.setLevel(saved_level)


# -- the Lambda endpoint -------------------------------------------------------------------------


@dataclass
class Function:
    requirement_id: str
    handler: Any
    durable: bool


@dataclass
class _Exited:
    exc: BaseException


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def execution_function(requirement_id: str) -> str:
    return f"conf-{requirement_id}"


def target_function(requirement_id: str, name: str) -> str:
    return f"conf-{requirement_id}--{_sanitize(name)}"


def _is_durable(handler: Any) -> bool:
    return callable(getattr(handler, "run", None))


class LambdaEndpoint:
    """Lambda's ``Invoke`` for the registered functions, served on 127.0.0.1 (threaded)."""

    def __init__(self, entries: dict[str, Entry], backend: str = "asyncio") -> None:
        self.backend = backend
        self.functions: dict[str, Function] = {}
        for requirement_id, entry in entries.items():
            self.functions[execution_function(requirement_id)] = Function(
                requirement_id, entry.handler, True
            )
            for name, function in entry.functions.items():
                self.functions[target_function(requirement_id, name)] = Function(
                    requirement_id, function, _is_durable(function)
                )
        self.sinks: dict[str, list[str]] = {}
        self.errors: dict[str, list[str]] = {}
        self.crashes: dict[str, int] = {}
        self.portal: BlockingPortal | None = None
        self.client: Any = None
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers, payload = endpoint.invoke(self.path, body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def function_configs(self) -> dict[str, Any]:
        """``--function-configs``: every invoke target, durable ones with a DurableConfig."""
        return {
            name: (
                {
                    "DurableConfig": {
                        "ExecutionTimeout": EXECUTION_TIMEOUT,
                        "RetentionPeriodInDays": 1,
                    }
                }
                if function.durable
                else {}
            )
            for name, function in self.functions.items()
            if "--" in name
        }

    def invoke(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        match = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations(\?.*)?", path)
        if match is None:
            return 404, {"x-amzn-ErrorType": "UnknownOperationException"}, b"{}"
        identifier = urllib.parse.unquote(match.group(1))
        name, _, qualifier = identifier.partition(":")
        function = self.functions.get(name)
        if function is None:
            error = {"Type": "User", "message": f"Function not found: {identifier}"}
            return (
                404,
                {"x-amzn-ErrorType": "ResourceNotFoundException"},
                json.dumps(error).encode(),
            )
        request_id = str(uuid.uuid4())
        context = LambdaContext(
            aws_request_id=request_id,
            function_name=name,
            function_version=qualifier or "$LATEST",
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{identifier}",
        )
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": request_id,
            "X-Amz-Executed-Version": "$LATEST",
        }
        sink = self.sinks.setdefault(function.requirement_id, [])
        requirement_id = function.requirement_id

        def resolve(target: str) -> str:
            return f"{target_function(requirement_id, target)}:$LATEST"

        async def run() -> Any:
            # Per invocation task: invoke targets of this requirement, its log lines.
            if function is not self.functions.get(execution_function(requirement_id)):
                # A chained target is another Lambda function: its invocation never returns
                # within the few milliseconds the caller's own invocation takes to end.
                await anyio.sleep(TARGET_LATENCY)
            TARGETS.set(resolve)
            _SINK.set(sink)
            event = json.loads(body) if body else None
            try:
                if function.durable:
                    return await function.handler.run(event, context, client=self.client)
                return await call_plain(function.handler, event, context)
            except BaseException as exc:
                # sys.exit ends the runtime process, never the event loop shared by all.
                if exit_status(exc) is not None:
                    return _Exited(exc)
                raise

        assert self.portal is not None
        try:
            output = self.portal.call(run)
            if isinstance(output, _Exited):
                raise output.exc
        except BaseException as exc:
            status = exit_status(exc)
            if status is None and not isinstance(exc, Exception):
                raise
            self.errors.setdefault(requirement_id, []).append(
                f"{identifier}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"
            )
            headers["X-Amz-Function-Error"] = "Unhandled"
            if status is not None:  # sys.exit: the runtime process ends (Lambda's report)
                self.crashes[requirement_id] = self.crashes.get(requirement_id, 0) + 1
                message = (
                    f"RequestId: {request_id} Error: Runtime exited with error: "
                    f"exit status {status}"
                )
                return 200, headers, function_error_payload(CRASH_ERROR_TYPE, message)
            return 200, headers, exception_payload(exc)
        return 200, headers, json.dumps(output).encode()

    @contextlib.contextmanager
    def serving(self, emulator_url: str) -> Iterator[None]:
        """Run the handlers on one long-lived event loop (a warm Lambda runtime's), with one
        aiobotocore client made like adurable's own, pointed at the emulator."""
        with anyio.from_thread.start_blocking_portal(self.backend) as portal:
            self.portal = portal
            with portal.wrap_async_context_manager(self._client(emulator_url)) as client:
                self.client = client
                self.thread.start()
                try:
                    yield
                finally:
                    self.server.shutdown()
                    self.server.server_close()

    @contextlib.asynccontextmanager
    async def _client(self, emulator_url: str) -> AsyncIterator[Any]:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        from adurable._service import lambda_client_config

        config = lambda_client_config(backend=self.backend).merge(
            AioConfig(max_pool_connections=100)
        )
        session = get_session()
        session.set_default_client_config(config)
        async with session.create_client(
            "lambda",
            region_name=REGION,
            endpoint_url=emulator_url,
            aws_access_key_id=_DUMMY_KEY,
            aws_secret_access_key=_DUMMY_KEY,
            config=config,
        ) as client:
            yield client


# -- the polling driver --------------------------------------------------------------------------


def _boto_client(url: str) -> Any:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=_DUMMY_KEY,
        aws_secret_access_key=_DUMMY_KEY,
        config=Config(retries={"max_attempts": 2}, read_timeout=60),
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _history(client: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        kwargs: dict[str, Any] = {"DurableExecutionArn": arn, "IncludeExecutionData": True}
        if marker:
            kwargs["Marker"] = marker
        page = client.get_durable_execution_history(**kwargs)
        events.extend(page.get("Events") or [])
        marker = page.get("NextMarker")
        if not marker:
            return events


def _start(url: str, function_name: str, payload: str, requirement_id: str) -> str:
    request = {
        "AccountId": ACCOUNT,
        "FunctionName": function_name,
        "FunctionQualifier": "$LATEST",
        "ExecutionName": f"{requirement_id}-{uuid.uuid4().hex[:12]}",
        "ExecutionTimeoutSeconds": EXECUTION_TIMEOUT,
        "ExecutionRetentionPeriodDays": 1,
        "InvocationId": str(uuid.uuid4()),
        "Input": payload,
    }
    http_request = urllib.request.Request(
        f"{url}/start-durable-execution",
        data=json.dumps(request).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(http_request, timeout=30) as response:
        return str(json.loads(response.read())["ExecutionArn"])


def _send(client: Any, callback_id: str, operation: str, payload: Any) -> None:
    if operation == "success":
        body = b"" if payload is None else json.dumps(payload).encode()
        client.send_durable_execution_callback_success(CallbackId=callback_id, Result=body)
    elif operation == "failure":
        error = {
            key: payload[key]
            for key in ("ErrorType", "ErrorMessage", "ErrorData", "StackTrace")
            if isinstance(payload, dict) and key in payload
        }
        client.send_durable_execution_callback_failure(CallbackId=callback_id, Error=error)
    else:
        client.send_durable_execution_callback_heartbeat(CallbackId=callback_id)


@dataclass
class EmulatorOutcome(Outcome):
    status: str | None = None
    seconds: float = 0.0
    stopped_by: str = ""
    arn: str = ""
    #: Invocations that ended the runtime process (``sys.exit``).
    crashes: int = 0


def drive(
    url: str,
    endpoint: LambdaEndpoint,
    spec: dict[str, Any],
    requirement_id: str,
    bindings: Bindings,
) -> EmulatorOutcome:
    """Run one requirement on the emulator the way the suite's polling runner does."""
    began = time.monotonic()
    client = _boto_client(url)
    sink = endpoint.sinks.setdefault(requirement_id, [])
    actions = parse_actions(spec)
    used: set[int] = set()
    handled: set[str] = set()
    errors: list[str] = []
    payload = json.dumps(bindings.substitute(spec.get("Input")))
    arn = _start(url, execution_function(requirement_id), payload, requirement_id)
    events: list[dict[str, Any]] = []
    last_count, last_progress = 0, time.monotonic()
    status: str | None = None
    stopped_by = "terminal"
    while True:
        time.sleep(POLL_INTERVAL)
        events = _history(client, arn)
        status = client.get_durable_execution(DurableExecutionArn=arn).get("Status")
        if status in TERMINAL:
            events = _history(client, arn)
            break
        now = time.monotonic()
        if len(events) > last_count:
            last_count, last_progress = len(events), now
        elif now - last_progress >= NO_PROGRESS_TIMEOUT:
            stopped_by = f"no new event for {NO_PROGRESS_TIMEOUT:.0f}s (status {status})"
            break
        if now - began >= REQUIREMENT_CAP:
            stopped_by = f"cap of {REQUIREMENT_CAP:.0f}s reached (status {status})"
            break
        for event in events:
            if event.get("EventType") != "CallbackStarted":
                continue
            callback_id = (event.get("CallbackStartedDetails") or {}).get("CallbackId")
            if not callback_id or callback_id in handled:
                continue
            name = event.get("Name", "")
            index = next(
                (
                    i
                    for i, action in enumerate(actions)
                    if i not in used and name_matches(str(bindings.substitute(action.name)), name)
                ),
                None,
            )
            if index is None:
                if actions:
                    errors.append(f"no CallbackAction for callback {name!r} ({callback_id})")
                handled.add(callback_id)
                continue
            used.add(index)
            action = actions[index]
            if action.operation != "heartbeat":
                handled.add(callback_id)
            if action.delay > 0:
                time.sleep(action.delay)
            try:
                _send(client, callback_id, action.operation, bindings.substitute(action.payload))
            except Exception as exc:
                errors.append(f"callback {action.operation} for {callback_id} refused: {exc}")
    execution = _jsonable(client.get_durable_execution(DurableExecutionArn=arn))
    execution.pop("ResponseMetadata", None)
    notes = [f"invocation error: {text}" for text in endpoint.errors.get(requirement_id, [])]
    if stopped_by != "terminal":
        notes.append(f"polling stopped: {stopped_by}")
    return EmulatorOutcome(
        _jsonable(events),
        execution,
        list(sink),
        errors,
        notes,
        status=status,
        seconds=time.monotonic() - began,
        stopped_by=stopped_by,
        arn=arn,
        crashes=endpoint.crashes.get(requirement_id, 0),
    )


@dataclass
class EmulatorResult:
    requirement_id: str
    passed: bool
    errors: list[str]
    outcome: EmulatorOutcome | None
    spec: dict[str, Any]
    #: The requirement's variables as generated for this run (before matching bound more).
    variables: dict[str, Any]


def run_all(
    requirements: dict[str, dict[str, Any]],
    entries: dict[str, Entry],
    check: Callable[..., list[str]],
    *,
    backend: str = "asyncio",
    workers: int = 16,
    progress: Callable[[EmulatorResult], None] | None = None,
) -> dict[str, EmulatorResult]:
    """Every requirement of ``requirements`` on one emulator, ``workers`` at a time."""
    runnable = {rid: entries[rid] for rid in requirements if rid in entries}
    results: dict[str, EmulatorResult] = {}
    for rid, spec in requirements.items():
        if rid not in runnable:
            results[rid] = EmulatorResult(rid, False, ["no handler registered"], None, spec, {})
    endpoint = LambdaEndpoint(runnable, backend)
    with (
        emulator_process(endpoint.url, endpoint.function_configs()) as url,
        endpoint.serving(url),
        routed_capture(),
    ):

        def one(rid: str) -> EmulatorResult:
            spec = requirements[rid]
            bindings = Bindings(spec.get("Variables"))
            variables = dict(bindings.values)
            try:
                outcome = drive(url, endpoint, spec, rid, bindings)
            except Exception as exc:
                error = f"driver error: {type(exc).__name__}: {exc}"
                result = EmulatorResult(rid, False, [error], None, spec, variables)
            else:
                problems = outcome.errors + check(
                    spec, outcome.events, outcome.execution, outcome.logs, bindings
                )
                result = EmulatorResult(rid, not problems, problems, outcome, spec, variables)
            if progress is not None:
                progress(result)
            return result

        # Not all at once: under load an invocation can outlast a 1 s wait, which reorders
        # the history (InvocationCompleted after WaitSucceeded) as the service never would.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(one, list(runnable)):
                results[result.requirement_id] = result
    return {rid: results[rid] for rid in requirements}


# -- the emulator's known gaps -------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """Something the emulator does not record as the service does, and how to discount it.

    ``relax`` rewrites a requirement's expected history so that it no longer asks for what the
    emulator lacks (only that); a failure is put down to known gaps when the requirement passes
    against the relaxed expectation, and to the gaps whose relaxation it needs.
    """

    key: str
    title: str
    relax: Callable[[list[dict[str, Any]], _Seen], list[dict[str, Any]]]


@dataclass
class _Seen:
    """What a relaxation may look at besides the expectation: the run's actual events by id
    and how many of its invocations crashed (``sys.exit``)."""

    events: dict[int, dict[str, Any]]
    crashes: int


def _drop(path: tuple[str, ...], event_type: str | None = None) -> Callable[..., Any]:
    """A relaxation removing the key at ``path`` (inside each expected event of the type)."""

    def relax(events: list[dict[str, Any]], seen: _Seen) -> list[dict[str, Any]]:
        for event in events:
            if event_type is not None and event.get("EventType") != event_type:
                continue
            node: Any = event
            for key in path[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(path[-1], None)
        return events

    return relax


def _drop_crash_records(events: list[dict[str, Any]], seen: _Seen) -> list[dict[str, Any]]:
    """The expected InvocationCompleted records of crashed invocations go, later EventIds
    close up. Crash records are those with an ``Error``; a requirement that writes them as
    ``{}`` loses its first InvocationCompleted records, one per crash the run saw."""
    completions = [e for e in events if e.get("EventType") == "InvocationCompleted"]
    crashes = [
        e
        for e in completions
        if isinstance(e.get("InvocationCompletedDetails"), dict)
        and "Error" in e["InvocationCompletedDetails"]
    ] or completions[: seen.crashes]
    kept: list[dict[str, Any]] = []
    removed = 0
    for event in events:
        if any(event is crash for crash in crashes):
            removed += 1
            continue
        if removed and isinstance(event.get("EventId"), int):
            event["EventId"] -= removed
        kept.append(event)
    return kept


def _drop_state_payload(events: list[dict[str, Any]], seen: _Seen) -> list[dict[str, Any]]:
    """wait_for_condition's intermediate states: the StepSucceeded records that are RETRYs
    (the emulator's own record of them carries RetryDetails)."""
    for event in events:
        details = event.get("StepSucceededDetails")
        actual = seen.events.get(event.get("EventId", -1), {})
        if (
            event.get("SubType") == "WaitForCondition"
            and isinstance(details, dict)
            and isinstance(details.get("Result"), dict)
            and "RetryDetails" in (actual.get("StepSucceededDetails") or {})
        ):
            details["Result"].pop("Payload", None)
    return events


#: In the order they are applied (crash records first: they are recognised by their details).
GAPS: tuple[Gap, ...] = (
    Gap(
        "crash-records",
        "no InvocationCompleted record for a crashed invocation (Runtime.ExitError)",
        _drop_crash_records,
    ),
    Gap(
        "invocation-completed-details",
        "InvocationCompleted events carry no InvocationCompletedDetails",
        _drop(("InvocationCompletedDetails",), "InvocationCompleted"),
    ),
    Gap(
        "retry-details",
        "no RetryDetails on StepSucceeded",
        _drop(("StepSucceededDetails", "RetryDetails")),
    ),
    Gap(
        "callback-timeouts",
        "no Timeout / HeartbeatTimeout in CallbackStartedDetails",
        lambda events, seen: _drop(("CallbackStartedDetails", "HeartbeatTimeout"))(
            _drop(("CallbackStartedDetails", "Timeout"))(events, seen), seen
        ),
    ),
    Gap(
        "executed-version",
        "no ExecutedVersion in ChainedInvokeStartedDetails",
        _drop(("ChainedInvokeStartedDetails", "ExecutedVersion")),
    ),
    Gap(
        "tenant-id",
        "no TenantId in ChainedInvokeStartedDetails",
        _drop(("ChainedInvokeStartedDetails", "TenantId")),
    ),
    Gap(
        "wait-for-condition-state",
        "no state payload on wait_for_condition's intermediate StepSucceeded records",
        _drop_state_payload,
    ),
)


def _relaxed(spec: dict[str, Any], gaps: list[Gap], seen: _Seen) -> dict[str, Any]:
    relaxed: dict[str, Any] = json.loads(json.dumps(spec, default=str))
    events = relaxed.get("ExpectedExecutionHistory") or []
    for gap in gaps:
        events = gap.relax(events, seen)
    relaxed["ExpectedExecutionHistory"] = events
    return relaxed


def classify(
    result: EmulatorResult, check: Callable[..., list[str]]
) -> tuple[list[Gap], list[str]]:
    """For a failed requirement: the known gaps it needs, and the errors no gap explains.

    ``([], errors)`` when even the fully relaxed expectation fails (``errors`` are then those of
    the relaxed match) or there is no outcome to look at.
    """
    outcome = result.outcome
    if outcome is None:
        return [], list(result.errors)

    seen = _Seen({e["EventId"]: e for e in outcome.events if "EventId" in e}, outcome.crashes)

    def errors_with(gaps: list[Gap]) -> list[str]:
        bindings = Bindings()
        bindings.values = dict(result.variables)
        relaxed = _relaxed(result.spec, gaps, seen)
        return outcome.errors + check(
            relaxed, outcome.events, outcome.execution, outcome.logs, bindings
        )

    remaining = errors_with(list(GAPS))
    if remaining:
        return [], remaining
    needed = [gap for gap in GAPS if errors_with([g for g in GAPS if g is not gap])]
    return needed, []
