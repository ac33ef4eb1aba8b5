"""``adurable serve`` and the client commands (invoke, executions, history, callback, stop)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from tests.cli import apps

from adurable._cli import main
from adurable.local import LocalEngine, VirtualClock
from adurable.local._server import DurableServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(no_aws_host: None) -> None:
    """No credentials, profile or region from the host: the CLI must cope on its own."""


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- one real `adurable serve` process -----------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adurable",
            "serve",
            "--port",
            "0",
            "--virtual-time",
            "tests/cli/apps.py:approval",
            "tests/cli/apps.py:greet=hello",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            line = pool.submit(process.stdout.readline).result(timeout=60)
        assert line.startswith("Listening on http://127.0.0.1:"), line
        yield process, line.split()[-1]
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_serve_round_trip(
    served: tuple[subprocess.Popen[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    process, url = served
    endpoint = ("--endpoint-url", url)

    code, out, _ = cli(capsys, "invoke", "hello", "--input", '{"name": "cli"}', *endpoint)
    assert (code, json.loads(out)) == (0, {"greeting": "hello cli"})

    code, _, err = cli(
        capsys, "invoke", "approval", "--input", "{}", "--event", "--name", "a1", *endpoint
    )
    assert code == 0
    arn = err.split()[-1]
    assert "/durable-execution/a1/" in arn

    code, out, _ = cli(capsys, "executions", "approval", "--status", "RUNNING", *endpoint)
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "STARTED", "ENDED", "ARN"]
    assert out.splitlines()[1].split()[:2] == ["a1", "RUNNING"]
    assert out.splitlines()[1].split()[-1] == arn

    # An Event invoke returns before the first invocation ran: ask again until it has (HTTP
    # round trips only, no sleeping).
    for _ in range(500):
        code, out, _ = cli(capsys, "history", arn, *endpoint)
        if "CallbackStarted" in out:
            break
    started = next(line for line in out.splitlines() if "CallbackStarted" in line)
    callback_id = started.split("callback ")[-1]
    assert cli(capsys, "callback", "heartbeat", callback_id, *endpoint)[0] == 0
    assert cli(capsys, "callback", "succeed", callback_id, "--result", '"YES"', *endpoint)[0] == 0

    # Invoking the same name again (same input) waits for that execution's result.
    code, out, _ = cli(capsys, "invoke", "approval", "--input", "{}", "--name", "a1", *endpoint)
    assert (code, json.loads(out)) == (0, {"answer": '"YES"'})
    code, out, _ = cli(capsys, "history", arn, "--json", *endpoint)
    types = [event["EventType"] for event in json.loads(out)]
    assert types[-3:] == ["ContextSucceeded", "InvocationCompleted", "ExecutionSucceeded"]
    assert "CallbackSucceeded" in types

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert process.stderr is not None
    log = process.stderr.read()
    assert "adurable: serving approval, hello (virtual time, store: memory)" in log
    assert "/succeed -> 200" in log
    assert "adurable: shutting down" in log


# -- client commands in-process, against an in-process server -----------------------------------


@dataclasses.dataclass
class InProcessServer:
    url: str
    #: Block until the execution has settled (ended, or waits on the outside world): an Event
    #: invoke returns before the first invocation has run.
    settle: Callable[[str], None]


@pytest.fixture(params=["asyncio", "trio"])
def in_process(request: pytest.FixtureRequest) -> Iterator[InProcessServer]:
    engine = LocalEngine(clock=VirtualClock())
    engine.register("approval", apps.approval)
    engine.register("fails", apps.fails)
    with (
        start_blocking_portal(request.param) as portal,
        portal.wrap_async_context_manager(DurableServer(engine)) as server,
    ):
        yield InProcessServer(server.url, lambda arn: portal.call(engine.wait_until_done, arn))


@pytest.fixture
def server_url(in_process: InProcessServer) -> str:
    return in_process.url


def _start_approval(
    capsys: pytest.CaptureFixture[str], served: InProcessServer, name: str
) -> tuple[str, str]:
    """Start an approval execution; its ARN and callback id once it waits for the callback."""
    url = served.url
    code, _, err = cli(
        capsys, "invoke", "approval:$LATEST", "--event", "--name", name, "--endpoint-url", url
    )
    assert code == 0, err
    arn = err.split()[-1]
    served.settle(arn)
    _, out, _ = cli(capsys, "history", arn, "--json", "--endpoint-url", url)
    events: list[dict[str, Any]] = json.loads(out)
    started = next(e for e in events if e["EventType"] == "CallbackStarted")
    return arn, started["CallbackStartedDetails"]["CallbackId"]


def test_callback_failure_and_stop(
    in_process: InProcessServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ("--endpoint-url", in_process.url)
    _, callback_id = _start_approval(capsys, in_process, "to-fail")
    code, _, err = cli(
        capsys,
        "callback",
        "fail",
        callback_id,
        "--error-type",
        "Denied",
        "--error-message",
        "no",
        "--error-data",
        '{"why": 1}',
        *url,
    )
    assert (code, err.strip()) == (0, f"callback {callback_id} failed")

    arn2, _ = _start_approval(capsys, in_process, "to-stop")
    code, _, err = cli(capsys, "stop", arn2, "--error-message", "enough", *url)
    assert code == 0
    assert err.startswith("stopped at ")
    code, out, _ = cli(capsys, "executions", "approval", "--status", "STOPPED", *url)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["to-stop"]
    code, out, _ = cli(capsys, "history", arn2, *url)
    assert "ExecutionStopped" in out
    assert "enough" in out


def test_invoking_a_failing_function_exits_1(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "invoke", "fails", "--endpoint-url", server_url)
    assert code == 1
    assert json.loads(out)["errorMessage"] == "the order is invalid"


def test_no_executions(server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "executions", "fails", "--endpoint-url", server_url)
    assert (code, out, err) == (0, "", "no executions of fails\n")


UNKNOWN_ARN = (
    "arn:aws:lambda:us-east-1:123456789012:function:approval:$LATEST/durable-execution/x/y"
)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", UNKNOWN_ARN], "ResourceNotFoundException: "),
        (["history", "not-an-arn"], "InvalidParameterValueException: "),
        (["stop", UNKNOWN_ARN], "ResourceNotFoundException: "),
        (["callback", "succeed", "QUFBQQ==", "--result", "1"], "ResourceNotFoundException: "),
        (["callback", "succeed", "QUFBQQ==", "--result", "{no"], "--result is not valid JSON"),
        (["callback", "heartbeat", "bad id!"], "InvalidParameterValueException: "),
        (["executions", "nope"], "ResourceNotFoundException: "),
        (["invoke", "nope"], "ResourceNotFoundException: "),
        (["invoke", "approval", "--input", "[1,"], "--input is not valid JSON"),
    ],
)
def test_client_errors_are_one_line(
    server_url: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, *argv, "--endpoint-url", server_url)
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"adurable: error: {message}")
    assert out == ""


def test_no_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = cli(capsys, "history", UNKNOWN_ARN, "--endpoint-url", f"http://127.0.0.1:{port}")
    assert code == 2
    assert err == (
        f"adurable: error: cannot connect to http://127.0.0.1:{port} "
        "(is 'adurable serve' running?)\n"
    )


def test_serve_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = cli(capsys, "serve", "--port", str(port), "tests/cli/apps.py:greet")
    assert code == 2
    assert err.startswith(f"adurable: error: cannot listen on 127.0.0.1:{port}: ")
    assert len(err.splitlines()) == 1
    code, _, err = cli(capsys, "serve", "tests/cli/apps.py:greet", "tests/cli/apps.py:fails=greet")
    assert (code, err) == (
        2,
        "adurable: error: function name 'greet' is given twice (use MODULE:HANDLER=NAME)\n",
    )
    code, _, err = cli(capsys, "serve", "tests/cli/apps.py:greet=bad name")
    assert code == 2
    assert "invalid function name 'bad name'" in err


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_python_dash_m_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adurable", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.startswith("adurable ")
