"""A real HTTP server speaking the two durable-execution REST routes botocore uses (PROTOCOL §3.2).

It runs in a background thread (stdlib ``ThreadingHTTPServer`` on 127.0.0.1, random port), so it
works whatever async backend the test runs on, and delegates to a *backend* with synchronous
methods in botocore's shapes (the contract of ``adurable.testing.FakeService``)::

    checkpoint(*, DurableExecutionArn, CheckpointToken, Updates=None, ClientToken=None) -> dict
    get_state(*, DurableExecutionArn, CheckpointToken, Marker=None, MaxItems=None) -> dict

A backend signals a service error by raising an exception with ``code``, ``message`` and
``status`` attributes (``adurable.testing.ServiceError``); anything else becomes a 500
``ServiceException``.

Encoding is rest-json as botocore parses it: datetimes become epoch-seconds floats; errors are the
HTTP status, header ``x-amzn-ErrorType: <Code>`` and body ``{"Type": "User", "message": ...}``
(the body's ``Type`` is NOT the code; botocore reads the header).

Fault injection: :meth:`DurableHTTPServer.inject` queues canned responses that are served, in
order, before delegating; :attr:`DurableHTTPServer.counts` counts requests per route and
:attr:`DurableHTTPServer.requests` records them, so tests can watch botocore's retries.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

API_VERSION = "2025-12-01"
CHECKPOINT = "checkpoint"
STATE = "state"


class Backend(Protocol):
    def checkpoint(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Updates: list[dict[str, Any]] | None = None,
        ClientToken: str | None = None,
    ) -> dict[str, Any]: ...

    def get_state(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Marker: str | None = None,
        MaxItems: int | None = None,
    ) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class Fault:
    """A canned response served instead of asking the backend.

    ``route`` limits it to ``"checkpoint"`` or ``"state"`` (``None``: either).
    ``status=None`` drops the connection without answering (a network error).
    ``after_backend=True`` lets the backend process the request first and then loses its reply
    (served instead), like a response lost on the way back.
    """

    status: int | None
    code: str = "ServiceException"
    message: str = "injected fault"
    route: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    after_backend: bool = False


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    route: str
    method: str
    raw_path: str
    arn: str
    headers: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any] | None
    #: The request target exactly as sent on the request line.
    target: str = ""


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__} as rest-json")


def encode_body(payload: Any) -> bytes:
    """rest-json encoding of a botocore-shaped response (datetimes → epoch seconds)."""
    return json.dumps(payload, default=_json_default).encode("utf-8")


class DurableHTTPServer:
    """The server; use :func:`serve` (or :meth:`start`/:meth:`stop`)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()  # one request at a time reaches the backend
        self._faults: collections.deque[Fault] = collections.deque()
        self.counts: collections.Counter[str] = collections.Counter()
        self.requests: list[RecordedRequest] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="durable-http-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    # -- test controls --------------------------------------------------------------------------

    def inject(
        self,
        status: int | None,
        code: str = "ServiceException",
        message: str = "injected fault",
        *,
        route: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        after_backend: bool = False,
    ) -> None:
        """Queue ``times`` copies of a canned response (see :class:`Fault`)."""
        fault = Fault(status, code, message, route, tuple((headers or {}).items()), after_backend)
        with self._lock:
            self._faults.extend([fault] * times)

    def reset(self, backend: Backend | None = None) -> None:
        with self._lock:
            if backend is not None:
                self.backend = backend
            self._faults.clear()
            self.counts.clear()
            self.requests.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def _next_fault(self, route: str) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.route in (None, route):
                del self._faults[i]
                return fault
        return None

    # -- dispatch (called from handler threads) -------------------------------------------------

    def handle(self, request: RecordedRequest) -> tuple[int | None, dict[str, str], Any]:
        """``(status, headers, body)``; ``status=None`` means drop the connection."""
        with self._lock:
            self.counts[request.route] += 1
            self.requests.append(request)
            fault = self._next_fault(request.route)
            if fault is not None and not fault.after_backend:
                return _fault_response(fault)
            status, headers, payload = self._delegate(request)
            if fault is not None:
                return _fault_response(fault)
            return status, headers, payload

    def _delegate(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        try:
            if request.route == CHECKPOINT:
                body = request.body or {}
                result = self.backend.checkpoint(
                    DurableExecutionArn=request.arn,
                    CheckpointToken=body.get("CheckpointToken", ""),
                    Updates=body.get("Updates"),
                    ClientToken=body.get("ClientToken"),
                )
            else:
                max_items = request.query.get("MaxItems")
                result = self.backend.get_state(
                    DurableExecutionArn=request.arn,
                    CheckpointToken=request.query.get("CheckpointToken", ""),
                    Marker=request.query.get("Marker"),
                    MaxItems=None if max_items is None else int(max_items),
                )
        except Exception as exc:
            code = getattr(exc, "code", None)
            status = getattr(exc, "status", None)
            if isinstance(code, str) and isinstance(status, int):
                message = getattr(exc, "message", None)
                return _error(status, code, str(message if message is not None else exc))
            return _error(500, "ServiceException", f"{type(exc).__name__}: {exc}")
        return 200, {}, result


def _fault_response(fault: Fault) -> tuple[int | None, dict[str, str], Any]:
    if fault.status is None:
        return None, {}, None
    return _error(fault.status, fault.code, fault.message, dict(fault.headers))


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    return (
        status,
        {"x-amzn-ErrorType": code, **(headers or {})},
        {"Type": "User", "message": message},
    )


def _parse_path(raw_path: str) -> tuple[str, str] | None:
    """``(route, arn)`` of ``/2025-12-01/durable-executions/{arn}/{checkpoint|state}``.

    The ARN must be URI-encoded including ``:`` and ``/`` (one path segment), as botocore does.
    """
    parts = raw_path.split("/")
    if len(parts) != 5 or parts[0] or parts[1] != API_VERSION:
        return None
    if parts[2] != "durable-executions" or parts[4] not in (CHECKPOINT, STATE) or not parts[3]:
        return None
    return parts[4], unquote(parts[3])


def _make_handler(server: DurableHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._dispatch("GET", STATE)

        def do_POST(self) -> None:
            self._dispatch("POST", CHECKPOINT)

        def _dispatch(self, method: str, expected_route: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            parsed = _parse_path(split.path)
            if parsed is None or parsed[0] != expected_route:
                self._send(404, *_error(404, "UnknownOperationException", self.path)[1:])
                return
            route, arn = parsed
            query = {key: values[-1] for key, values in parse_qs(split.query).items()}
            try:
                body = json.loads(raw_body) if raw_body else None
            except ValueError:
                self._send(400, *_error(400, "SerializationException", "bad JSON")[1:])
                return
            request = RecordedRequest(
                route=route,
                method=method,
                raw_path=split.path,
                arn=arn,
                headers={key.lower(): value for key, value in self.headers.items()},
                query=query,
                body=body,
                target=self.path,
            )
            status, headers, payload = server.handle(request)
            if status is None:
                self.close_connection = True
                self.wfile.flush()
                self.connection.close()
                return
            self._send(status, headers, payload)

        def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
            data = encode_body(payload)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def serve(backend: Backend) -> Iterator[DurableHTTPServer]:
    """Run a :class:`DurableHTTPServer` for the duration of the block."""
    server = DurableHTTPServer(backend)
    server.start()
    try:
        yield server
    finally:
        server.stop()
