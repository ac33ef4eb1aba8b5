"""The durable-execution service as adurable sees it (PROTOCOL §3), and the one seam to botocore.

This is the only module of adurable that knows botocore/aiobotocore, and it imports them lazily:
``import adurable._service`` loads neither (a cold start that is handed a client, or a test that
uses the in-process fake, never pays for them).

* :class:`DurableService` is what the rest of adurable talks to: ``send_checkpoint`` and
  ``fetch_state``, with wire dicts in and shallowly checked raw operations out (the journal
  validates an operation only when it is looked up; see ``_journal``).
* :class:`ClientService` implements it over any botocore-shaped client: an object with awaitable
  ``checkpoint_durable_execution(**kw)`` and ``get_durable_execution_state(**kw)`` taking and
  returning botocore's request/response dicts (PROTOCOL §16.6). That is a user's own aiobotocore
  ``lambda`` client, the one :func:`open_lambda_client` makes, or ``adurable.testing.FakeService``.
  Every failure is translated here, once, into ``CheckpointError`` / ``GetExecutionStateError``
  classified per §3.6 (:func:`map_exceptions`).
* :func:`open_lambda_client` creates the real client (§3.1 config; aiohttp on asyncio, httpx on
  trio) and :class:`LambdaClientCache` keeps one open across warm invocations;
  :func:`shared_lambda_service` is the entry point's default: one cache per event loop.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import anyio
from anyio.lowlevel import RunVar

from adurable._backend import current_backend
from adurable._errors import (
    BotoClientError,
    CheckpointError,
    GetExecutionStateError,
    ValidationError,
)
from adurable._fastwire import checked_operations
from adurable._version import __version__

if TYPE_CHECKING:
    from adurable._wire import CheckpointResponse, GetStateResponse, OperationUpdate

__all__ = [
    "DEFAULT_REGION",
    "LambdaApiError",
    "call_lambda_api",
    "KMS_ERROR_CODES",
    "USER_AGENT_EXTRA",
    "CheckpointReply",
    "ClientService",
    "DurableService",
    "StatePage",
    "LambdaClientCache",
    "classify_error",
    "current_backend",
    "lambda_client_config",
    "close_shared_lambda_service",
    "map_exceptions",
    "open_lambda_client",
    "shared_lambda_service",
]

DEFAULT_REGION = "us-east-1"
USER_AGENT_EXTRA = f"adurable/{__version__}"
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 50
MAX_ATTEMPTS = 3
#: GetDurableExecutionState page size the SDK asks for (§2.2, §3.4).
MAX_ITEMS = 1000

KMS_ERROR_CODES = frozenset(
    {
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
    }
)
_STALE_TOKEN_CODE = "InvalidParameterValueException"
_STALE_TOKEN_PREFIX = "Invalid checkpoint token"


class CheckpointReply(NamedTuple):
    """A CheckpointDurableExecution response: the next token (None when the service withheld
    it, §8.7) and the delta of operations, raw; ``next_marker`` pages the rest (§3.3)."""

    checkpoint_token: str | None
    operations: list[dict[str, Any]]
    next_marker: str


class StatePage(NamedTuple):
    """One GetDurableExecutionState page: raw operations and the marker of the next page."""

    operations: list[dict[str, Any]]
    next_marker: str


@runtime_checkable
class DurableService(Protocol):
    """The two calls an invocation makes to the durable-execution service (PROTOCOL §3.3, §3.4).

    Requests carry wire dicts; responses carry the service's operations as raw dicts, checked
    shallowly (``_fastwire.checked_operations``). Implementations raise only
    ``CheckpointError`` / ``GetExecutionStateError`` (classified per §3.6) or cancellation.
    """

    async def send_checkpoint(
        self,
        arn: str,
        token: str,
        updates: Sequence[Mapping[str, Any]],
        client_token: str,
    ) -> CheckpointReply:
        """CheckpointDurableExecution. ``client_token``: one UUID4 per logical request."""
        ...

    async def fetch_state(
        self,
        arn: str,
        token: str,
        marker: str,
        max_items: int = MAX_ITEMS,
    ) -> StatePage:
        """GetDurableExecutionState: one page of operations after ``marker``."""
        ...


# -- error translation (§3.6) --------------------------------------------------------------------


def _service_error_details(exc: BaseException) -> tuple[str | None, str, int | None] | None:
    """``(code, message, status)`` of a botocore-ClientError-like exception, else ``None``.

    Such an exception has a ``.response`` dict:
    ``{"Error": {"Code", "Message"}, "ResponseMetadata": {"HTTPStatusCode"}}``. botocore takes the
    code from the ``x-amzn-ErrorType`` header (rest-json), so it is the modeled code. ``code`` is
    ``None`` when the response has no error object.
    """
    try:
        response = getattr(exc, "response", None)
    except Exception:  # e.g. httpx.RequestError.response raises when unset
        return None
    if not isinstance(response, Mapping):
        return None
    metadata = response.get("ResponseMetadata")
    status: Any = metadata.get("HTTPStatusCode") if isinstance(metadata, Mapping) else None
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool):
        status = None
    error = response.get("Error")
    if not isinstance(error, Mapping):
        return None, "", status
    code, message = error.get("Code"), error.get("Message")
    return (
        None if code is None else str(code),
        "" if message is None else str(message),
        status,
    )


def classify_error(code: str | None, message: str | None, status: int | None) -> bool:
    """Whether a service error is retryable (category INVOCATION) per PROTOCOL §3.6.

    ``code=None`` means the response had no error object. KMS errors are fatal (although HTTP
    502); with an error object, 4xx are fatal except 429 and a stale checkpoint token
    (``InvalidParameterValueException`` "Invalid checkpoint token..."); everything else (429, 5xx,
    no status, no error object) is retryable.
    """
    if code in KMS_ERROR_CODES:
        return False
    if code is not None and status is not None and 400 <= status < 500 and status != 429:
        return code == _STALE_TOKEN_CODE and (message or "").startswith(_STALE_TOKEN_PREFIX)
    return True


def translate_error(exc: Exception, error_cls: type[BotoClientError]) -> BotoClientError:
    """The adurable error for a failed service call (message = ``str(exc)``)."""
    message = str(exc) or type(exc).__name__
    details = _service_error_details(exc)
    if details is None:  # network error, timeout, malformed response, ...
        return error_cls(message, retryable=True)
    code, service_message, status = details
    return error_cls(
        message,
        retryable=classify_error(code, service_message, status),
        code=code or None,
        status=status,
    )


@contextmanager
def map_exceptions(error_cls: type[BotoClientError]) -> Iterator[None]:
    """Translate every ``Exception`` raised inside into ``error_cls`` (``raise ... from exc``).

    adurable's own ``BotoClientError`` passes through unchanged; cancellation and other
    ``BaseException`` are never touched.
    """
    try:
        yield
    except BotoClientError:
        raise
    except Exception as exc:
        raise translate_error(exc, error_cls) from exc


# -- the service over a botocore-shaped client -----------------------------------------------------


class ClientService:
    """:class:`DurableService` over a botocore-shaped ``lambda`` client (PROTOCOL §16.6).

    ``client`` is anything with awaitable ``checkpoint_durable_execution(**kw)`` and
    ``get_durable_execution_state(**kw)`` in botocore's request/response shapes: an aiobotocore
    client (the user's own or :func:`open_lambda_client`'s) or ``adurable.testing.FakeService``.
    The client is not owned: closing it is its creator's business.
    """

    __slots__ = ("client",)

    def __init__(self, client: Any) -> None:
        for method in ("checkpoint_durable_execution", "get_durable_execution_state"):
            if not callable(getattr(client, method, None)):
                raise ValidationError(
                    f"the durable service client must have an async {method}() method "
                    f"(an aiobotocore 'lambda' client); got {type(client).__name__}"
                )
        self.client = client

    def __repr__(self) -> str:
        return f"ClientService({self.client!r})"

    async def send_checkpoint(
        self,
        arn: str,
        token: str,
        updates: Sequence[Mapping[str, Any]],
        client_token: str,
    ) -> CheckpointReply:
        if not token:
            raise CheckpointError(
                "refusing to checkpoint without a checkpoint token", retryable=True
            )
        request: dict[str, Any] = {
            "DurableExecutionArn": arn,
            "CheckpointToken": token,
            "Updates": list(updates),
        }
        if client_token:  # else botocore fills in a fresh UUID4 (idempotency token)
            request["ClientToken"] = client_token
        with map_exceptions(CheckpointError):
            raw = await _awaited(self.client.checkpoint_durable_execution(**request))
            return _checkpoint_reply(raw)

    async def fetch_state(
        self,
        arn: str,
        token: str,
        marker: str,
        max_items: int = MAX_ITEMS,
    ) -> StatePage:
        if not token:
            raise GetExecutionStateError(
                "refusing to fetch execution state without a checkpoint token", retryable=True
            )
        request: dict[str, Any] = {
            "DurableExecutionArn": arn,
            "CheckpointToken": token,
            "MaxItems": max_items,
        }
        if marker:
            request["Marker"] = marker
        with map_exceptions(GetExecutionStateError):
            raw = await _awaited(self.client.get_durable_execution_state(**request))
            return _state_page(raw)

    # -- the same calls with validated wire models (tools and tests) ------------------------------

    async def checkpoint(
        self,
        arn: str,
        token: str,
        updates: Sequence[OperationUpdate],
        client_token: str,
    ) -> CheckpointResponse:
        """``send_checkpoint`` with models in and out (the whole response validated)."""
        from adurable._wire import CheckpointResponse

        reply = await self.send_checkpoint(
            arn, token, [update.to_wire() for update in updates], client_token
        )
        state: dict[str, Any] = {"Operations": reply.operations}
        if reply.next_marker:
            state["NextMarker"] = reply.next_marker
        with map_exceptions(CheckpointError):
            return CheckpointResponse.model_validate(
                {"CheckpointToken": reply.checkpoint_token, "NewExecutionState": state}
            )

    async def get_state(
        self,
        arn: str,
        token: str,
        marker: str,
        max_items: int = MAX_ITEMS,
    ) -> GetStateResponse:
        """``fetch_state`` with the page validated into a model."""
        from adurable._wire import GetStateResponse

        page = await self.fetch_state(arn, token, marker, max_items)
        with map_exceptions(GetExecutionStateError):
            return GetStateResponse.model_validate(
                {"Operations": page.operations, "NextMarker": page.next_marker or None}
            )


def _checkpoint_reply(raw: Any) -> CheckpointReply:
    """The checked parts of a CheckpointDurableExecution response (TypeError/ValueError if
    malformed: translated into a retryable CheckpointError)."""
    if not isinstance(raw, Mapping):
        raise TypeError(f"malformed checkpoint response: {type(raw).__name__}")
    token = raw.get("CheckpointToken")
    if token is not None and not isinstance(token, str):
        raise TypeError("malformed checkpoint response: CheckpointToken is not a string")
    state = raw.get("NewExecutionState")
    if state is None:
        return CheckpointReply(token, [], "")
    page = _state_page(state)
    return CheckpointReply(token, page.operations, page.next_marker)


def _state_page(raw: Any) -> StatePage:
    if not isinstance(raw, Mapping):
        raise TypeError(f"malformed execution state: {type(raw).__name__}")
    marker = raw.get("NextMarker") or ""
    if not isinstance(marker, str):
        raise TypeError("malformed execution state: NextMarker is not a string")
    return StatePage(checked_operations(raw.get("Operations") or []), marker)


async def _awaited(result: Any) -> Any:
    if not inspect.isawaitable(result):
        raise TypeError(
            "the durable service client returned a non-awaitable; adurable needs an async "
            "client (aiobotocore), not a blocking boto3 client"
        )
    return await result


# -- the real client ------------------------------------------------------------------------------


def lambda_client_config(*, backend: str, max_attempts: int = MAX_ATTEMPTS) -> Any:
    """The ``AioConfig`` of adurable's ``lambda`` client (PROTOCOL §3.1).

    asyncio uses aiobotocore's default aiohttp session; any other backend (trio) the anyio-based
    ``HttpxSession``, since aiohttp only runs on asyncio.
    """
    from aiobotocore.config import AioConfig

    options: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        # botocore's "max_attempts" counts retries (total = max_attempts + 1); the official
        # SDK's botocore default is 3 attempts in all, which is "total_max_attempts".
        "retries": {"mode": "standard", "total_max_attempts": max_attempts},
        "user_agent_extra": USER_AGENT_EXTRA,
    }
    if backend != "asyncio":
        options["http_session_cls"] = _origin_form_httpx_session()
    return AioConfig(**options)


@functools.cache
def _origin_form_httpx_session() -> type[Any]:
    """aiobotocore's ``HttpxSession``, sending the request target in origin form.

    aiobotocore 3.x hands httpx the whole URL as the raw request target, so every request line
    reads ``POST http://host/2025-12-01/... HTTP/1.1`` (absolute form). Servers must accept it
    (RFC 9112 §3.2.2) but not all do — AWS's own local emulator answers 500. A request hook puts
    the usual ``/path?query`` back; a target meant for a forward proxy is left alone.
    """
    from urllib.parse import urlsplit

    from aiobotocore.httpxsession import HttpxSession

    async def origin_form(request: Any) -> None:
        target = request.extensions.get("target")
        if isinstance(target, bytes) and target.startswith((b"http://", b"https://")):
            parts = urlsplit(target)
            request.extensions["target"] = (parts.path or b"/") + (
                b"?" + parts.query if parts.query else b""
            )

    class OriginFormHttpxSession(HttpxSession):  # type: ignore[misc]
        def _make_async_client(self) -> Any:
            client = super()._make_async_client()
            client.event_hooks["request"].append(origin_form)
            return client

    return OriginFormHttpxSession


@asynccontextmanager
async def open_lambda_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    backend: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> AsyncIterator[Any]:
    """Open adurable's own aiobotocore ``lambda`` client; closed when the block exits.

    ``endpoint_url``: else ``AWS_ENDPOINT_URL_LAMBDA``, else botocore's default endpoint.
    ``region``: else ``AWS_REGION``, else ``us-east-1``. ``backend``: ``"asyncio"`` or ``"trio"``,
    detected when omitted. Credentials come from botocore's usual chain (on Lambda: the
    execution role's env variables). ``max_attempts``: total HTTP attempts per call (botocore
    standard mode: retries throttling, 5xx and connection errors, reusing the ClientToken).
    """
    from aiobotocore.session import get_session

    config = lambda_client_config(backend=backend or current_backend(), max_attempts=max_attempts)
    session = get_session()
    # The session picks its own async primitives (credential locks, IMDS) from its default
    # client config, so it must know about the httpx session too.
    session.set_default_client_config(config)
    async with session.create_client(
        "lambda",
        region_name=region or os.environ.get("AWS_REGION") or DEFAULT_REGION,
        endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL_LAMBDA") or None,
        config=config,
    ) as client:
        yield client


_LOOP_MARK: RunVar[object] = RunVar("adurable_service_loop")


def _current_loop_mark() -> object:
    """An object unique to the running event loop (anyio ``RunVar``, no backend imports)."""
    try:
        return _LOOP_MARK.get()
    except LookupError:
        mark = object()
        _LOOP_MARK.set(mark)
        return mark


class LambdaClientCache:
    """One :func:`open_lambda_client` client per process and event loop.

    The entry point keeps one of these for the life of the process: warm invocations on the same
    event loop reuse the client (and its connection pool); :meth:`aclose` closes it at exit, on
    that loop. A client made on an event loop that is gone is dropped (it cannot be closed from
    another loop) and a new one is opened.
    """

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        backend: str | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._options: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region": region,
            "backend": backend,
            "max_attempts": max_attempts,
        }
        self._loop: object | None = None
        self._lock: anyio.Lock | None = None
        self._stack: AsyncExitStack | None = None
        self._service: ClientService | None = None

    @property
    def client(self) -> Any:
        """The open client, if any (``None`` before the first :meth:`get`)."""
        return None if self._service is None else self._service.client

    async def get(self) -> ClientService:
        """The service over this event loop's client, opened on first use."""
        loop = _current_loop_mark()
        if self._loop is not loop or self._lock is None:
            self._loop, self._lock = loop, anyio.Lock()
            self._stack = self._service = None
        async with self._lock:
            if self._service is None:
                stack = AsyncExitStack()
                client = await stack.enter_async_context(open_lambda_client(**self._options))
                self._stack, self._service = stack, ClientService(client)
            return self._service

    async def aclose(self) -> None:
        """Close the client (idempotent) on the event loop that opened it; else just drop it."""
        stack, self._stack, self._service = self._stack, None, None
        if stack is not None and self._loop is _current_loop_mark():
            with anyio.CancelScope(shield=True):
                await stack.aclose()


