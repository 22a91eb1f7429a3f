"""Logs: one JSON line per RPC and per upstream attempt, tagged with the request id, and never
a secret, whatever the format or outcome."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiohttp
import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.logs import JsonFormatter, TextFormatter
from tests.conftest import SAMPLE_KEY
from tests.fixtures.logs import access_lines, refusing_malformed, rendered
from tests.integration.helpers import rich_error

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

API = "/ci.media.v1.MediaJobService/"
MAX_LOG_WAITS = 200  # x 10 ms


@pytest.fixture
def credentials() -> Credentials:
    """A secret key no log line may ever contain (overrides the suite's random one)."""
    return Credentials(
        "AKID" + secrets.token_hex(16), "SECRET-KEY-MUST-NOT-BE-LOGGED-" + secrets.token_hex(8)
    )


@pytest.fixture(params=["json", "text"])
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Everything logged at DEBUG and above, rendered by the gateway's own formatter."""
    with rendered(JsonFormatter() if request.param == "json" else TextFormatter()) as stream:
        yield stream


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    with rendered(JsonFormatter()) as stream:
        yield stream


async def test_one_json_line_per_rpc_and_per_attempt(
    json_log: io.StringIO, api: Stub, emulator: RunningEmulator
) -> None:
    call = api.GetMediaInfo(
        service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY),
        metadata=(("x-request-id", "log-ok-1"),),
        timeout=10,
    )
    await call
    ci_request_id = dict(await call.trailing_metadata())["x-ci-request-id"]
    with pytest.raises(grpc.aio.AioRpcError):
        await api.GetMediaInfo(
            service_pb2.GetMediaInfoRequest(object="input/none.mp4"),
            metadata=(("x-request-id", "log-err-1"),),
            timeout=10,
        )
    # An abort sends the status before the handler's stack unwinds to the access line: the
    # caller (in this loop) may hear the error first.
    for _ in range(MAX_LOG_WAITS):
        if '"request_id":"log-err-1","grpc_method"' in json_log.getvalue():
            break
        await asyncio.sleep(0.01)

    lines = json_log.getvalue().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [r for r in records if r["logger"] == "gateway.access" and r["msg"] == "rpc"]
    ok, failed = (
        next(r for r in access if r["request_id"] == rid) for rid in ("log-ok-1", "log-err-1")
    )
    assert ok["grpc_method"] == API + "GetMediaInfo" and ok["grpc_code"] == "OK"
    assert ok["level"] == "INFO" and isinstance(ok["duration_ms"], float)
    assert ok["ci_request_id"] == ci_request_id and ok["attempts"] == 1
    assert ok["peer"].startswith("ipv4:127.0.0.1:") and "grpc-python" in ok["user_agent"]
    assert "trace_id" not in ok  # only a gateway with tracing on logs the trace's ids
    assert failed["grpc_code"] == "NOT_FOUND" and failed["reason"] == "UPSTREAM_NOT_FOUND"
    assert failed["ci_request_id"]  # from the error's RequestInfo
    attempts = [r for r in records if r["msg"] == "upstream attempt"]
    assert {(r["request_id"], r["operation"], r["outcome"], r["level"]) for r in attempts} == {
        ("log-ok-1", "GetMediaInfo", "200", "DEBUG"),
        ("log-err-1", "GetMediaInfo", "404", "DEBUG"),
    }
    assert sum(1 for r in access if r["request_id"] in ("log-ok-1", "log-err-1")) == 2


async def test_text_format_carries_the_same_fields(api: Stub) -> None:
    with access_lines(TextFormatter()) as stream:
        await api.GetMediaInfo(
            service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY),
            metadata=(("x-request-id", "text-1"),),
            timeout=10,
        )
    (line,) = stream.getvalue().splitlines()
    assert " INFO gateway.access: rpc " in line
    assert "grpc_code=OK" in line and "request_id=text-1" in line
    assert f"grpc_method={API}GetMediaInfo" in line


async def test_no_secret_in_any_log_line_error_or_metric(
    captured: io.StringIO,
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
) -> None:
    wrong = Credentials(credentials.secret_id, "WRONG-SECRET-MUST-NOT-BE-LOGGED-" + "x" * 8)
    seen: list[str] = []
    right_gw = await start_gateway(
        replace(settings, metrics_listen="127.0.0.1:0"), StaticCredentialsProvider(credentials)
    )
    wrong_gw = await start_gateway(settings, StaticCredentialsProvider(wrong))
    try:
        for gw in (right_gw, wrong_gw):
            await exercise(gw, seen)
        async with http.get(f"http://{right_gw.ops_address}/metrics") as response:
            seen.append(await response.text())
    finally:
        await right_gw.stop(grace_s=0)
        await wrong_gw.stop(grace_s=0)
    text = captured.getvalue()
    assert "SignatureDoesNotMatch" in text or "UPSTREAM_AUTH_FAILED" in text  # the bad key ran
    assert "upstream attempt" in text  # DEBUG lines were rendered
    everything = text + "\n".join(seen)
    for secret in (credentials.secret_key, wrong.secret_key):
        assert secret not in everything


async def exercise(gateway: RunningGateway, seen: list[str]) -> None:
    """Success, CI error, validation error and (for a wrong key) an auth failure."""
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub: Stub = service_pb2_grpc.MediaJobServiceStub(channel)
        calls: list[Any] = [
            stub.GetMediaInfo(service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=10),
            stub.GetMediaInfo(service_pb2.GetMediaInfoRequest(object="input/none"), timeout=10),
            stub.SubmitMediaJob(
                service_pb2.SubmitMediaJobRequest(
                    request=media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY))
                ),
                timeout=10,
            ),
            stub.SubmitMediaJob(service_pb2.SubmitMediaJobRequest(), timeout=10),
        ]
        for call in calls:
            try:
                await call
            except grpc.aio.AioRpcError as error:
                rich = rich_error(error)
                seen.append(f"{rich.message} {rich.error_info} {error.trailing_metadata()}")
            else:
                seen.append(str(await call.trailing_metadata()))


async def test_the_ops_port_logs_a_request_it_cannot_parse_in_one_line(
    ops_gateway: RunningGateway,
) -> None:
    """aiohttp logs such a request at ERROR with a traceback quoting it; anyone who can reach
    the ops port could fill the log with them. One WARNING line each, no traceback, no text of
    the request."""
    assert ops_gateway.ops_address is not None
    host, _, port = ops_gateway.ops_address.rpartition(":")
    request = b"GET /metrics?quoted-by-aiohttp HTTP/1.7\r\nHost: a\r\n\r\n"
    answer, refused, logged = await refusing_malformed(host, int(port), request, 10)
    assert answer.startswith(b"HTTP/1.0 400 ")
    assert refused["msg"].startswith("ops request refused (400)")
    assert "quoted-by-aiohttp" not in logged
