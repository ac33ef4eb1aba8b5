"""The ``adurable`` command: run durable handlers locally, serve them over HTTP, inspect them.

    adurable run examples/order_workflow.py:handler --input '{"order_id": "o-1", ...}'
    adurable serve --port 8910 examples/human_approval.py:handler=approvals
    adurable invoke approvals --input '{"service": "billing"}' --event
    adurable executions approvals --status RUNNING
    adurable history ARN
    adurable callback succeed CALLBACK_ID --result '"APPROVED"'
    adurable stop ARN

``run`` embeds a ``LocalEngine`` (virtual time unless ``--real-time``) and prints the result and
the execution history; ``serve`` runs ``adurable.local``'s HTTP server (the Lambda API on the real
paths; real time unless ``--virtual-time``); the other commands talk to a running server (or
anything speaking the Lambda API) with botocore. Errors are one line on stderr and exit code 2.
Only the standard library is needed beyond adurable's own dependencies; botocore (through
adurable's service module, the one place that knows it) is imported
by the client commands alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import anyio

if TYPE_CHECKING:
    from adurable.local import LocalEngine

__all__ = ("CliError", "build_parser", "load_target", "main", "render_history")

DEFAULT_PORT = 8910
DEFAULT_HOST = "127.0.0.1"
DEFAULT_ENDPOINT = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
#: Exit codes: success, execution failed, command error, execution still waiting.
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_WAITING = 0, 1, 2, 3

_FUNCTION_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_DETAILS_WIDTH = 72
_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED")


class CliError(Exception):
    """A problem reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a ``CliError`` (one line) instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see '{self.prog} --help')")