_SHARED: RunVar[LambdaClientCache] = RunVar("adurable_shared_lambda_client")


async def shared_lambda_service() -> ClientService:
    """The service over this event loop's shared default client (opened on first use).

    The entry point's long-lived event loop keeps it, and its connection pool, across warm
    invocations; :func:`close_shared_lambda_service` closes it (call it on that loop at exit).
    """
    try:
        cache = _SHARED.get()
    except LookupError:
        cache = LambdaClientCache()
        _SHARED.set(cache)
    return await cache.get()


async def close_shared_lambda_service() -> None:
    """Close this event loop's shared client, if one was opened (idempotent)."""
    try:
        cache = _SHARED.get()
    except LookupError:
        return
    await cache.aclose()


# -- synchronous management calls (the CLI) ------------------------------------------------------


class LambdaApiError(Exception):
    """A management call failed: ``str()`` is ``"<Code>: <Message>"`` or the transport error."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@functools.cache
def _botocore_session() -> Any:
    """One botocore session per process (it caches the loaded service model)."""
    import botocore.session

    return botocore.session.get_session()


def call_lambda_api(
    method: str, *, endpoint_url: str | None, region: str | None = None, **kwargs: Any
) -> Any:
    """Call one Lambda API operation synchronously (tooling, not the handler's hot path).

    Dummy credentials are used when none are configured (a local server does not check them);
    no retries, so a missing server is reported at once.
    """
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    options: dict[str, Any] = {}
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        options = {"aws_access_key_id": "adurable", "aws_secret_access_key": "adurable"}
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=900)
    client = _botocore_session().create_client(
        "lambda",
        endpoint_url=endpoint_url,
        region_name=region or DEFAULT_REGION,
        config=config,
        **options,
    )
    try:
        return getattr(client, method)(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise LambdaApiError(f"{error.get('Code')}: {error.get('Message')}") from None
    except EndpointConnectionError as exc:
        raise LambdaApiError(str(exc), unreachable=True) from None
    except BotoCoreError as exc:
        raise LambdaApiError(str(exc)) from None
    finally:
        client.close()
