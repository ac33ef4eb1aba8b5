"""Every async test runs on asyncio and on trio (anyio's pytest plugin)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("fast", max_examples=10, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": False}), id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    return request.param


#: Host settings that would point botocore somewhere else or give it other credentials.
AWS_HOST_SETTINGS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "ADURABLE_ENDPOINT_URL",
)


@pytest.fixture
def no_aws_host(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """Nothing from the host's AWS set-up: no credentials, profile, region, config file, IMDS
    or endpoint override."""
    for name in AWS_HOST_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.path.join(str(tmp_path), "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.path.join(str(tmp_path), "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws_env(no_aws_host: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``no_aws_host`` plus dummy credentials and a region, as a client of a local server needs."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
