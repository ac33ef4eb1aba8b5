"""adurable._service: the real aiobotocore client over real HTTP, and the §3.6 error seam.

The HTTP tests run a stdlib HTTP server in a thread (tests/service/http_server.py) and point a
real aiobotocore ``lambda`` client at it, on asyncio (aiohttp) and on trio (httpx). botocore's
retry backoff is real wall-clock time (rand(0, 1) * 2**(attempt - 1) seconds), so only the tests
that are about retries let botocore retry; every other test opens its client with
``max_attempts=1``.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from adurable._errors import BotoClientError, CheckpointError, GetExecutionStateError
from adurable._service import (
    USER_AGENT_EXTRA,
    ClientService,
    DurableService,
    LambdaClientCache,
    classify_error,
    open_lambda_client,
)
from adurable._wire import (
    CheckpointResponse,
    GetStateResponse,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
)

try:
    from http_server import CHECKPOINT, STATE, DurableHTTPServer, serve
except ImportError:  # tests/service became a package
    from .http_server import CHECKPOINT, STATE, DurableHTTPServer, serve  # type: ignore[no-redef,import-not-found]

pytestmark = [
    pytest.mark.anyio,
]

ARN = (
    "arn:aws:lambda:us-east-1:123456789012:function:orders:$LATEST"
    "/durable-execution/run-1/0b7e3d8a-0000-4000-8000-000000000001"
)
ENCODED_ARN = (
    "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aorders%3A%24LATEST"
    "%2Fdurable-execution%2Frun-1%2F0b7e3d8a-0000-4000-8000-000000000001"
)
T0 = dt.datetime(2025, 12, 1, 12, 0, 0, 500000, tzinfo=dt.UTC)


# -- a tiny in-memory backend (the contract of adurable.testing.FakeService) ---------------------


class StubServiceError(Exception):
    """Like adurable.testing.ServiceError: code, message, status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class StubBackend:
    """Token chaining, one op per update, paging by index; enough to exercise the wire."""

    def __init__(self, operations: list[dict[str, Any]] | None = None) -> None:
        self.token = "dG9rZW4tMA=="
        self.serial = 0
        self.operations: list[dict[str, Any]] = list(operations or [])
        self.calls: list[dict[str, Any]] = []

    def _check(self, token: str) -> None:
        if token != self.token:
            raise StubServiceError(
                "InvalidParameterValueException",
                f"Invalid checkpoint token: {token[:8]}",
                400,
            )

    def checkpoint(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Updates: list[dict[str, Any]] | None = None,
        ClientToken: str | None = None,
    ) -> dict[str, Any]:
        self.calls.append(
            {"op": "checkpoint", "arn": DurableExecutionArn, "updates": Updates, "ct": ClientToken}
        )
        self._check(CheckpointToken)
        delta: dict[str, dict[str, Any]] = {}
        for update in Updates or []:
            status = {"START": "STARTED", "SUCCEED": "SUCCEEDED", "FAIL": "FAILED"}[
                update["Action"]
            ]
            op: dict[str, Any] = {
                "Id": update["Id"],
                "Type": update["Type"],
                "Status": status,
                "StartTimestamp": T0,
            }
            if "Name" in update:
                op["Name"] = update["Name"]
            if update["Type"] == "STEP":
                op["StepDetails"] = {"Attempt": 1, "Result": update.get("Payload")}
            self.operations = [o for o in self.operations if o["Id"] != op["Id"]] + [op]
            delta[op["Id"]] = op
        self.serial += 1
        self.token = f"dG9rZW4t{self.serial}="
        return {
            "CheckpointToken": self.token,
            "NewExecutionState": {"Operations": list(delta.values())},
        }

    def get_state(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Marker: str | None = None,
        MaxItems: int | None = None,
    ) -> dict[str, Any]:
        self.calls.append(
            {"op": "state", "arn": DurableExecutionArn, "marker": Marker, "max": MaxItems}
        )
        self._check(CheckpointToken)
        start = int(Marker or 0)
        end = start + (MaxItems or 1000)
        page: dict[str, Any] = {"Operations": self.operations[start:end]}
        if end < len(self.operations):
            page["NextMarker"] = str(end)
        return page


def step_op(i: int) -> dict[str, Any]:
    return {
        "Id": f"op-{i}",
        "Type": "STEP",
        "Status": "SUCCEEDED",
        "StartTimestamp": T0,
        "EndTimestamp": T0 + dt.timedelta(seconds=i),
        "StepDetails": {"Attempt": 1, "Result": json.dumps(i)},
    }


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_server() -> Iterator[DurableHTTPServer]:
    with serve(StubBackend()) as server:
        yield server


