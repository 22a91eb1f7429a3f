"""Tencent STS through Tencent's own SDK, against a loopback STS endpoint, and several upstream
accounts: one bucket signed with temporary credentials, the others with the main keys."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path

import grpc
import pytest

from gateway import cli
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.config.load import proxy_from_environment
from gateway.config.settings import Settings, Upstream
from gateway.credentials import (
    BucketCredentialsProvider,
    Credentials,
    StaticCredentialsProvider,
    has_valid_credentials,
)
from gateway.credentials.config_file import load_credentials_file
from gateway.credentials.refreshing import FetchError, RefreshingCredentialsProvider
from gateway.credentials.sts import AssumeRoleSpec, StsFetcher
from gateway.errors import Reason
from tests.access.helpers import (
    CANARY,
    FakeClock,
    FakeSleep,
    RecordingCredentials,
    assert_no_canary,
    log_text,
)
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.fixtures.accounts import OTHER_BUCKET, ROLE, Serve, StsEndpoint
from tests.fixtures.tcp import stream_server
from tests.integration.helpers import rich_error

# Long enough that a call which waits for a hanging STS fails by its deadline, not by a hang.
CALL_TIMEOUT_S = 5


def fetcher(sts: StsEndpoint, base: Credentials) -> StsFetcher:
    spec = AssumeRoleSpec(
        role_arn=ROLE, region=REGION, endpoint=sts.url_host, scheme="http", duration_s=7200
    )
    return StsFetcher(spec, StaticCredentialsProvider(base, "base"))


async def test_assume_role_through_the_sdk_off_the_event_loop(
    sts: StsEndpoint, upstream_keys: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDK logs whole responses at DEBUG: must not reach us
    issued = await fetcher(sts, upstream_keys)()
    assert issued == sts.issued[0]
    assert issued.token and issued.expires_at == sts.issued[0].expires_at

    (request,) = sts.requests
    headers = request["headers"]
    assert headers["X-TC-Action"] == "AssumeRole"
    assert headers["X-TC-Region"] == REGION
    assert headers["Authorization"].startswith(
        f"TC3-HMAC-SHA256 Credential={upstream_keys.secret_id}/"
    )
    assert request["body"] == {
        "RoleArn": ROLE,
        "RoleSessionName": "ci-gateway",
        "DurationSeconds": 7200,
    }
    logged = log_text(caplog)
    for secret in (issued.secret_key, str(issued.token), upstream_keys.secret_key):
        assert secret not in logged


async def test_an_sts_error_names_its_code_and_request_id_only(
    sts: StsEndpoint, upstream_keys: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sts.error = ("AuthFailure.SignatureFailure", f"echoing {CANARY}-{secrets.token_hex(4)}")
    with pytest.raises(FetchError) as caught:
        await fetcher(sts, upstream_keys)()
    assert str(caught.value) == (
        "STS AssumeRole failed: AuthFailure.SignatureFailure (RequestId req-1)"
    )
    provider = RefreshingCredentialsProvider(fetcher(sts, upstream_keys), name=f"sts:{ROLE}")
    await provider.start()  # fails, logs, stays not ready, keeps retrying in the background
    try:
        assert not has_valid_credentials(provider)
    finally:
        await provider.close()
    assert "AuthFailure.SignatureFailure" in log_text(caplog)
    assert CANARY not in log_text(caplog)


async def test_each_bucket_is_signed_by_the_account_that_owns_it(
    tmp_path: Path,
    sts: StsEndpoint,
    serve: Serve,
    seen: RecordingCredentials,
    upstream_keys: Credentials,
) -> None:
    """Built from a credentials file, as `serve --credentials-file` does: the main account from
    a mounted directory, the other bucket's account by AssumeRole with the main keys."""
    secret = tmp_path / "main-keys"
    secret.mkdir()
    (secret / "secret_id").write_text(upstream_keys.secret_id)
    (secret / "secret_key").write_text(upstream_keys.secret_key)
    config = tmp_path / "credentials.toml"
    config.write_text(
        f"""
default = "main"

[accounts.main]
source = "directory"
path = "{secret}"

[accounts.partner]
source = "sts"
role_arn = "{ROLE}"
region = "{REGION}"
base = "main"
endpoint = "{sts.url_host}"
scheme = "http"

[buckets]
"{OTHER_BUCKET}" = "partner"
"""
    )
    provider = load_credentials_file(config)
    assert isinstance(provider, BucketCredentialsProvider)
    await provider.start()
    try:
        assert has_valid_credentials(provider)
        assert provider.expires_at() == sts.issued[0].expires_at  # the earliest expiry
        gateway = await serve(credentials=provider)
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            for bucket in (BUCKET, OTHER_BUCKET, BUCKET):
                submitted = await stub.SubmitMediaJob(
                    service_pb2.SubmitMediaJobRequest(
                        bucket=bucket,
                        request=media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY)),
                    ),
                    timeout=10,
                )
                await stub.DescribeMediaJobs(
                    service_pb2.DescribeMediaJobsRequest(
                        bucket=bucket, job_ids=[submitted.jobs_detail.job_id]
                    ),
                    timeout=10,
                )
    finally:
        await provider.close()
    main, partner = upstream_keys.secret_id, sts.issued[0].secret_id
    assert seen.ids == [main, main, partner, partner, main, main]
    assert len(sts.requests) == 1  # one AssumeRole, reused for every call


