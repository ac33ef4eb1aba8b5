"""The Lambda durable-execution REST API (PROTOCOL §3) over HTTP, served by a ``LocalEngine``.

    async with DurableServer(engine, port=0) as server:     # runs engine.run() too
        ...                                                   # server.url -> http://127.0.0.1:NNNN

Routes are the real ones (§3.2) plus Lambda ``Invoke``, so botocore, aiobotocore, boto3 and the
AWS CLI work against it with nothing but ``--endpoint-url`` (any credentials, any region; the
signature is not checked):

* Invoke: ``POST /2015-03-31/functions/{Fn}/invocations``
* ListDurableExecutionsByFunction: ``GET /2025-12-01/functions/{Fn}/durable-executions``
* CheckpointDurableExecution: ``POST /2025-12-01/durable-executions/{Arn}/checkpoint``
* GetDurableExecutionState: ``GET /2025-12-01/durable-executions/{Arn}/state``
* GetDurableExecution: ``GET /2025-12-01/durable-executions/{Arn}``
* GetDurableExecutionHistory: ``GET /2025-12-01/durable-executions/{Arn}/history``
* StopDurableExecution: ``POST /2025-12-01/durable-executions/{Arn}/stop``
* SendDurableExecutionCallbackSuccess / Failure / Heartbeat:
  ``POST /2025-12-01/durable-execution-callbacks/{Id}/succeed`` (``/fail``, ``/heartbeat``)

Encoding is rest-json as botocore parses it: path parameters are percent-decoded per segment,
query booleans are ``true``/``false``, query timestamps ISO 8601 or epoch seconds; response
timestamps are epoch seconds. An error is its HTTP status, header ``x-amzn-ErrorType: <Code>``
and body ``{"Type": "User"|"Service", "message"|"Message": ...}`` (member casing as the model
spells it for that exception). The server decodes HTTP (JSON bodies, query types) and the
engine validates the rest (§3.5 limits, patterns, names), so a rejected request changes nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, NoReturn, Protocol, Self, TypeVar
from urllib.parse import unquote

import anyio
import anyio.to_thread
from anyio.abc import SocketAttribute, SocketStream, TaskStatus

from adurable.local._http import ConnectionLimits, Request, Response, serve_connection

__all__ = ("ApiError", "DurableApi", "DurableServer", "Engine", "InvokeResult")

_log = logging.getLogger("adurable.local.server")

DURABLE_API = "2025-12-01"
INVOKE_API = "2015-03-31"
_ERROR_OBJECT_FIELDS: dict[str, type] = {
    "ErrorMessage": str,
    "ErrorType": str,
    "ErrorData": str,
    "StackTrace": list,
}

#: Exceptions whose message member the model spells ``Message`` (the others use ``message``).
_CAPITAL_MESSAGE = frozenset(
    {
        "CallbackTimeoutException",
        "DurableExecutionAlreadyStartedException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "ResourceNotFoundException",
        "ServiceException",
    }
)
#: Protocol-level failures detected by the HTTP layer, as Lambda error codes.
_HTTP_ERROR_CODES = {
    404: "UnknownOperationException",
    413: "RequestTooLargeException",
    431: "RequestTooLargeException",
    500: "ServiceException",
}


class InvokeResult(Protocol):
    """What ``Engine.invoke`` answers (the Invoke response, PROTOCOL §1)."""

    @property
    def status_code(self) -> int: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def function_error(self) -> str | None: ...
    @property
    def durable_execution_arn(self) -> str | None: ...
    @property
    def executed_version(self) -> str | None: ...


class Engine(Protocol):
    """The part of ``adurable.local.LocalEngine`` the server uses.

    The engine validates its arguments and raises an exception with ``code``, ``message`` and
    ``status`` attributes (``ServiceError``) for every error the API reports, changing nothing.
    ``service`` has the awaitable ``checkpoint_durable_execution`` and
    ``get_durable_execution_state``; when ``service.store.blocking`` is true the synchronous
    management calls are made from a worker thread.
    """

    service: Any

    async def invoke(
        self,
        function_name: str,
        payload: bytes | str | None = None,
        *,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
        execution_name: str | None = None,
        tenant_id: str | None = None,
    ) -> InvokeResult: ...

    async def run(self) -> None: ...

    def get_execution(self, arn: str, *, include_data: bool = True) -> dict[str, Any]: ...

    def get_history(
        self,
        arn: str,
        *,
        include_data: bool = True,
        max_items: int | None = None,
        marker: str | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]: ...

    def list_executions(
        self,
        function_name: str,
        *,
        qualifier: str | None = None,
        statuses: list[str] | None = None,
        name: str | None = None,
        started_after: dt.datetime | None = None,
        started_before: dt.datetime | None = None,
        max_items: int | None = None,
        marker: str | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]: ...

    def send_callback_success(self, callback_id: str, result: bytes | str = b"") -> None: ...

    def send_callback_failure(self, callback_id: str, error: dict[str, Any]) -> None: ...

    def send_callback_heartbeat(self, callback_id: str) -> None: ...

    def stop_execution(self, arn: str, error: dict[str, Any] | None = None) -> dict[str, Any]: ...


class ApiError(Exception):
    """An error answer: ``status``, ``x-amzn-ErrorType: code`` and ``message``."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterValueException", message, 400)


