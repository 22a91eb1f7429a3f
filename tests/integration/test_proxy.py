"""A real gateway that reaches the emulator only through an egress proxy (`[upstream]`).

The gateway's `endpoint_url` names a host only the proxy can resolve (`.invalid`), so an answer
proves the gateway went through the proxy. A wrong proxy password fails the call UNAVAILABLE
(`UPSTREAM_PROXY_REFUSED`, `request_sent=false`) after one attempt, as a further one would be
refused the same way, and the password shows up in no log line at DEBUG and no error a caller
sees; a proxy that cannot reach CI (502) is retried, a job submit included (nothing reached CI).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2, service_pb2_grpc
from gateway.api.server import start_gateway
from gateway.config.settings import Retry, Settings, Upstream
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.logs import JsonFormatter
from tests.conftest import SAMPLE_KEY, settings_for
from tests.fixtures.connect_proxy import connect_proxy
from tests.fixtures.logs import rendered
from tests.integration.helpers import rich_error
from tests.integration.test_jobs import assert_matches_sample, submit

S = service_pb2
EMULATOR_HOST = "ci-emulator.invalid"  # resolvable by the proxy only
USER = "egress"
PASSWORD = "pr0xy-pa55-c4n4ry"


def proxied(emulator: RunningEmulator, proxy_url: str) -> Settings:
    """The emulator's settings, but at a name only the proxy resolves, through `proxy_url`."""
    fast_retries = Retry(max_attempts=3, transient_base_s=0.01, throttled_base_s=0.01)
    settings = settings_for(emulator, upstream=Upstream(proxy_url=proxy_url), retry=fast_retries)
    return replace(settings, endpoint_url=f"http://{EMULATOR_HOST}:{port_of(emulator)}")


def port_of(emulator: RunningEmulator) -> str:
    return emulator.url.rpartition(":")[2]


@contextlib.asynccontextmanager
async def gateway_stub(
    settings: Settings, credentials: Credentials
) -> AsyncIterator[service_pb2_grpc.MediaJobServiceAsyncStub]:
    running = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield service_pb2_grpc.MediaJobServiceStub(channel)
    finally:
        await running.stop(grace_s=0)


async def test_the_gateway_reaches_ci_only_through_the_proxy(
    emulator: RunningEmulator, credentials: Credentials
) -> None:
    hosts = {EMULATOR_HOST: "127.0.0.1"}
    async with connect_proxy(credentials=(USER, PASSWORD), hosts=hosts) as proxy:
        settings = proxied(emulator, proxy.url_with(USER, PASSWORD))
        async with gateway_stub(settings, credentials) as stub:
            for _ in range(2):
                answer = await stub.GetMediaInfo(
                    S.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=20
                )
                assert_matches_sample(answer.media_info)
            detail = await submit(stub)
            assert detail.job_id
    # One tunnel, kept alive for all three calls, with the proxy's credentials.
    assert proxy.connects == [f"{EMULATOR_HOST}:{port_of(emulator)}"]
    assert proxy.authorizations[0] is not None and PASSWORD not in proxy.authorizations[0]
    assert proxy.upstream_bytes.count(b"HTTP/1.1\r\n") == 3
    assert f"Host: {settings.default_bucket}.ci.".encode() in proxy.upstream_bytes


@pytest.mark.parametrize("call", ["GetMediaInfo", "SubmitMediaJob"])
async def test_a_proxy_refusing_the_credentials_fails_unavailable_unsent_and_unlogged(
    emulator: RunningEmulator, credentials: Credentials, call: str
) -> None:
    hosts = {EMULATOR_HOST: "127.0.0.1"}
    async with connect_proxy(credentials=(USER, "the-right-one"), hosts=hosts) as proxy:
        settings = proxied(emulator, proxy.url_with(USER, PASSWORD))
        with rendered(JsonFormatter()) as logs:
            async with gateway_stub(settings, credentials) as stub:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    if call == "GetMediaInfo":
                        await stub.GetMediaInfo(
                            S.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=20
                        )
                    else:
                        await submit(stub)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert "the proxy refused the tunnel to CI: 407 Proxy Authentication Required" in (
        error.message
    )
    assert error.error_info is not None
    assert error.error_info.reason == "UPSTREAM_PROXY_REFUSED"
    assert error.error_info.metadata["request_sent"] == "false"
    assert error.error_info.metadata["proxy_status"] == "407"
    # Never sent, and never retried: the next attempt's credentials would be the same.
    assert len(proxy.connects) == 1
    assert proxy.upstream_bytes == b""
    texts = [logs.getvalue(), str(caught.value), repr(caught.value.trailing_metadata())]
    assert logs.getvalue().count('"msg":"upstream attempt"') == 1
    # The start line names the proxy in use, by host and port only.
    assert f'"upstream_proxy":"{proxy.url.removeprefix("http://")}"' in logs.getvalue()
    for text in texts:
        assert PASSWORD not in text and (proxy.authorizations[0] or "-") not in text


async def test_a_proxy_that_cannot_reach_ci_is_retried_even_for_a_submit(
    emulator: RunningEmulator, credentials: Credentials
) -> None:
    bad_gateway = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
    async with connect_proxy(answer=bad_gateway) as proxy:
        settings = proxied(emulator, proxy.url)
        async with gateway_stub(settings, credentials) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await submit(stub)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.UNAVAILABLE and error.error_info is not None
    assert error.error_info.reason == "UPSTREAM_PROXY_REFUSED"
    assert error.error_info.metadata["proxy_status"] == "502"
    # 5xx: the proxy's way to CI may come back, and nothing reached CI: every attempt made.
    assert len(proxy.connects) == settings.retry.max_attempts
    assert emulator.state.requests_seen == 0