async def test_sts_goes_out_through_the_egress_proxy_ci_goes_through(
    tmp_path: Path, sts: StsEndpoint, upstream_keys: Credentials
) -> None:
    """A pod whose only way out is `upstream.proxy_url` must reach STS that way too, or it has
    no credentials to sign CI's calls with. STS is named by a host only the proxy can reach
    (`.invalid` never resolves), and the proxy here is the loopback STS itself, which answers
    the absolute-form request `requests` sends a proxy for an http URL."""
    proxy_url = f"http://{sts.url_host}"
    settings = Settings(upstream=Upstream(proxy_url=proxy_url, proxy_from_env=False))
    assert cli._egress_proxy_for(settings)("sts.tencentcloudapi.com", 443) == proxy_url
    listed = Upstream(proxy_url=proxy_url, no_proxy=".tencentcloudapi.com", proxy_from_env=False)
    assert cli._egress_proxy_for(Settings(upstream=listed))("sts.tencentcloudapi.com", 443) is None
    assert cli._egress_proxy_for(Settings())("sts.tencentcloudapi.com", 443) is None

    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "secret_id").write_text(upstream_keys.secret_id)
    (tmp_path / "keys" / "secret_key").write_text(upstream_keys.secret_key)
    config = tmp_path / "credentials.toml"
    config.write_text(
        f"""
default = "partner"

[accounts.main]
source = "directory"
path = "{tmp_path / "keys"}"

[accounts.partner]
source = "sts"
role_arn = "{ROLE}"
region = "{REGION}"
base = "main"
endpoint = "sts.proxied.invalid"
scheme = "http"
"""
    )
    provider = load_credentials_file(config, proxy_for=cli._egress_proxy_for(settings))
    assert proxy_url not in repr(provider)
    await provider.start()
    try:
        assert has_valid_credentials(provider)
    finally:
        await provider.close()
    (request,) = sts.requests
    assert request["headers"]["Host"] == "sts.proxied.invalid"


