"""``adurable run``: the embedded engine from the command line (subprocess and in-process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adurable._cli import main

REPO = Path(__file__).resolve().parents[2]
APPS = "tests/cli/apps.py"
ORDER = json.dumps({"order_id": "o-42", "items": [{"sku": "tea", "price": 4, "qty": 3}]})


def adurable(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adurable", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_an_example_prints_history_and_result() -> None:
    done = adurable("run", "examples/order_workflow.py:handler", "--input", ORDER)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    header = out.splitlines()[0].split()
    assert header == ["#", "TIME", "EVENT", "OPERATION", "DETAILS"]
    for expected in ("ExecutionStarted", "StepFailed", "WaitStarted", "ContextSucceeded"):
        assert expected in out
    assert "fraud-check-window" in out
    assert "Status     SUCCEEDED (3 invocations, 10m" in out  # the wait took virtual time
    result_line = next(line for line in out.splitlines() if line.startswith("Result "))
    assert json.loads(result_line.removeprefix("Result")) == {
        "order": {"order_id": "o-42", "total": 12},
        "reservation": "rsv-o-42",
        "charge": "ch-o-42",
    }
    progress = [line.split(" done at ")[0] for line in done.stderr.splitlines()]
    assert progress == [f"adurable: invocation {n}" for n in (1, 2, 3)]


def test_run_a_dotted_module_on_trio_with_a_database(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    done = adurable(
        "run",
        "examples.order_workflow:handler",
        "--input",
        ORDER,
        "--backend",
        "trio",
        "--db",
        str(db),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "Status     SUCCEEDED" in done.stdout
    assert db.exists()


def test_a_bad_target_is_one_line_and_exit_code_2() -> None:
    done = adurable("run", "examples/order_workflow.py:no_such_handler")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "adurable: error: 'examples/order_workflow.py' has no attribute 'no_such_handler'"
    ]
    assert "Traceback" not in done.stderr


# -- in-process ---------------------------------------------------------------------------------


def test_a_failed_execution_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{APPS}:fails", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "Status     FAILED" in out
    assert "Error      " in out
    assert "the order is invalid" in out


def test_an_execution_waiting_for_a_callback_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{APPS}:approval", "--input", "{}", "--quiet"]) == 3
    out = capsys.readouterr().out
    assert "Status     RUNNING" in out
    assert "Waiting    for callback " in out
    assert "CallbackStarted" in out


def test_json_history(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{APPS}:greet", "--input", '{"name": "x"}', "--json", "--quiet"]) == 0
    out = capsys.readouterr().out
    events_text = out.split("\n\n")[0]
    events = json.loads(events_text)
    assert events[0]["EventType"] == "ExecutionStarted"
    assert events[-1]["EventType"] == "ExecutionSucceeded"
    assert "Status     SUCCEEDED (2 invocations, 2h of virtual time)" in out


def test_a_plain_function_prints_its_response(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{APPS}:plain", "--input", '{"a": 1}']) == 0
    assert json.loads(capsys.readouterr().out) == {"echo": {"a": 1}}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "examples/order_workflow.py"], "expected MODULE:HANDLER"),
        (["run", f"{APPS}:greet", "--input", "{nope"], "--input is not valid JSON"),
        (["run", "no_such_module_anywhere:handler"], "cannot import 'no_such_module_anywhere'"),
        (["run", "tests/cli/missing.py:handler"], "no such file: tests/cli/missing.py"),
        (["run", f"{APPS}:ORDER"], "has no attribute 'ORDER'"),
        (["run", f"{APPS}:greet", "--backend", "curio"], "invalid choice: 'curio'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("adurable: error: ")
    assert message in line
    assert captured.out == ""


def test_an_import_error_inside_the_module_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken_app.py"
    broken.write_text("import json\nraise RuntimeError('config missing')\n")
    assert main(["run", f"{broken}:handler"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"adurable: error: error while importing '{broken}': RuntimeError: config missing"
    )


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    assert "MODULE:HANDLER" in capsys.readouterr().out


def test_real_time_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{APPS}:fails", "--real-time"]) == 1
    captured = capsys.readouterr()
    assert "of real time" in captured.out or "Status     FAILED (1 invocation)" in captured.out
    assert captured.err.startswith("adurable: invocation 1 done at +")