# -- encoding ---------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__} as rest-json")


def encode_json(payload: Any) -> bytes:
    """rest-json body bytes (datetimes → epoch seconds, blobs → base64)."""
    return json.dumps(payload, default=_json_default, separators=(",", ":")).encode("utf-8")


def _headers(extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        *extra,
    ]


def json_response(payload: Any, status: int = 200) -> Response:
    """A successful rest-json answer."""
    return Response(status, encode_json(payload), _headers())


def error_response(code: str, message: str, status: int) -> Response:
    """An error answer as botocore's rest-json parser reads it."""
    key = "Message" if code in _CAPITAL_MESSAGE else "message"
    body = {"Type": "Service" if status >= 500 else "User", key: message}
    return Response(status, encode_json(body), _headers([("x-amzn-ErrorType", code)]))


def render_http_error(status: int, message: str) -> Response:
    """The answer to a protocol-level failure of the HTTP layer."""
    code = _HTTP_ERROR_CODES.get(status, "InvalidRequestContentException")
    return error_response(code, message, status)


# -- request parsing --------------------------------------------------------------------------


def _query_bool(request: Request, name: str, default: bool) -> bool:
    raw = request.query_value(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise _invalid(f"{name} must be true or false, got {raw[:40]!r}")
    return raw.lower() == "true"


def _query_int(request: Request, name: str) -> int | None:
    raw = request.query_value(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise _invalid(f"{name} must be an integer, got {raw[:40]!r}") from None


def _query_timestamp(request: Request, name: str) -> dt.datetime | None:
    """A query timestamp: ISO 8601 (botocore's choice for query strings) or epoch seconds."""
    raw = request.query_value(name)
    if raw is None:
        return None
    try:
        return dt.datetime.fromtimestamp(float(raw), tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"{name} must be an ISO 8601 timestamp, got {raw[:60]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _json_object(body: bytes) -> dict[str, Any]:
    """A JSON object body; an empty body is ``{}``."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            "InvalidRequestContentException", f"Could not parse request body into json: {exc}", 400
        ) from None
    if not isinstance(value, dict):
        raise ApiError(
            "InvalidRequestContentException",
            "Could not parse request body into json: expected a JSON object",
            400,
        )
    return value


def _error_object(body: bytes) -> dict[str, Any]:
    """An ``ErrorObject`` body (PROTOCOL §4.6): only its four fields, with their types."""
    error = _json_object(body)
    for key, value in error.items():
        kind = _ERROR_OBJECT_FIELDS.get(key)
        if kind is None:
            raise _invalid(f"Unknown ErrorObject field {key!r}")
        if not isinstance(value, kind):
            raise _invalid(f"ErrorObject.{key} must be a {kind.__name__}")
    return error


def _fields(body: dict[str, Any], required: str, optional: Mapping[str, type]) -> dict[str, Any]:
    """The members of a JSON request body as keyword arguments (types checked)."""
    if not isinstance(body.get(required), str) or not body[required]:
        raise _invalid(f"{required} is required")
    kwargs = {required: body[required]}
    for key, kind in optional.items():
        if body.get(key) is not None:
            if not isinstance(body[key], kind):
                raise _invalid(f"{key} must be a {kind.__name__}")
            kwargs[key] = body[key]
    return kwargs


# -- the API ----------------------------------------------------------------------------------

_Endpoint = Callable[["DurableApi", Request, str], Awaitable[Response]]
T = TypeVar("T")


class DurableApi:
    """The request router: rest-json in, engine calls, rest-json out (no sockets here)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def handle(self, request: Request) -> Response:
        """Answer one request (never raises for an API error)."""
        try:
            endpoint, param = self._route(request)
            response = await endpoint(self, request, param)
        except ApiError as exc:
            response = error_response(exc.code, exc.message, exc.status)
        except Exception as exc:
            response = _engine_error(exc)
        _log.info("%s %s -> %d", request.method, unquote(request.path), response.status)
        return response

    def _route(self, request: Request) -> tuple[_Endpoint, str]:
        segments = request.path.split("/")[1:]
        if len(segments) >= 3 and segments[2]:
            key = (request.method, segments[0], segments[1], *segments[3:])
            endpoint = _ROUTES.get(key)
            if endpoint is not None:
                return endpoint, unquote(segments[2])
        raise ApiError(
            "UnknownOperationException", f"Unknown operation {request.method} {request.path}", 404
        )

    async def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A synchronous engine call; in a worker thread when the engine's store blocks."""
        store = getattr(self.engine.service, "store", None)
        if getattr(store, "blocking", False):
            return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))
        return func(*args, **kwargs)

    # -- checkpoint and state (the SDK's two calls) --

    async def checkpoint(self, request: Request, arn: str) -> Response:
        """CheckpointDurableExecution (the SDK's checkpoint call, §3.3)."""
        body = _json_object(request.body)
        kwargs = _fields(body, "CheckpointToken", {"Updates": list, "ClientToken": str})
        service = self.engine.service
        response = await service.checkpoint_durable_execution(DurableExecutionArn=arn, **kwargs)
        return json_response(response)

    async def get_state(self, request: Request, arn: str) -> Response:
        """GetDurableExecutionState (the SDK's paging call, §3.4)."""
        query = {k: request.query_value(k) for k in ("CheckpointToken", "Marker")}
        kwargs = _fields(query, "CheckpointToken", {"Marker": str})
        max_items = _query_int(request, "MaxItems")
        if max_items is not None:
            kwargs["MaxItems"] = max_items
        service = self.engine.service
        response = await service.get_durable_execution_state(DurableExecutionArn=arn, **kwargs)
        return json_response(response)

    # -- tooling reads --

    async def get_execution(self, request: Request, arn: str) -> Response:
        """GetDurableExecution."""
        include = _query_bool(request, "IncludeExecutionData", True)
        return json_response(await self._call(self.engine.get_execution, arn, include_data=include))

    async def get_history(self, request: Request, arn: str) -> Response:
        """GetDurableExecutionHistory (§14)."""
        page = await self._call(
            self.engine.get_history,
            arn,
            include_data=_query_bool(request, "IncludeExecutionData", True),
            max_items=_query_int(request, "MaxItems"),
            marker=request.query_value("Marker"),
            reverse=_query_bool(request, "ReverseOrder", False),
        )
        return json_response(page)

    async def list_executions(self, request: Request, function_name: str) -> Response:
        """ListDurableExecutionsByFunction."""
        page = await self._call(
            self.engine.list_executions,
            function_name,
            qualifier=request.query_value("Qualifier"),
            statuses=list(request.query.get("Statuses") or ()) or None,
            name=request.query_value("DurableExecutionName"),
            started_after=_query_timestamp(request, "StartedAfter"),
            started_before=_query_timestamp(request, "StartedBefore"),
            max_items=_query_int(request, "MaxItems"),
            marker=request.query_value("Marker"),
            reverse=_query_bool(request, "ReverseOrder", False),
        )
        return json_response(page)

    # -- control --

    async def stop(self, request: Request, arn: str) -> Response:
        """StopDurableExecution (body: an ErrorObject, may be empty)."""
        error = _error_object(request.body)
        return json_response(await self._call(self.engine.stop_execution, arn, error or None))

    async def callback_success(self, request: Request, callback_id: str) -> Response:
        """SendDurableExecutionCallbackSuccess (body: the raw result)."""
        await self._call(self.engine.send_callback_success, callback_id, request.body)
        return json_response({})

    async def callback_failure(self, request: Request, callback_id: str) -> Response:
        """SendDurableExecutionCallbackFailure (body: an ErrorObject)."""
        error = _error_object(request.body)
        await self._call(self.engine.send_callback_failure, callback_id, error)
        return json_response({})

    async def callback_heartbeat(self, request: Request, callback_id: str) -> Response:
        """SendDurableExecutionCallbackHeartbeat."""
        await self._call(self.engine.send_callback_heartbeat, callback_id)
        return json_response({})

    # -- Invoke --

    async def invoke(self, request: Request, function_name: str) -> Response:
        """Lambda Invoke: 200 with the result (RequestResponse), 202 (Event), 204 (DryRun)."""
        result = await self.engine.invoke(
            function_name,
            request.body,
            qualifier=request.query_value("Qualifier"),
            invocation_type=request.header("x-amz-invocation-type") or "RequestResponse",
            execution_name=request.header("x-amz-durable-execution-name"),
            tenant_id=request.header("x-amz-tenant-id"),
        )
        extra: list[tuple[str, str]] = []
        if result.executed_version:
            extra.append(("X-Amz-Executed-Version", result.executed_version))
        if result.durable_execution_arn:
            extra.append(("X-Amz-Durable-Execution-Arn", result.durable_execution_arn))
        if result.function_error:
            extra.append(("X-Amz-Function-Error", result.function_error))
        return Response(result.status_code, bytes(result.payload or b""), _headers(extra))


def _engine_error(exc: Exception) -> Response:
    """A ``ServiceError``-like exception as its answer; anything else is a 500."""
    code, status = getattr(exc, "code", None), getattr(exc, "status", None)
    if isinstance(code, str) and isinstance(status, int):
        message = getattr(exc, "message", None)
        return error_response(code, str(message if message is not None else exc), status)
    _log.error("engine error", exc_info=exc)
    return error_response("ServiceException", f"{type(exc).__name__}: {exc}", 500)


_CALLBACKS = "durable-execution-callbacks"
_EXECUTIONS = "durable-executions"
_ROUTES: dict[tuple[str, ...], _Endpoint] = {
    ("POST", INVOKE_API, "functions", "invocations"): DurableApi.invoke,
    ("GET", DURABLE_API, "functions", _EXECUTIONS): DurableApi.list_executions,
    ("POST", DURABLE_API, _EXECUTIONS, "checkpoint"): DurableApi.checkpoint,
    ("GET", DURABLE_API, _EXECUTIONS, "state"): DurableApi.get_state,
    ("GET", DURABLE_API, _EXECUTIONS): DurableApi.get_execution,
    ("GET", DURABLE_API, _EXECUTIONS, "history"): DurableApi.get_history,
    ("POST", DURABLE_API, _EXECUTIONS, "stop"): DurableApi.stop,
    ("POST", DURABLE_API, _CALLBACKS, "succeed"): DurableApi.callback_success,
    ("POST", DURABLE_API, _CALLBACKS, "fail"): DurableApi.callback_failure,
    ("POST", DURABLE_API, _CALLBACKS, "heartbeat"): DurableApi.callback_heartbeat,
}


# -- the server -------------------------------------------------------------------------------


class DurableServer:
    """An HTTP server for ``engine`` on ``host:port`` (port 0: any free port).

    ``async with DurableServer(engine) as server`` listens, runs ``engine.run()`` (unless
    ``run_engine=False``) and serves connections in the background until the block exits;
    ``await server.serve()`` does the same forever. Works on asyncio and trio.
    """

    def __init__(
        self,
        engine: Engine,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        run_engine: bool = True,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self.api = DurableApi(engine)
        self.run_engine = run_engine
        self.limits = limits or ConnectionLimits()
        self._stack: AsyncExitStack | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("this DurableServer is already running")
        async with AsyncExitStack() as stack:
            listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
            stack.push_async_callback(listener.aclose)  # closed once every task has ended
            group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(group.cancel_scope.cancel)
            self.port = int(listener.extra(SocketAttribute.local_port))
            if self.run_engine:
                group.start_soon(self.engine.run, name="adurable engine")
            group.start_soon(listener.serve, self._connection, name="adurable http listener")
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        return await stack.__aexit__(exc_type, exc, tb)

    async def serve(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> NoReturn:
        """Serve until cancelled; ``task_status.started(url)`` once listening."""
        async with self:
            task_status.started(self.url)
            await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connection(self, stream: SocketStream) -> None:
        await serve_connection(stream, self.api.handle, render_http_error, self.limits)
