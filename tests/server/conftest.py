"""Fixtures of the server tests: an engine with the test workflows, the server, real clients."""

from __future__ import annotations

import functools
import queue
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import anyio.to_thread
import pytest
from tests.server.workflows import make_functions

from adurable.local import LocalEngine, VirtualClock
from adurable.local._server import DurableServer


@pytest.fixture(autouse=True)
def _isolated(aws_env: None) -> None:
    """Dummy credentials, nothing from the host (see tests/conftest.py)."""


@pytest.fixture
def callback_ids() -> queue.Queue[str]:
    return queue.Queue()


@pytest.fixture
def engine(callback_ids: queue.Queue[str]) -> LocalEngine:
    engine = LocalEngine(clock=VirtualClock())
    for name, handler in make_functions(callback_ids).items():
        engine.register(name, handler)
    return engine


@pytest.fixture
async def server(engine: Any) -> AsyncIterator[DurableServer]:
    async with DurableServer(engine) as running:
        yield running


class Threaded:
    """A sync (boto3/botocore) client whose methods run in a worker thread: ``await c.invoke()``.

    ``invoke`` answers with ``Payload`` already read (bytes), which hands the connection back.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        method = getattr(self.client, name)

        async def call(**kwargs: Any) -> Any:
            return await anyio.to_thread.run_sync(functools.partial(method, **kwargs))

        return call

    async def invoke(self, **kwargs: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            response = dict(self.client.invoke(**kwargs))
            response["Payload"] = response["Payload"].read()
            return response

        return await anyio.to_thread.run_sync(run)


@functools.cache
def boto3_session() -> Any:
    """One boto3 session for the whole run: it loads the Lambda service model once."""
    import boto3

    return boto3.session.Session()


@pytest.fixture
def boto3_lambda(server: DurableServer) -> Iterator[Threaded]:
    from botocore.config import Config

    client = boto3_session().client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=60),
    )
    yield Threaded(client)
    client.close()


async def next_callback_id(callback_ids: queue.Queue[str]) -> str:
    """The next callback id a workflow handed out (blocks a worker thread, not the loop)."""
    return await anyio.to_thread.run_sync(functools.partial(callback_ids.get, timeout=30))
