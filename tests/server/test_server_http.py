"""The HTTP/1.1 layer byte for byte: keep-alive, pipelining, chunked bodies, 100-continue."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from adurable.local._http import ConnectionLimits
from adurable.local._server import DurableServer

pytestmark = pytest.mark.anyio


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """A raw client connection to the server."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def read(self) -> Answer:
        with anyio.fail_after(10):
            head = await self.reader.receive_until(b"\r\n\r\n", 65536)
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
            body = await self.reader.receive_exactly(int(headers.get("content-length", "0")))
        return Answer(int(status_line.split(" ")[1]), headers, body)

    async def closed(self) -> bool:
        """Whether the server closed the connection (after everything was read)."""
        with anyio.fail_after(10):
            try:
                await self.reader.receive(1)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return True
        return False


@pytest.fixture
async def conn(server: DurableServer) -> AsyncIterator[Connection]:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        yield Connection(stream)


def get(path: str, *, headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()


def post(path: str, body: bytes, *, headers: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    return head.encode() + body


LIST_GREET = "/2025-12-01/functions/greet/durable-executions"
INVOKE_GREET = "/2015-03-31/functions/greet%3A%24LATEST/invocations"


async def test_keep_alive_and_pipelined_requests(conn: Connection) -> None:
    await conn.send(post(INVOKE_GREET, b'{"name": "pipe"}') + get(LIST_GREET))
    invoked, listed = await conn.read(), await conn.read()
    assert invoked.status == 200
    assert invoked.json() == {"greeting": "hello pipe"}
    assert invoked.headers["x-amz-executed-version"] == "$LATEST"
    arn = invoked.headers["x-amz-durable-execution-arn"]
    assert listed.status == 200
    assert [e["DurableExecutionArn"] for e in listed.json()["DurableExecutions"]] == [arn]
    assert listed.headers["content-type"] == "application/json"
    assert listed.headers["x-amzn-requestid"]
    # Still open: the same connection serves a third request (the ARN percent-encoded).
    await conn.send(get(f"/2025-12-01/durable-executions/{quote(arn, safe='')}"))
    described = await conn.read()
    assert described.json()["Status"] == "SUCCEEDED"
    assert isinstance(described.json()["StartTimestamp"], float)  # epoch seconds


async def test_connection_close_is_honoured(conn: Connection) -> None:
    await conn.send(get(LIST_GREET, headers="Connection: close\r\n"))
    answer = await conn.read()
    assert answer.status == 200
    assert answer.headers["connection"] == "close"
    assert await conn.closed()


async def test_http_1_0_closes_after_the_answer(conn: Connection) -> None:
    await conn.send(f"GET {LIST_GREET} HTTP/1.0\r\n\r\n".encode())
    assert (await conn.read()).status == 200
    assert await conn.closed()


async def test_chunked_request_body(conn: Connection) -> None:
    head = f"POST {INVOKE_GREET} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b'7\r\n{"name"\r\nA;ext=1\r\n: "chunk"}\r\n0\r\nX-Trailer: 1\r\n\r\n'
    await conn.send(head.encode() + body)
    answer = await conn.read()
    assert answer.status == 200, answer.body
    assert answer.json() == {"greeting": "hello chunk"}


async def test_expect_100_continue(conn: Connection) -> None:
    body = b'{"name": "cont"}'
    head = (
        f"POST {INVOKE_GREET} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    await conn.send(head.encode())
    interim = await conn.read()
    assert interim.status == 100
    await conn.send(body)
    answer = await conn.read()
    assert answer.json() == {"greeting": "hello cont"}


async def test_unknown_route_is_an_unknown_operation(conn: Connection) -> None:
    await conn.send(get("/2025-12-01/nothing/here") + post("/2025-12-01/durable-executions", b""))
    for answer in (await conn.read(), await conn.read()):
        assert answer.status == 404
        assert answer.headers["x-amzn-errortype"] == "UnknownOperationException"
        assert answer.json()["Type"] == "User"


async def test_malformed_json_body(conn: Connection) -> None:
    arn = quote(
        "arn:aws:lambda:us-east-1:123456789012:function:greet:$LATEST/durable-execution/a/b",
        safe="",
    )
    await conn.send(post(f"/2025-12-01/durable-executions/{arn}/checkpoint", b'{"Checkpoint'))
    answer = await conn.read()
    assert answer.status == 400
    assert answer.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert answer.json()["message"].startswith("Could not parse request body into json")
    await conn.send(post(f"/2025-12-01/durable-executions/{arn}/stop", b'{"Nope": 1}'))
    answer = await conn.read()
    assert answer.headers["x-amzn-errortype"] == "InvalidParameterValueException"


async def test_malformed_request_line_closes_the_connection(conn: Connection) -> None:
    await conn.send(b"NONSENSE\r\n\r\n")
    answer = await conn.read()
    assert answer.status == 400
    assert answer.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert await conn.closed()


async def test_query_parameter_types_are_checked(conn: Connection) -> None:
    await conn.send(get(f"{LIST_GREET}?MaxItems=lots") + get(f"{LIST_GREET}?ReverseOrder=maybe"))
    for answer in (await conn.read(), await conn.read()):
        assert answer.status == 400
        assert answer.headers["x-amzn-errortype"] == "InvalidParameterValueException"
        assert "message" in answer.json()


@pytest.fixture
async def small_server(engine: Any) -> AsyncIterator[DurableServer]:
    limits = ConnectionLimits(max_head=1024, max_body=64)
    async with DurableServer(engine, limits=limits) as running:
        yield running


async def test_limits_of_head_and_body(small_server: DurableServer) -> None:
    async with await anyio.connect_tcp("127.0.0.1", small_server.port) as stream:
        conn = Connection(stream)
        # A body over the limit is read and dropped, answered 413, the connection kept.
        await conn.send(post(INVOKE_GREET, b" " * 100) + get(LIST_GREET))
        too_big, after = await conn.read(), await conn.read()
        assert too_big.status == 413
        assert too_big.headers["x-amzn-errortype"] == "RequestTooLargeException"
        assert after.status == 200
        # A head over the limit closes the connection.
        await conn.send(get(LIST_GREET, headers=f"X-Big: {'b' * 2000}\r\n"))
        answer = await conn.read()
        assert answer.status == 431
        assert await conn.closed()


async def test_serve_reports_its_url_and_stops_when_cancelled(engine: Any) -> None:
    async with anyio.create_task_group() as group:
        url = await group.start(DurableServer(engine).serve)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        async with await anyio.connect_tcp(host, int(port)) as stream:
            conn = Connection(stream)
            await conn.send(get(LIST_GREET))
            assert (await conn.read()).status == 200
        group.cancel_scope.cancel()


class BrokenEngine:
    """An engine whose every call fails unexpectedly (not with a ServiceError)."""

    service = None

    def get_execution(self, arn: str, *, include_data: bool = True) -> dict[str, Any]:
        raise RuntimeError("disk on fire")

    async def run(self) -> None:
        await anyio.sleep_forever()


async def test_an_unexpected_engine_error_is_a_service_exception() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST/durable-execution/a/b"
    server = DurableServer(BrokenEngine())  # type: ignore[arg-type]
    async with server, await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        conn = Connection(stream)
        await conn.send(get(f"/2025-12-01/durable-executions/{quote(arn, safe='')}"))
        answer = await conn.read()
    assert answer.status == 500
    assert answer.headers["x-amzn-errortype"] == "ServiceException"
    assert answer.json() == {"Type": "Service", "Message": "RuntimeError: disk on fire"}
