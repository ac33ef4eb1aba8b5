"""The AWS CLI (a subprocess, only ``--endpoint-url`` added) against the local server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from adurable.local._server import DurableServer

pytestmark = pytest.mark.anyio


def _aws() -> str | None:
    local = Path(sys.executable).parent / "aws"
    return str(local) if local.exists() else shutil.which("aws")


AWS = _aws()


@pytest.fixture
def aws(server: DurableServer) -> Any:
    if AWS is None:
        pytest.skip("the AWS CLI is not installed")

    async def run(*args: str) -> Any:
        command = [AWS, "lambda", *args, "--endpoint-url", server.url, "--region", "us-east-1"]
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                command, capture_output=True, text=True, timeout=120, env=dict(os.environ)
            )
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    return run


async def test_aws_lambda_invoke_and_history(aws: Any, tmp_path: Path) -> None:
    # AWS CLI v1 sends a blob parameter's text as is (v2 would need --cli-binary-format).
    out = tmp_path / "out.json"
    response = await aws(
        "invoke",
        "--function-name",
        "greet:$LATEST",
        "--payload",
        '{"name": "cli"}',
        str(out),
    )
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert json.loads(out.read_text()) == {"greeting": "hello cli"}
    arn = response["DurableExecutionArn"]

    execution = await aws("get-durable-execution", "--durable-execution-arn", arn)
    assert execution["Status"] == "SUCCEEDED"
    history = await aws("get-durable-execution-history", "--durable-execution-arn", arn)
    assert [e["EventType"] for e in history["Events"]][:2] == ["ExecutionStarted", "StepStarted"]
    listed = await aws("list-durable-executions-by-function", "--function-name", "greet")
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [arn]
