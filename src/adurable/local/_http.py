"""A minimal HTTP/1.1 server on anyio: enough of RFC 9112 for botocore, aiobotocore and the CLI.

What it does: request line and headers, bodies by ``Content-Length`` or ``Transfer-Encoding:
chunked``, ``Expect: 100-continue``, persistent connections (HTTP/1.1 keep-alive by default,
``Connection: close`` honoured, HTTP/1.0 closes unless it asks for keep-alive) and pipelining
(requests on one connection are answered in order). What it does not: TLS, HTTP/2, response
streaming, compression.

It runs on whatever anyio runs on (asyncio, trio) and knows nothing about the Lambda API: a
*handler* turns a :class:`Request` into a :class:`Response`, and a *renderer* turns the
protocol-level failures this layer detects (malformed request, head or body too large) into
the error response the application wants on the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import anyio
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

__all__ = (
    "ConnectionLimits",
    "ErrorRenderer",
    "Handler",
    "ProtocolError",
    "Request",
    "Response",
    "serve_connection",
)

_log = logging.getLogger("adurable.local.http")

_CRLF = b"\r\n"
_CHUNK_LINE_LIMIT = 4096
_DISCARD_CHUNK = 65536


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection limits. ``max_body``: larger bodies are read and thrown away, then
    answered 413; ``keepalive_timeout``: seconds an idle connection is kept open."""

    max_head: int = 64 * 1024
    max_body: int = 32 * 1024 * 1024
    keepalive_timeout: float = 75.0


@dataclass(frozen=True)
class Request:
    """One parsed request. ``path`` is still percent-encoded (split it before decoding);
    header names are lower case (repeated headers joined with ``", "``)."""

    method: str
    target: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    version: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None."""
        return self.headers.get(name.lower())

    def query_value(self, name: str) -> str | None:
        """The last value of query parameter ``name``, or None."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    """A complete response; ``Content-Length`` and ``Date`` are added when it is sent."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


class ProtocolError(Exception):
    """A request this layer cannot serve; answered with ``status`` and the connection closed
    (unless ``close`` is False)."""

    def __init__(self, status: int, message: str, *, close: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


Handler = Callable[[Request], Awaitable[Response]]
#: ``renderer(status, message)``: the response for a protocol-level error.
ErrorRenderer = Callable[[int, str], Response]


async def serve_connection(
    stream: ByteStream,
    handler: Handler,
    render_error: ErrorRenderer,
    limits: ConnectionLimits | None = None,
) -> None:
    """Serve requests on ``stream`` until the client closes it or a response closes it."""
    limits = limits or ConnectionLimits()
    reader = BufferedByteReceiveStream(stream)
    async with stream:
        try:
            keep_open = True
            while keep_open:
                keep_open = await _serve_one(stream, reader, handler, render_error, limits)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            pass  # the client went away; nothing left to answer


async def _serve_one(
    stream: ByteStream,
    reader: BufferedByteReceiveStream,
    handler: Handler,
    render_error: ErrorRenderer,
    limits: ConnectionLimits,
) -> bool:
    """Read, handle and answer one request; whether the connection stays open."""
    try:
        head: bytes | None = None
        with anyio.move_on_after(limits.keepalive_timeout):
            head = await _read_head(reader, limits)
        if head is None:  # idle too long, or closed between requests
            return False
        request = await _read_request(stream, reader, head, limits)
    except ProtocolError as exc:
        await _send(stream, render_error(exc.status, exc.message), close=exc.close)
        return not exc.close
    response = await _call(handler, request, render_error)
    close = _wants_close(request)
    await _send(stream, response, close=close)
    return not close


async def _call(handler: Handler, request: Request, render_error: ErrorRenderer) -> Response:
    try:
        return await handler(request)
    except Exception:
        _log.exception("unhandled error serving %s %s", request.method, request.target)
        return render_error(500, "internal error in the local server")


async def _read_head(reader: BufferedByteReceiveStream, limits: ConnectionLimits) -> bytes | None:
    """The request head (without the blank line), or None when the client closed first."""
    try:
        head = await reader.receive_until(_CRLF + _CRLF, limits.max_head)
    except (anyio.IncompleteRead, anyio.EndOfStream):
        return None
    except anyio.DelimiterNotFound as exc:
        raise ProtocolError(431, "request head too large") from exc
    if len(head) > limits.max_head:  # it all arrived at once: found, but still too large
        raise ProtocolError(431, "request head too large")
    return head.lstrip(_CRLF)  # tolerate stray CRLFs between requests (RFC 9112 §2.2)


async def _read_request(
    stream: ByteStream, reader: BufferedByteReceiveStream, head: bytes, limits: ConnectionLimits
) -> Request:
    method, target, version, headers = _parse_head(head)
    if headers.get("expect", "").lower() == "100-continue":
        await stream.send(f"{version} 100 Continue\r\n\r\n".encode("ascii"))
    body = await _read_body(reader, headers, limits)
    split = urlsplit(target)
    return Request(
        method=method,
        target=target,
        path=split.path or "/",
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
        body=body,
        version=version,
    )


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise ProtocolError(400, "undecodable request head") from exc
    request_line, *lines = text.split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise ProtocolError(400, f"malformed request line {request_line[:100]!r}")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise ProtocolError(505, f"unsupported protocol version {version[:20]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise ProtocolError(400, f"malformed header line {line[:100]!r}")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return method.upper(), target, version, headers


async def _read_body(
    reader: BufferedByteReceiveStream, headers: Mapping[str, str], limits: ConnectionLimits
) -> bytes:
    encoding = headers.get("transfer-encoding", "").lower()
    if encoding:
        if encoding != "chunked":
            raise ProtocolError(501, f"unsupported transfer encoding {encoding!r}")
        return await _read_chunked(reader, limits)
    raw_length = headers.get("content-length", "0") or "0"
    if not raw_length.isdigit():
        raise ProtocolError(400, f"malformed Content-Length {raw_length[:40]!r}")
    length = int(raw_length)
    if length > limits.max_body:
        await _discard(reader, length)
        raise ProtocolError(413, f"request body of {length} bytes is too large", close=False)
    return await reader.receive_exactly(length) if length else b""


async def _read_chunked(reader: BufferedByteReceiveStream, limits: ConnectionLimits) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = await reader.receive_until(_CRLF, _CHUNK_LINE_LIMIT)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise ProtocolError(400, "malformed chunk size") from exc
        if size == 0:
            break
        total += size
        if total > limits.max_body:
            await _discard(reader, size + 2)
        else:
            parts.append(await reader.receive_exactly(size))
            await reader.receive_exactly(2)
    while await reader.receive_until(_CRLF, _CHUNK_LINE_LIMIT):  # trailers up to a blank line
        pass
    if total > limits.max_body:
        raise ProtocolError(413, f"request body of {total} bytes is too large", close=False)
    return b"".join(parts)


async def _discard(reader: BufferedByteReceiveStream, length: int) -> None:
    """Read and drop ``length`` bytes, so that the client gets to read our answer."""
    while length > 0:
        step = min(length, _DISCARD_CHUNK)
        await reader.receive_exactly(step)
        length -= step


def _wants_close(request: Request) -> bool:
    tokens = {t.strip().lower() for t in (request.header("connection") or "").split(",")}
    if request.version == "HTTP/1.0":
        return "keep-alive" not in tokens
    return "close" in tokens


async def _send(stream: ByteStream, response: Response, *, close: bool) -> None:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    lines.append(f"Content-Length: {len(response.body)}")
    lines.append(f"Date: {formatdate(usegmt=True)}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    await stream.send(head + response.body)