@pytest.fixture
def backend() -> StubBackend:
    return StubBackend([step_op(i) for i in range(5)])


@pytest.fixture
def server(http_server: DurableHTTPServer, backend: StubBackend) -> DurableHTTPServer:
    http_server.reset(backend)
    return http_server


@asynccontextmanager
async def service_at(url: str, *, max_attempts: int = 1) -> AsyncIterator[ClientService]:
    async with open_lambda_client(endpoint_url=url, max_attempts=max_attempts) as client:
        yield ClientService(client)


def update(op_id: str, action: OperationAction, payload: str | None = None) -> OperationUpdate:
    return OperationUpdate(
        id=op_id,
        type=OperationType.STEP,
        sub_type="Step",
        name="charge",
        action=action,
        payload=payload,
    )


def new_client_token() -> str:
    return str(uuid.uuid4())


# -- real HTTP: success paths ----------------------------------------------------------------------


async def test_checkpoint_round_trip(server: DurableHTTPServer, backend: StubBackend) -> None:
    updates = [update("s1", OperationAction.START), update("s1", OperationAction.SUCCEED, "42")]
    client_token = new_client_token()
    async with service_at(server.url) as service:
        assert isinstance(service, DurableService)
        response = await service.checkpoint(ARN, backend.token, updates, client_token)

    assert isinstance(response, CheckpointResponse)
    assert response.checkpoint_token == backend.token == "dG9rZW4t1="
    [op] = response.new_execution_state.operations  # the SUCCEED replaced the START
    assert (op.id, op.status, op.name) == ("s1", OperationStatus.SUCCEEDED, "charge")
    assert op.step_details is not None and op.step_details.result == "42"
    assert op.start_timestamp == T0  # epoch-seconds float on the wire, datetime again here

    [request] = server.requests
    assert request.method == "POST"
    assert request.raw_path == f"/2025-12-01/durable-executions/{ENCODED_ARN}/checkpoint"
    # origin form on both backends (aiobotocore's httpx session would send the absolute URL,
    # which AWS's own local emulator refuses)
    assert request.target == request.raw_path
    assert request.arn == ARN
    assert request.body == {
        "CheckpointToken": "dG9rZW4tMA==",
        "Updates": [u.to_wire() for u in updates],
        "ClientToken": client_token,
    }
    assert request.headers["content-type"].startswith("application/json")
    assert USER_AGENT_EXTRA in request.headers["user-agent"]
    assert "AKIDTESTTESTTESTTEST" in request.headers["authorization"]  # SigV4 signed


async def test_empty_checkpoint_refreshes(server: DurableHTTPServer, backend: StubBackend) -> None:
    async with service_at(server.url) as service:
        response = await service.checkpoint(ARN, backend.token, [], new_client_token())
    assert response.checkpoint_token == "dG9rZW4t1="
    assert response.new_execution_state.operations == []
    assert server.requests[0].body is not None
    assert server.requests[0].body["Updates"] == []


async def test_get_state_with_marker(server: DurableHTTPServer, backend: StubBackend) -> None:
    async with service_at(server.url) as service:
        first = await service.get_state(ARN, backend.token, "1", max_items=2)
        rest = await service.get_state(ARN, backend.token, first.next_marker or "")

    assert isinstance(first, GetStateResponse)
    assert [op.id for op in first.operations] == ["op-1", "op-2"]
    assert first.next_marker == "3"
    assert [op.id for op in rest.operations] == ["op-3", "op-4"]
    assert rest.next_marker is None
    assert rest.operations[-1].end_timestamp == T0 + dt.timedelta(seconds=4)

    first_request, second_request = server.requests
    assert first_request.method == "GET"
    assert first_request.raw_path == f"/2025-12-01/durable-executions/{ENCODED_ARN}/state"
    assert first_request.query == {
        "CheckpointToken": "dG9rZW4tMA==",
        "Marker": "1",
        "MaxItems": "2",
    }
    assert second_request.query["MaxItems"] == "1000"  # the SDK's page size (§2.2)
    assert server.counts == {STATE: 2}


async def test_endpoint_from_environment(
    server: DurableHTTPServer, backend: StubBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.url)
    async with open_lambda_client(max_attempts=1) as client:
        response = await ClientService(client).checkpoint(ARN, backend.token, [], "ct-1")
    assert response.checkpoint_token == backend.token
    assert server.counts == {CHECKPOINT: 1}


