"""A server over a SQLite store: blocking store calls leave the event loop, and a new server on
the same file picks up where a stopped one left off."""

from __future__ import annotations

import json
import queue
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from tests.server.conftest import Threaded, next_callback_id
from tests.server.workflows import make_functions

from adurable.local import LocalEngine, SqliteStore, VirtualClock
from adurable.local._server import DurableServer

pytestmark = pytest.mark.anyio


def sqlite_engine(path: Path, callback_ids: queue.Queue[str]) -> LocalEngine:
    engine = LocalEngine(store=SqliteStore(str(path)), clock=VirtualClock())
    for name, handler in make_functions(callback_ids).items():
        engine.register(name, handler)
    return engine


def client(url: str) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
    )


async def test_a_restarted_server_completes_a_waiting_callback(
    tmp_path: Path, callback_ids: queue.Queue[str]
) -> None:
    db = tmp_path / "executions.db"
    first = sqlite_engine(db, callback_ids)
    async with DurableServer(first) as server:
        lam = Threaded(client(server.url))
        started = await lam.invoke(
            FunctionName="approval:$LATEST", InvocationType="Event", Payload=b"{}"
        )
        arn = started["DurableExecutionArn"]
        callback_id = await next_callback_id(callback_ids)
        lam.client.close()
    first.close()

    second = sqlite_engine(db, callback_ids)
    async with DurableServer(second) as server:
        lam = Threaded(client(server.url))
        waiting = await lam.get_durable_execution(DurableExecutionArn=arn)
        assert waiting["Status"] == "RUNNING"
        await lam.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"OK"')
        await second.wait_until_done(arn)
        done = await lam.get_durable_execution(DurableExecutionArn=arn)
        assert done["Status"] == "SUCCEEDED"
        assert json.loads(done["Result"]) == {"answer": '"OK"'}
        lam.client.close()
    second.close()