# -- entry point ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        command: Callable[[argparse.Namespace], int] = args.command
        return command(args)
    except CliError as exc:
        _fail(str(exc))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        _echo("adurable: interrupted", sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("ADURABLE_DEBUG"):
            raise
        _fail(f"{type(exc).__name__}: {exc} (set ADURABLE_DEBUG=1 for a traceback)")
    return EXIT_ERROR


def _echo(text: str, stream: TextIO | None = None) -> None:
    """Write one line to ``stream`` (default stdout) and flush it."""
    out = stream if stream is not None else sys.stdout
    out.write(f"{text}\n")
    out.flush()


def _fail(message: str) -> None:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    _echo(f"adurable: error: {first}", sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The ``adurable`` argument parser (one sub-command each)."""
    from adurable._version import __version__

    parser = _Parser(
        prog="adurable",
        description="Run, serve and inspect AWS Lambda durable functions locally.",
        epilog="Exit codes: 0 ok, 1 execution failed, 2 error, 3 execution still waiting.",
    )
    parser.add_argument("--version", action="version", version=f"adurable {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_run(commands)
    _add_serve(commands)
    _add_invoke(commands)
    _add_history(commands)
    _add_executions(commands)
    _add_callback(commands)
    _add_stop(commands)
    return parser


def _add_run(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run a handler to completion on an embedded engine",
        description="Start one execution of MODULE:HANDLER on an embedded local engine, drive "
        "it to the end and print its result and history. Virtual time by default: waits and "
        "retry delays cost nothing.",
    )
    run.add_argument("target", metavar="MODULE:HANDLER", help="dotted module or path to a .py")
    run.add_argument("--input", default=None, metavar="JSON", help="the event (JSON)")
    run.add_argument("--name", default=None, help="durable execution name (idempotency key)")
    run.add_argument("--real-time", action="store_true", help="wait for real (wall-clock) time")
    run.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    run.add_argument("--db", type=Path, default=None, help="SQLite file to keep executions in")
    run.add_argument("--json", action="store_true", help="print the history as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.set_defaults(command=_cmd_run)


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve handlers over the Lambda HTTP API",
        description="Serve functions over the Lambda durable-execution REST API and Invoke, for "
        "botocore, boto3, the AWS CLI and adurable's own client (--endpoint-url). Real time by "
        "default.",
    )
    serve.add_argument(
        "targets",
        nargs="+",
        metavar="MODULE:HANDLER[=NAME]",
        help="a handler to serve, as function NAME (default: the handler's name)",
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks one"
    )
    serve.add_argument("--db", type=Path, default=None, help="SQLite file to keep executions in")
    clock = serve.add_mutually_exclusive_group()
    clock.add_argument(
        "--real-time", dest="virtual", action="store_false", default=False, help="(default)"
    )
    clock.add_argument(
        "--virtual-time", dest="virtual", action="store_true", help="jump over waits"
    )
    serve.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    serve.add_argument("--quiet", action="store_true", help="do not log requests")
    serve.set_defaults(command=_cmd_serve)


def _client_parser(commands: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, **kwargs)
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("ADURABLE_ENDPOINT_URL", DEFAULT_ENDPOINT),
        help=f"the server (default: $ADURABLE_ENDPOINT_URL or {DEFAULT_ENDPOINT})",
    )
    parser.add_argument("--region", default=None, help="default: $AWS_REGION or us-east-1")
    return parser


def _add_invoke(commands: Any) -> None:
    invoke = _client_parser(commands, "invoke", help="invoke a function on a server")
    invoke.add_argument("function", metavar="FUNCTION", help="name[:qualifier] (default $LATEST)")
    invoke.add_argument("--input", default=None, metavar="JSON")
    invoke.add_argument("--event", action="store_true", help="asynchronous (InvocationType Event)")
    invoke.add_argument("--name", default=None, help="durable execution name")
    invoke.set_defaults(command=_cmd_invoke)


def _add_history(commands: Any) -> None:
    history = _client_parser(commands, "history", help="print an execution's history")
    history.add_argument("arn", metavar="ARN")
    history.add_argument("--json", action="store_true", help="print the events as JSON")
    history.set_defaults(command=_cmd_history)


def _add_executions(commands: Any) -> None:
    executions = _client_parser(commands, "executions", help="list a function's executions")
    executions.add_argument("function", metavar="FUNCTION")
    executions.add_argument(
        "--status", action="append", choices=_STATUSES, help="only these (repeatable)"
    )
    executions.set_defaults(command=_cmd_executions)


def _add_callback(commands: Any) -> None:
    callback = commands.add_parser("callback", help="complete or heartbeat a callback")
    actions = callback.add_subparsers(title="actions", metavar="ACTION", required=True)
    succeed = _client_parser(actions, "succeed", help="SendDurableExecutionCallbackSuccess")
    succeed.add_argument("callback_id", metavar="CALLBACK_ID")
    succeed.add_argument("--result", default=None, metavar="JSON", help="the result (JSON)")
    succeed.set_defaults(command=_cmd_callback_succeed)
    fail = _client_parser(actions, "fail", help="SendDurableExecutionCallbackFailure")
    fail.add_argument("callback_id", metavar="CALLBACK_ID")
    _add_error_options(fail)
    fail.set_defaults(command=_cmd_callback_fail)
    heartbeat = _client_parser(actions, "heartbeat", help="SendDurableExecutionCallbackHeartbeat")
    heartbeat.add_argument("callback_id", metavar="CALLBACK_ID")
    heartbeat.set_defaults(command=_cmd_callback_heartbeat)


def _add_stop(commands: Any) -> None:
    stop = _client_parser(commands, "stop", help="stop a running execution")
    stop.add_argument("arn", metavar="ARN")
    _add_error_options(stop)
    stop.set_defaults(command=_cmd_stop)


def _add_error_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--error-type", default=None, metavar="T")
    parser.add_argument("--error-message", default=None, metavar="M")
    parser.add_argument("--error-data", default=None, metavar="D")


# -- loading handlers -------------------------------------------------------------------------


def load_target(spec: str) -> tuple[str, Any]:
    """``(function name, handler)`` of ``MODULE:HANDLER[=NAME]``.

    MODULE is a dotted module name (importable from the current directory) or a path to a
    ``.py`` file; HANDLER an attribute path in it. The function name is NAME, else the last
    part of HANDLER.
    """
    target, _, name = spec.partition("=")
    module_part, sep, attribute = target.rpartition(":")
    if not sep or not module_part or not attribute:
        raise CliError(f"expected MODULE:HANDLER, got {spec!r}")
    handler: Any = _import(module_part)
    for part in attribute.split("."):
        try:
            handler = getattr(handler, part)
        except AttributeError:
            raise CliError(f"{module_part!r} has no attribute {attribute!r}") from None
    if not callable(handler) and not callable(getattr(handler, "run", None)):
        raise CliError(f"{target} is not a handler (not callable)")
    function_name = name or attribute.rsplit(".", 1)[-1]
    if not _FUNCTION_NAME_RE.fullmatch(function_name):
        raise CliError(f"invalid function name {function_name!r}: use [a-zA-Z0-9_-]{{1,64}}")
    return function_name, handler


def _import(module: str) -> Any:
    is_path = module.endswith(".py") or os.sep in module or "/" in module
    try:
        return _import_path(Path(module)) if is_path else _import_module(module)
    except CliError:
        raise
    except ImportError as exc:
        raise CliError(f"cannot import {module!r}: {exc}") from None
    except Exception as exc:
        raise CliError(f"error while importing {module!r}: {type(exc).__name__}: {exc}") from None


def _import_module(name: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    return importlib.import_module(name)


def _import_path(path: Path) -> Any:
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    name = path.stem if path.stem.isidentifier() else "adurable_cli_target"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))  # its sibling modules import as usual
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _is_durable(handler: Any) -> bool:
    return callable(getattr(handler, "run", None))


def _payload(text: str | None, flag: str = "--input") -> bytes:
    """The JSON text of ``flag`` as bytes (empty when absent); invalid JSON is an error."""
    if text is None:
        return b""
    try:
        json.loads(text)
    except ValueError as exc:
        raise CliError(f"{flag} is not valid JSON: {exc}") from None
    return text.encode("utf-8")


# -- run --------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    payload = _payload(args.input)
    name, handler = load_target(args.target)
    runner = functools.partial(_run_embedded, args, name, handler, payload)
    outcome = _anyio_run(runner, args.backend)
    return _report_run(outcome, as_json=args.json)


def _anyio_run(func: Callable[[], Any], backend: str) -> Any:
    try:
        return anyio.run(func, backend=backend)
    except (ImportError, LookupError) as exc:
        if backend != "asyncio" and backend in str(exc):
            raise CliError(f"the {backend} backend is not installed: {exc}") from None
        raise


def _new_engine(db: Path | None, virtual: bool, *, record_calls: bool = True) -> LocalEngine:
    """An engine for ``run`` or ``serve``. ``record_calls``: keep every API call in memory (for
    inspection after a run); a server that runs for days must not."""
    from adurable.local import LocalEngine, RealClock, SqliteStore, VirtualClock

    clock: VirtualClock | RealClock = VirtualClock() if virtual else RealClock()
    try:
        store = SqliteStore(db) if db is not None else None
    except Exception as exc:
        raise CliError(f"cannot open {db}: {exc}") from None
    return LocalEngine(store=store, clock=clock, record_calls=record_calls)


@dataclass
class _RunOutcome:
    """What ``run`` has to report: the execution and its events, or a plain function's answer."""

    execution: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    invoke_payload: bytes = b""
    function_error: str | None = None
    virtual: bool = True


async def _run_embedded(
    args: argparse.Namespace, name: str, handler: Any, payload: bytes
) -> _RunOutcome:
    engine = _new_engine(args.db, virtual=not args.real_time)
    try:
        engine.register(name, handler)
        async with engine.running():
            if not _is_durable(handler):
                result = await engine.invoke(name, payload)
                return _RunOutcome(
                    invoke_payload=result.payload, function_error=result.function_error
                )
            return await _run_durable(engine, args, f"{name}:$LATEST", payload)
    finally:
        engine.close()


async def _run_durable(
    engine: LocalEngine, args: argparse.Namespace, function: str, payload: bytes
) -> _RunOutcome:
    started = await engine.invoke(
        function, payload, invocation_type="Event", execution_name=args.name
    )
    arn = started.durable_execution_arn
    if arn is None:  # pragma: no cover - a durable invoke always names its execution
        raise CliError(f"{function} did not start a durable execution")
    await _follow(engine, arn, quiet=args.quiet)
    return _RunOutcome(
        execution=engine.get_execution(arn),
        events=_all_events(engine, arn),
        virtual=not args.real_time,
    )


async def _follow(engine: Any, arn: str, *, quiet: bool) -> None:
    """Wait until ``arn`` is done or waits on the outside world; a line per invocation."""
    progress = _Progress(engine, arn, sys.stderr)
    async with anyio.create_task_group() as group:
        if not quiet:
            group.start_soon(progress.watch)
        await engine.wait_until_done(arn)
        group.cancel_scope.cancel()
    if not quiet:
        progress.flush()


class _Progress:
    """Prints one stderr line per finished invocation of one execution."""

    def __init__(self, engine: Any, arn: str, out: TextIO) -> None:
        self.engine = engine
        self.arn = arn
        self.out = out
        self.seen = 0
        self.invocations = 0
        self.start: dt.datetime | None = None

    async def watch(self) -> None:
        """Report as the scheduler makes progress (until cancelled)."""
        while True:
            changed = self.engine.scheduler.changed()
            self.flush()
            await changed.wait()

    def flush(self) -> None:
        """Report the invocations that ended since the last call."""
        events = _all_events(self.engine, self.arn)
        for event in events[self.seen :]:
            self.start = self.start or event.get("EventTimestamp")
            if event["EventType"] == "InvocationCompleted":
                self.invocations += 1
                _echo(self._line(event), self.out)
        self.seen = len(events)

    def _line(self, event: Mapping[str, Any]) -> str:
        at = _elapsed(_seconds_between(self.start, event.get("EventTimestamp")))
        line = f"adurable: invocation {self.invocations} done at {at}"
        error = event.get("InvocationCompletedDetails", {}).get("Error", {}).get("Payload")
        return line + (f" (failed: {_error_text(error)})" if error else "")


def _all_events(engine: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    marker = None
    while True:
        page = engine.get_history(arn, marker=marker)
        events.extend(page["Events"])
        marker = page.get("NextMarker")
        if not marker:
            return events


def _report_run(outcome: _RunOutcome, *, as_json: bool) -> int:
    out = sys.stdout
    if outcome.execution is None:  # a plain function
        _echo(outcome.invoke_payload.decode("utf-8", "replace"), out)
        return EXIT_FAILED if outcome.function_error else EXIT_OK
    if as_json:
        _echo(json.dumps(outcome.events, default=_json_default, indent=2), out)
    else:
        _echo(render_history(outcome.events), out)
    _echo("", out)
    _print_execution_summary(outcome.execution, outcome.events, outcome.virtual, out)
    status = outcome.execution.get("Status")
    if status == "SUCCEEDED":
        return EXIT_OK
    return EXIT_WAITING if status == "RUNNING" else EXIT_FAILED


def _print_execution_summary(
    execution: Mapping[str, Any], events: list[dict[str, Any]], virtual: bool, out: TextIO
) -> None:
    status = str(execution.get("Status"))
    invocations = sum(1 for e in events if e["EventType"] == "InvocationCompleted")
    span = _seconds_between(execution.get("StartTimestamp"), execution.get("EndTimestamp"))
    took = f", {_elapsed(span)[1:]} of {'virtual' if virtual else 'real'} time" if span else ""
    _echo(f"Execution  {execution.get('DurableExecutionArn')}", out)
    plural = "" if invocations == 1 else "s"
    _echo(f"Status     {status} ({invocations} invocation{plural}{took})", out)
    if "Result" in execution:
        _echo(f"Result     {execution['Result']}", out)
    if execution.get("Error"):
        _echo(f"Error      {_error_text(execution['Error'])}", out)
    if status == "RUNNING":
        waiting = _open_callbacks(events)
        what = f"callback {', '.join(waiting)}" if waiting else "the outside world"
        _echo(f"Waiting    for {what} (nothing else can happen in this process)", out)


def _open_callbacks(events: list[dict[str, Any]]) -> list[str]:
    started = {
        e["Id"]: e["CallbackStartedDetails"]["CallbackId"]
        for e in events
        if e["EventType"] == "CallbackStarted"
    }
    done = {
        e.get("Id")
        for e in events
        if e["EventType"].startswith("Callback") and e["EventType"] != "CallbackStarted"
    }
    return [callback_id for op_id, callback_id in started.items() if op_id not in done]


# -- serve ------------------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    functions = [load_target(spec) for spec in args.targets]
    names = [name for name, _ in functions]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise CliError(f"function name {duplicate!r} is given twice (use MODULE:HANDLER=NAME)")
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be within 0..65535, got {args.port}")
    _configure_request_log(args.quiet)
    _anyio_run(functools.partial(_serve, args, functions), args.backend)
    return EXIT_OK


def _configure_request_log(quiet: bool) -> None:
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("adurable: %(message)s"))
    logger = logging.getLogger("adurable.local")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


async def _serve(args: argparse.Namespace, functions: list[tuple[str, Any]]) -> None:
    from adurable.local._server import DurableServer

    engine = _new_engine(args.db, virtual=args.virtual, record_calls=False)
    try:
        for name, handler in functions:
            engine.register(name, handler)
        server = DurableServer(engine, host=args.host, port=args.port)
        try:
            await _serve_until_signalled(server, args, [name for name, _ in functions])
        except OSError as exc:
            message = exc.strerror or str(exc)
            raise CliError(f"cannot listen on {args.host}:{args.port}: {message}") from None
    finally:
        engine.close()


async def _serve_until_signalled(server: Any, args: argparse.Namespace, names: list[str]) -> None:
    async with server, anyio.create_task_group() as group:
        clock = "virtual" if args.virtual else "real"
        store = str(args.db) if args.db else "memory"
        _echo(f"adurable: serving {', '.join(names)} ({clock} time, store: {store})", sys.stderr)
        _echo(f"Listening on {server.url}")
        group.start_soon(_stop_on_signal, group.cancel_scope)


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    import signal

    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                _echo("adurable: shutting down", sys.stderr)
                scope.cancel()
                return
    except NotImplementedError:  # no signal receivers here (Windows): Ctrl-C still works
        await anyio.sleep_forever()


# -- client commands --------------------------------------------------------------------------


def _call(args: argparse.Namespace, method: str, **kwargs: Any) -> Any:
    """One API call through the service module; its errors become one-line ``CliError``s."""
    from adurable._service import LambdaApiError, call_lambda_api

    region = (
        args.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    )
    try:
        return call_lambda_api(method, endpoint_url=args.endpoint_url, region=region, **kwargs)
    except LambdaApiError as exc:
        if exc.unreachable:
            raise CliError(
                f"cannot connect to {args.endpoint_url} (is 'adurable serve' running?)"
            ) from None
        raise CliError(str(exc)) from None


def _pages(args: argparse.Namespace, method: str, key: str, **kwargs: Any) -> Iterator[Any]:
    marker = None
    while True:
        page = _call(args, method, **kwargs, **({"Marker": marker} if marker else {}))
        yield from page.get(key, [])
        marker = page.get("NextMarker")
        if not marker:
            return


def _cmd_invoke(args: argparse.Namespace) -> int:
    payload = _payload(args.input)
    function = args.function if ":" in args.function else f"{args.function}:$LATEST"
    kwargs: dict[str, Any] = {"FunctionName": function, "Payload": payload}
    if args.event:
        kwargs["InvocationType"] = "Event"
    if args.name:
        kwargs["DurableExecutionName"] = args.name
    response = _call(args, "invoke", **kwargs)
    body = response["Payload"].read().decode("utf-8", "replace")
    if response.get("DurableExecutionArn"):
        _echo(f"Execution  {response['DurableExecutionArn']}", sys.stderr)
    if body:
        _echo(body)
    return EXIT_FAILED if response.get("FunctionError") else EXIT_OK


def _cmd_history(args: argparse.Namespace) -> int:
    events = list(
        _pages(args, "get_durable_execution_history", "Events", DurableExecutionArn=args.arn)
    )
    if args.json:
        _echo(json.dumps(events, default=_json_default, indent=2))
    else:
        _echo(render_history(events))
    return EXIT_OK


def _cmd_executions(args: argparse.Namespace) -> int:
    kwargs: dict[str, Any] = {"FunctionName": args.function}
    if args.status:
        kwargs["Statuses"] = args.status
    rows = [
        (
            str(e.get("DurableExecutionName", "")),
            str(e.get("Status", "")),
            _clock_time(e.get("StartTimestamp")),
            _clock_time(e.get("EndTimestamp")),
            str(e.get("DurableExecutionArn", "")),
        )
        for e in _pages(args, "list_durable_executions_by_function", "DurableExecutions", **kwargs)
    ]
    if not rows:
        _echo(f"no executions of {args.function}", sys.stderr)
        return EXIT_OK
    _echo(_table(("NAME", "STATUS", "STARTED", "ENDED", "ARN"), rows))
    return EXIT_OK


def _cmd_callback_succeed(args: argparse.Namespace) -> int:
    result = _payload(args.result, "--result")
    _call(
        args, "send_durable_execution_callback_success", CallbackId=args.callback_id, Result=result
    )
    _echo(f"callback {args.callback_id} succeeded", sys.stderr)
    return EXIT_OK


def _cmd_callback_fail(args: argparse.Namespace) -> int:
    _call(
        args,
        "send_durable_execution_callback_failure",
        CallbackId=args.callback_id,
        Error=_error_object(args),
    )
    _echo(f"callback {args.callback_id} failed", sys.stderr)
    return EXIT_OK


def _cmd_callback_heartbeat(args: argparse.Namespace) -> int:
    _call(args, "send_durable_execution_callback_heartbeat", CallbackId=args.callback_id)
    _echo(f"callback {args.callback_id}: heartbeat sent", sys.stderr)
    return EXIT_OK


def _cmd_stop(args: argparse.Namespace) -> int:
    response = _call(
        args, "stop_durable_execution", DurableExecutionArn=args.arn, Error=_error_object(args)
    )
    _echo(f"stopped at {_clock_time(response.get('StopTimestamp'))}", sys.stderr)
    return EXIT_OK


def _error_object(args: argparse.Namespace) -> dict[str, str]:
    fields = {
        "ErrorType": args.error_type,
        "ErrorMessage": args.error_message,
        "ErrorData": args.error_data,
    }
    return {key: value for key, value in fields.items() if value is not None}


# -- rendering --------------------------------------------------------------------------------


def render_history(events: Sequence[Mapping[str, Any]]) -> str:
    """A readable table of history events (PROTOCOL §14): id, time since the start, event,
    operation name (indented under its parent context) and the event's details."""
    if not events:
        return "(no events)"
    start = events[0].get("EventTimestamp")
    depth: dict[str, int] = {}
    rows = []
    for event in events:
        op_id, parent = event.get("Id"), event.get("ParentId")
        if op_id is not None and op_id not in depth:
            depth[op_id] = depth.get(parent, -1) + 1 if parent else 0
        label = event.get("Name") or (str(op_id)[:12] if op_id else "")
        if event["EventType"].startswith("Execution"):
            label = ""
        indent = "  " * depth.get(op_id, 0) if op_id else ""
        rows.append(
            (
                str(event.get("EventId", "")),
                _elapsed(_seconds_between(start, event.get("EventTimestamp"))),
                str(event["EventType"]),
                indent + label,
                _details(event),
            )
        )
    return _table(("#", "TIME", "EVENT", "OPERATION", "DETAILS"), rows)


def _details(event: Mapping[str, Any]) -> str:
    event_type = str(event["EventType"])
    details: Mapping[str, Any] = event.get(f"{event_type}Details") or {}
    text = "; ".join(part for part in _detail_parts(event_type, details) if part)
    if event_type == "CallbackStarted":
        return text  # the whole callback id: it is what `adurable callback` needs
    return _shorten(text, _DETAILS_WIDTH)


def _detail_parts(event_type: str, details: Mapping[str, Any]) -> Iterator[str]:
    if "Input" in details:
        yield f"input {_data(details['Input'])}"
    if "Result" in details:
        yield f"result {_data(details['Result'])}"
    if "Error" in details:
        error = details["Error"]
        yield "error …" if error.get("Truncated") else _error_text(error.get("Payload"))
    if "Duration" in details:
        yield f"{'waited' if event_type == 'WaitSucceeded' else 'wait'} {details['Duration']}s"
    retry = details.get("RetryDetails") or {}
    if retry.get("CurrentAttempt") is not None:
        delay = retry.get("NextAttemptDelaySeconds")
        yield f"attempt {retry['CurrentAttempt']}" + (f", retry in {delay}s" if delay else "")
    for key, label in (("Timeout", "timeout"), ("HeartbeatTimeout", "heartbeat")):
        if details.get(key):
            yield f"{label} {details[key]}s"
    if "CallbackId" in details:
        yield f"callback {details['CallbackId']}"
    if "FunctionName" in details:
        yield f"-> {details['FunctionName']}"
    if event_type == "InvocationCompleted":
        span = _seconds_between(details.get("StartTimestamp"), details.get("EndTimestamp"))
        yield f"took {_elapsed(span)[1:]}"


def _data(member: Mapping[str, Any]) -> str:
    if member.get("Truncated"):
        return "…"
    payload = member.get("Payload")
    return "(none)" if payload is None else str(payload)


def _error_text(error: Any) -> str:
    if not isinstance(error, Mapping):
        return "(no details)"
    kind, message = error.get("ErrorType"), error.get("ErrorMessage")
    return ": ".join(str(part) for part in (kind, message) if part) or "(no details)"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    return None


def _seconds_between(start: Any, end: Any) -> float:
    first, last = _as_datetime(start), _as_datetime(end)
    if first is None or last is None:
        return 0.0
    return max(0.0, (last - first).total_seconds())


def _elapsed(seconds: float) -> str:
    """``+0.25s``, ``+42s``, ``+10m 2s``, ``+1h 0m 5s``, ``+2d 3h``."""
    if seconds < 60:
        text = f"{seconds:.3f}".rstrip("0").rstrip(".")
        return f"+{text}s"
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while parts[0][0] == 0:
        parts.pop(0)
    while parts[-1][0] == 0:
        parts.pop()
    return "+" + " ".join(f"{value}{unit}" for value, unit in parts)


def _clock_time(value: Any) -> str:
    moment = _as_datetime(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