async def test_client_config(server: DurableHTTPServer, anyio_backend_name: str) -> None:
    async with open_lambda_client(endpoint_url=server.url, region="eu-west-1") as client:
        config = client.meta.config
        assert client.meta.region_name == "eu-west-1"
        assert (config.connect_timeout, config.read_timeout) == (5, 50)
        assert config.retries == {"mode": "standard", "total_max_attempts": 3}
        assert config.user_agent_extra == USER_AGENT_EXTRA == "adurable/0.1.0"
        session_cls = client._endpoint.http_session.__class__
    # detected from the running loop: aiohttp only works on asyncio
    names = [cls.__name__ for cls in session_cls.__mro__]
    assert ("AIOHTTPSession" if anyio_backend_name == "asyncio" else "HttpxSession") in names


async def test_client_cache_reuses_one_client(
    server: DurableHTTPServer, backend: StubBackend
) -> None:
    cache = LambdaClientCache(endpoint_url=server.url, max_attempts=1)
    assert cache.client is None
    first = await cache.get()
    await first.checkpoint(ARN, backend.token, [], new_client_token())
    second = await cache.get()  # a warm invocation on the same loop
    await second.checkpoint(ARN, backend.token, [], new_client_token())
    assert second is first and cache.client is first.client
    await cache.aclose()
    assert cache.client is None
    await cache.aclose()  # idempotent
    third = await cache.get()  # usable again after close
    assert third is not first
    await third.get_state(ARN, backend.token, "4")
    await cache.aclose()
    assert server.counts == {CHECKPOINT: 2, STATE: 1}


# -- real HTTP: botocore retries, then §3.6 classification ---------------------------------------


async def test_throttling_is_retried_by_botocore(
    server: DurableHTTPServer, backend: StubBackend
) -> None:
    server.inject(429, "TooManyRequestsException", "Rate exceeded")
    client_token = new_client_token()
    async with service_at(server.url, max_attempts=3) as service:
        response = await service.checkpoint(ARN, backend.token, [], client_token)
    assert response.checkpoint_token == "dG9rZW4t1="
    assert server.counts == {CHECKPOINT: 2}
    assert [r.body and r.body["ClientToken"] for r in server.requests] == [client_token] * 2


async def test_5xx_is_retried_by_botocore_with_the_same_client_token(
    server: DurableHTTPServer, backend: StubBackend
) -> None:
    server.inject(500, "ServiceException", "boom", route=CHECKPOINT)
    server.inject(503, "ServiceException", "unavailable", route=CHECKPOINT)
    client_token = new_client_token()
    updates = [update("s1", OperationAction.START)]
    async with service_at(server.url, max_attempts=3) as service:  # the default: 3 attempts
        response = await service.checkpoint(ARN, backend.token, updates, client_token)
    assert response.checkpoint_token == "dG9rZW4t1="
    assert server.counts == {CHECKPOINT: 3}
    bodies = [r.body for r in server.requests]
    assert all(body == bodies[0] for body in bodies)  # same CheckpointToken, Updates, ClientToken
    assert bodies[0] is not None and bodies[0]["ClientToken"] == client_token
    assert len(backend.calls) == 1


async def test_persistent_5xx_is_retryable(server: DurableHTTPServer, backend: StubBackend) -> None:
    server.inject(500, "ServiceException", "still broken", times=5)
    async with service_at(server.url, max_attempts=2) as service:
        with pytest.raises(CheckpointError) as info:
            await service.checkpoint(ARN, backend.token, [], new_client_token())
    error = info.value
    assert server.counts == {CHECKPOINT: 2}  # botocore gave up after max_attempts
    assert error.retryable and error.is_retryable()
    assert (error.code, error.status) == ("ServiceException", 500)
    assert error.__cause__ is not None and type(error.__cause__).__name__ == "ServiceException"
    assert error.message == str(error.__cause__)
    assert "still broken" in error.message


async def test_stale_token_is_retryable(server: DurableHTTPServer, backend: StubBackend) -> None:
    async with service_at(server.url, max_attempts=3) as service:
        with pytest.raises(CheckpointError) as info:
            await service.checkpoint(ARN, "c3RhbGU=", [], new_client_token())
    error = info.value
    assert server.counts == {CHECKPOINT: 1}  # a 400 is not retried by botocore
    assert error.retryable
    assert (error.code, error.status) == ("InvalidParameterValueException", 400)
    assert error.message == str(error.__cause__)
    assert "Invalid checkpoint token" in error.message