@pytest.mark.parametrize(
    ("upstream", "no_proxy"),
    [
        pytest.param(Upstream(proxy_from_env=False), None, id="proxy_from_env-off"),
        pytest.param(Upstream(), "127.0.0.1", id="NO_PROXY-lists-the-endpoint"),
    ],
)
async def test_sts_goes_direct_when_the_gateway_decided_so_whatever_the_environment_says(
    sts: StsEndpoint,
    upstream_keys: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    upstream: Upstream,
    no_proxy: str | None,
) -> None:
    """Given no proxy, Tencent's SDK took HTTP(S)_PROXY from the environment itself (NO_PROXY
    by a substring match of `host:port`), and `requests` under it read them again, so
    `proxy_from_env = false`, or NO_PROXY naming STS, held for CI's calls and not for STS's.
    The variables here name a listening proxy that records who connects; the settings read
    them as `ci-gateway serve` does, and STS must be reached without the proxy."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with stream_server(refuse) as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        if no_proxy is not None:
            monkeypatch.setenv("NO_PROXY", no_proxy)
        settings = proxy_from_environment(Settings(upstream=upstream), os.environ)
        host, port = sts.url_host.split(":")
        decided = cli._egress_proxy_for(settings)(host, int(port))
        assert decided is None

        spec = AssumeRoleSpec(
            role_arn=ROLE, region=REGION, endpoint=sts.url_host, scheme="http", proxy=decided
        )
        issued = await StsFetcher(spec, StaticCredentialsProvider(upstream_keys, "base"))()
    assert issued == sts.issued[0]
    assert proxy.accepted == 0


async def test_while_sts_fails_calls_use_the_keys_in_hand_without_waiting_then_fail_fast(
    sts: StsEndpoint,
    serve: Serve,
    seen: RecordingCredentials,
    upstream_keys: Credentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The last minutes of the temporary keys (the provider's clock is moved; CI's is real, so
    the keys stay good for CI), with STS failing and then hanging. Once a renewal has failed,
    calls are signed with the keys in hand at once while the background retries on its
    backoff, even while that retry hangs in STS; within the safety margin of expiry they fail
    at once, UNAVAILABLE, naming the source and no secret; the held retry then renews."""
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    sts.clock = clock  # new keys from STS expire two hours after the provider's now
    background = FakeSleep()  # the renewal loop's sleeps end only when the test says
    provider = RefreshingCredentialsProvider(
        fetcher(sts, upstream_keys), name=f"sts:{ROLE}", clock=clock, sleep=background
    )
    await provider.start()
    gateway = await serve(credentials=provider)
    lifetime = (sts.issued[0].expires_at or 0.0) - clock()
    texts: list[str] = []
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)

            async def call() -> None:
                request = service_pb2.ListMediaJobsRequest(size=1)
                await stub.ListMediaJobs(request, timeout=CALL_TIMEOUT_S)

            await background.next_delay()  # the loop sleeps until the advisory point
            clock.advance(lifetime - 9 * 60)  # 9 min left: the mandatory window
            sts.error = ("InternalError", f"echoing {CANARY}")
            await call()  # waits for this first try, which fails: the keys in hand sign it
            assert len(sts.requests) == 2

            sts.error, sts.gate = None, asyncio.Event()  # STS now holds every request
            background.release()  # the loop wakes: the retry is not due yet ...
            assert await background.next_delay() == 5.0  # ... and waits out the backoff
            clock.advance(5.0)
            background.release()
            await sts.wait_for_requests(3)  # the retry is in flight, held by STS
            for _ in range(3):
                await call()  # signed with the keys in hand, without waiting for STS
            # Four listings, and the look-up of the queue they name (`upstream.default_queue`).
            assert seen.ids == [sts.issued[0].secret_id] * 5

            clock.advance(9 * 60 - 5.0 - 30)  # 30 s left: within the 60 s margin
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call()  # at once, while the retry still hangs
            refused = rich_error(caught.value)
            assert refused.code == grpc.StatusCode.UNAVAILABLE
            assert refused.error_info is not None
            assert refused.error_info.reason == Reason.CREDENTIALS_UNAVAILABLE.value
            assert f"sts:{ROLE}" in refused.message and "retrying" in refused.message
            assert len(seen.ids) == 5 and len(sts.requests) == 3  # nothing sent to either
            texts += [refused.message, str(refused.error_info)]

            sts.gate.set()  # STS answers the held retry
            await asyncio.wait_for(provider.wait_for_generation(2), 5)
            await call()
            assert seen.ids[-1] == sts.issued[1].secret_id
    finally:
        if sts.gate is not None:
            sts.gate.set()  # never leave the SDK's worker thread waiting
        await provider.close()
    secrets_ = [upstream_keys.secret_key, *(c.secret_key for c in sts.issued)]
    secrets_ += [str(c.token) for c in sts.issued]
    assert_no_canary([*texts, log_text(caplog)], [*secrets_, CANARY])