async def test_stale_token_is_flagged_stale(
    server: DurableHTTPServer, backend: StubBackend
) -> None:
    async with service_at(server.url) as service:
        with pytest.raises(CheckpointError) as info:
            await service.checkpoint(ARN, "c3RhbGU=", [], new_client_token())
    assert info.value.is_stale_token


async def test_other_400_is_fatal(server: DurableHTTPServer, backend: StubBackend) -> None:
    server.inject(400, "InvalidParameterValueException", "Invalid parent operation id")
    async with service_at(server.url, max_attempts=3) as service:
        with pytest.raises(CheckpointError) as info:
            await service.checkpoint(ARN, backend.token, [], new_client_token())
    error = info.value
    assert server.counts == {CHECKPOINT: 1}
    assert not error.retryable and not error.is_retryable() and not error.is_stale_token
    assert (error.code, error.status) == ("InvalidParameterValueException", 400)


async def test_kms_502_is_fatal_and_code_comes_from_the_header(
    server: DurableHTTPServer, backend: StubBackend
) -> None:
    code = "KMSDisabledException"  # the other KMS codes: test_classification_table
    server.inject(502, code, "KMS key is disabled")
    async with service_at(server.url) as service:
        with pytest.raises(CheckpointError) as info:
            await service.checkpoint(ARN, backend.token, [], new_client_token())
    error = info.value
    # the body says {"Type": "User"}; the code is the x-amzn-ErrorType header's
    assert (error.code, error.status, error.retryable) == (code, 502, False)
    assert code in str(error)


async def test_get_state_errors_are_get_execution_state_errors(
    server: DurableHTTPServer, backend: StubBackend
) -> None:
    server.inject(429, "TooManyRequestsException", "slow down", route=STATE)
    server.inject(400, "InvalidParameterValueException", "bad marker", route=STATE)
    async with service_at(server.url) as service:
        with pytest.raises(GetExecutionStateError) as throttled:
            await service.get_state(ARN, backend.token, "1")
        with pytest.raises(GetExecutionStateError) as invalid:
            await service.get_state(ARN, backend.token, "1")
        with pytest.raises(GetExecutionStateError) as stale:
            await service.get_state(ARN, "c3RhbGU=", "1")
    assert (throttled.value.retryable, throttled.value.status) == (True, 429)
    assert (invalid.value.retryable, invalid.value.status) == (False, 400)
    assert (stale.value.retryable, stale.value.code) == (True, "InvalidParameterValueException")


async def test_dropped_connection_is_retryable(
    server: DurableHTTPServer, backend: StubBackend
) -> None:
    server.inject(None)  # close the connection without an answer
    async with service_at(server.url) as service:
        with pytest.raises(CheckpointError) as info:
            await service.checkpoint(ARN, backend.token, [], new_client_token())
    error = info.value
    assert error.retryable and error.code is None and error.status is None
    assert error.__cause__ is not None and error.message == str(error.__cause__)


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        async with service_at(f"http://127.0.0.1:{port}") as service:
            with pytest.raises(GetExecutionStateError) as info:
                await service.get_state(ARN, "dG9rZW4=", "1")
    assert info.value.retryable and info.value.code is None


# -- real HTTP in front of adurable.testing.FakeService ------------------------------------------


def fake_service(**kwargs: Any) -> Any:
    testing = pytest.importorskip("adurable.testing")
    return testing.FakeService(**kwargs)


async def test_fake_service_over_http(http_server: DurableHTTPServer) -> None:
    fake = fake_service(page_size=2)
    arn = fake.start_execution('{"order": 7}', function_name="orders")
    token = fake.invocation_event(arn)["CheckpointToken"]
    http_server.reset(fake)
    async with service_at(http_server.url) as service:
        response = await service.checkpoint(
            arn,
            token,
            [
                update("s1", OperationAction.START),
                update("s1", OperationAction.SUCCEED, "1"),
                update("s2", OperationAction.START),
            ],
            new_client_token(),
        )
        assert response.checkpoint_token is not None
        assert {op.id for op in response.new_execution_state.operations} == {"s1", "s2"}
        page = await service.get_state(arn, response.checkpoint_token, "ops:1")
        assert [op.id for op in page.operations] == ["s1", "s2"]
        assert page.operations[0].status is OperationStatus.SUCCEEDED
        assert page.operations[0].end_timestamp is not None
        with pytest.raises(CheckpointError) as stale:  # the old token was consumed
            await service.checkpoint(arn, token, [], new_client_token())
    assert stale.value.retryable
    assert (stale.value.code, stale.value.status) == ("InvalidParameterValueException", 400)
    assert {op.id for op in fake.operations(arn)} >= {"s1", "s2"}


async def test_lost_reply_is_replayed_by_client_token(http_server: DurableHTTPServer) -> None:
    """botocore resends the same ClientToken; the service answers from its cache (§3.3 rule 2)."""
    fake = fake_service()
    arn = fake.start_execution(None)
    token = fake.invocation_event(arn)["CheckpointToken"]
    http_server.reset(fake)
    http_server.inject(None, route=CHECKPOINT, after_backend=True)  # applied, reply lost
    async with service_at(http_server.url, max_attempts=2) as service:
        response = await service.checkpoint(
            arn, token, [update("s1", OperationAction.START)], new_client_token()
        )
        assert response.checkpoint_token is not None
        # the replayed answer carries the token the first (applied) attempt issued
        follow_up = await service.checkpoint(arn, response.checkpoint_token, [], new_client_token())
    assert follow_up.checkpoint_token is not None
    assert http_server.counts == {CHECKPOINT: 3}
    first, retried, _ = http_server.requests
    assert first.body == retried.body


# -- ClientService over an in-memory stub client (no HTTP) -----------------------------------------


class FakeClientError(Exception):
    """Shaped like botocore.exceptions.ClientError."""

    def __init__(self, code: str | None, message: str, status: int | None) -> None:
        self.response: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": status}}
        if code is not None:
            self.response["Error"] = {"Code": code, "Message": message}
        super().__init__(f"An error occurred ({code}) when calling the operation: {message}")


class StubClient:
    """A botocore-shaped client: async methods taking and returning botocore dicts."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def checkpoint_durable_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("checkpoint", kwargs))
        if self.error is not None:
            raise self.error
        return {
            "CheckpointToken": "next",
            "NewExecutionState": {"Operations": [step_op(1)], "NextMarker": "m"},
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    async def get_durable_execution_state(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("state", kwargs))
        if self.error is not None:
            raise self.error
        return {"Operations": [step_op(2)], "ResponseMetadata": {"HTTPStatusCode": 200}}


CLASSIFICATION = [
    # (code, message, status, retryable)
    ("InvalidParameterValueException", "Invalid checkpoint token: abc", 400, True),
    ("InvalidParameterValueException", "invalid checkpoint token", 400, False),
    ("InvalidParameterValueException", "Invalid parent operation id", 400, False),
    ("ResourceNotFoundException", "gone", 404, False),
    ("ResourceConflictException", "conflict", 409, False),
    ("CallbackTimeoutException", "late", 400, False),
    ("TooManyRequestsException", "Rate exceeded", 429, True),
    ("ServiceException", "boom", 500, True),
    ("ServiceException", "bad gateway", 502, True),
    ("ServiceUnavailable", "unavailable", 503, True),
    ("GatewayTimeout", "timeout", 504, True),
    ("KMSAccessDeniedException", "denied", 502, False),
    ("KMSDisabledException", "disabled", 502, False),
    ("KMSInvalidStateException", "invalid state", 502, False),
    ("KMSNotFoundException", "not found", 502, False),
    ("KMSAccessDeniedException", "denied", None, False),
    ("SomethingNew", "no status", None, True),
    ("400", "no x-amzn-ErrorType header", 400, False),
    (None, "no error object", 400, True),  # §3.6 rule 2 needs an error object
]


@pytest.mark.parametrize(("code", "message", "status", "retryable"), CLASSIFICATION)
async def test_classification_table(
    code: str | None, message: str, status: int | None, retryable: bool
) -> None:
    exc = FakeClientError(code, message, status)
    service = ClientService(StubClient(exc))
    with pytest.raises(CheckpointError) as info:
        await service.checkpoint(ARN, "tok", [], "ct")
    error = info.value
    assert error.retryable is retryable
    assert (error.code, error.status) == (code, status)
    assert error.message == str(exc) and error.__cause__ is exc
    with pytest.raises(GetExecutionStateError) as state_info:
        await service.get_state(ARN, "tok", "m")
    assert state_info.value.retryable is retryable
    if code is not None:
        assert classify_error(code, message, status) is retryable


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError(),
        ConnectionResetError("reset by peer"),
        OSError("network unreachable"),
        RuntimeError("something odd"),
    ],
)
async def test_non_service_exceptions_are_retryable(exc: Exception) -> None:
    service = ClientService(StubClient(exc))
    with pytest.raises(CheckpointError) as info:
        await service.checkpoint(ARN, "tok", [], "ct")
    error = info.value
    assert error.retryable and error.code is None and error.status is None
    assert error.__cause__ is exc
    assert error.message == (str(exc) or type(exc).__name__)


async def test_malformed_response_is_retryable() -> None:
    class Garbage(StubClient):
        async def get_durable_execution_state(self, **kwargs: Any) -> dict[str, Any]:
            return {"Operations": [{"Id": "x"}]}  # no Type/Status

    with pytest.raises(GetExecutionStateError) as info:
        await ClientService(Garbage()).get_state(ARN, "tok", "m")
    assert info.value.retryable


async def test_own_errors_pass_through() -> None:
    original = CheckpointError("already translated", retryable=False, code="X", status=400)
    with pytest.raises(CheckpointError) as info:
        await ClientService(StubClient(original)).checkpoint(ARN, "tok", [], "ct")
    assert info.value is original


async def test_empty_token_is_refused_retryably() -> None:
    client = StubClient()
    service = ClientService(client)
    with pytest.raises(CheckpointError) as checkpoint_info:
        await service.checkpoint(ARN, "", [], "ct")
    with pytest.raises(GetExecutionStateError) as state_info:
        await service.get_state(ARN, "", "m")
    assert checkpoint_info.value.retryable and state_info.value.retryable
    assert client.calls == []


async def test_stub_client_requests_and_responses() -> None:
    client = StubClient()
    service = ClientService(client)
    updates = [update("s1", OperationAction.START), update("s1", OperationAction.SUCCEED, "")]
    response = await service.checkpoint(ARN, "tok", updates, "ct-1")
    assert response.checkpoint_token == "next"
    assert response.new_execution_state.next_marker == "m"
    assert response.new_execution_state.operations[0].id == "op-1"
    page = await service.get_state(ARN, "tok", "m")
    assert [op.id for op in page.operations] == ["op-2"]
    await service.get_state(ARN, "tok", "", max_items=5)
    await service.checkpoint(ARN, "tok", [], "")
    assert client.calls == [
        (
            "checkpoint",
            {
                "DurableExecutionArn": ARN,
                "CheckpointToken": "tok",
                "Updates": [u.to_wire() for u in updates],
                "ClientToken": "ct-1",
            },
        ),
        (
            "state",
            {"DurableExecutionArn": ARN, "CheckpointToken": "tok", "MaxItems": 1000, "Marker": "m"},
        ),
        ("state", {"DurableExecutionArn": ARN, "CheckpointToken": "tok", "MaxItems": 5}),
        # no ClientToken: botocore fills in its own idempotency token
        ("checkpoint", {"DurableExecutionArn": ARN, "CheckpointToken": "tok", "Updates": []}),
    ]
    assert client.calls[0][1]["Updates"][1]["Payload"] == ""  # an empty payload is kept


async def test_blocking_client_is_rejected() -> None:
    class Blocking:
        def checkpoint_durable_execution(self, **kwargs: Any) -> dict[str, Any]:
            return {}

        def get_durable_execution_state(self, **kwargs: Any) -> dict[str, Any]:
            return {}

    with pytest.raises(CheckpointError, match="non-awaitable"):
        await ClientService(Blocking()).checkpoint(ARN, "tok", [], "ct")


def test_client_without_the_methods_is_rejected() -> None:
    from adurable._errors import ValidationError

    with pytest.raises(ValidationError):
        ClientService(object())


def test_errors_are_boto_client_errors() -> None:
    assert issubclass(CheckpointError, BotoClientError)
    assert issubclass(GetExecutionStateError, BotoClientError)


# -- laziness --------------------------------------------------------------------------------------


def test_import_does_not_load_botocore() -> None:
    code = textwrap.dedent(
        """
        import sys
        import adurable._service
        loaded = sorted(
            name for name in sys.modules
            if name.split(".")[0] in ("aiobotocore", "botocore", "aiohttp")
        )
        print(",".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


async def test_shared_service_is_one_per_event_loop(
    server: DurableHTTPServer, backend: StubBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adurable._service import close_shared_lambda_service, shared_lambda_service

    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.url)
    await close_shared_lambda_service()  # nothing opened yet on this loop: a no-op
    first = await shared_lambda_service()
    assert await shared_lambda_service() is first
    await first.checkpoint(ARN, backend.token, [], new_client_token())
    await close_shared_lambda_service()
    assert server.counts == {CHECKPOINT: 1}
