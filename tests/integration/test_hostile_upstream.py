"""A hostile or broken upstream: answers CI would never send, and what they must not do to the
gateway (grow it, fool it into an empty success, or make it hand credentials to its callers).

A scripted loopback peer (`fake_ci`) plays CI; the gateway is real, called over real gRPC, and
for the memory figure it runs as its own process (`ci-gateway serve`), whose RSS is read.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.credentials import Credentials
from tests.access.helpers import log_text
from tests.fixtures.serve_process import StartServe, wait_until_serving, write_config
from tests.integration.fake_ci import Scripted, fake_ci, many_elements_body
from tests.integration.helpers import rich_error
from tests.integration.test_upstream_errors import BUCKET, DESCRIBE, REGION, gateway_stub

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M, S = media_pb2, service_pb2

CI_ID = "x-ci-request-id"
GOOD_DESCRIBE = b"<Response><NonExistJobIds>j1</NonExistJobIds></Response>"


def _memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MiB: resident now, and its peak since the process began."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {name: value for name, _, value in (line.partition(":") for line in status)}

    def mib(name: str) -> float:
        return int(fields[name].split()[0]) / 1024

    return mib("VmRSS"), mib("VmHWM")


async def test_refused_oversized_trees_do_not_pile_up_in_the_gateway(
    tmp_path: Path, serve_processes: StartServe, credentials: Credentials
) -> None:
    """Issue 11 item 6, scaled down (bench/hostile_memory.py has the full figure): 8 answers
    at once, each 4 MiB of ~175,000 elements. Before the fix each refusal built a ~40 MiB tree
    and kept it (with CI's body) until the cyclic collector ran: +330 MiB here, never given
    back. Now the element budget refuses before any tree is built, and the refusal keeps
    nothing of the answer."""
    calls = 8
    async with fake_ci(Scripted(200, GOOD_DESCRIBE), Scripted(200, many_elements_body())) as fake:
        config = write_config(
            tmp_path / "gateway.toml",
            {
                "listen": "127.0.0.1:0",
                "default_bucket": BUCKET,
                "default_region": REGION,
                "endpoint_url": fake.url,
                "log_format": "json",
            },
        )
        process = await serve_processes("--config", str(config), credentials=credentials)
        address = str((await process.line("gateway listening"))["address"])
        await wait_until_serving(address)
        pid = process.process.pid
        async with grpc.aio.insecure_channel(address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            await stub.DescribeMediaJobs(DESCRIBE, timeout=30)  # warm: the one good answer
            rest, rest_peak = _memory_mib(pid)
            results = await asyncio.gather(
                *(stub.DescribeMediaJobs(DESCRIBE, timeout=60) for _ in range(calls)),
                return_exceptions=True,
            )
            after, peak = _memory_mib(pid)
    assert len(fake.requests) == 1 + calls  # refused, not retried
    for result in results:
        assert isinstance(result, grpc.aio.AioRpcError), result
        error = rich_error(result)
        assert error.code is grpc.StatusCode.UNAVAILABLE
        assert error.error_info is not None
        assert error.error_info.reason == "UPSTREAM_PROTOCOL_ERROR"
        assert "more than 100000" in error.message
    # The bodies themselves (8 x 4 MiB) are in memory at once while they are read; no tree is.
    assert peak - max(rest, rest_peak) < 120, (rest, rest_peak, peak)
    assert after - rest < 60, (rest, after)


# ---- an empty 200 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda stub: stub.DescribeMediaJobs(DESCRIBE, timeout=10),
        lambda stub: stub.ListMediaJobs(S.ListMediaJobsRequest(), timeout=10),
        lambda stub: stub.GenerateMediaInfo(
            S.GenerateMediaInfoRequest(input=M.Input(object="input/a.mp4")), timeout=10
        ),
        lambda stub: stub.GetMediaInfo(S.GetMediaInfoRequest(object="input/a.mp4"), timeout=10),
    ],
    ids=["describe", "list", "generate-media-info", "get-media-info"],
)
@pytest.mark.parametrize("body", [b"", b" \r\n "], ids=["empty", "whitespace"])
async def test_an_empty_200_where_ci_always_answers_is_a_protocol_error(
    call: Callable[[Stub], Awaitable[object]], body: bytes
) -> None:
    async with fake_ci(Scripted(200, body)) as fake, gateway_stub(fake) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(stub)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.error_info is not None
    assert error.error_info.reason == "UPSTREAM_PROTOCOL_ERROR"
    assert error.error_info.metadata["http_status"] == "200"
    # Sent once, not retried; a listing looks up the queue it names first (an empty 200 is no
    # answer to that either: the listing then goes without one).
    assert len([request for request in fake.requests if request.path != "/queue"]) == 1


async def test_an_empty_200_is_cancel_s_documented_answer() -> None:
    async with fake_ci(Scripted(200, b"")) as fake, gateway_stub(fake) as stub:
        await stub.CancelMediaJob(S.CancelMediaJobRequest(job_id="j1"), timeout=10)
    assert [request.method for request in fake.requests] == ["PUT"]


# ---- a peer that echoes the request --------------------------------------------------------

XML_ERROR = (
    b"<Error><Code>InvalidArgument</Code><Message>{echo}</Message><RequestId>{echo}</RequestId>"
    b"<TraceId>{echo}</TraceId><Resource>{echo}</Resource></Error>"
)
ECHOES = {
    "xml-error": Scripted(400, XML_ERROR, echo_each="{name}: {value}\n", echo_headers=(CI_ID,)),
    "json-error": Scripted(
        403,
        b'{"code": "AccessDenied", "message": "{echo}", "request_id": "{echo}"}',
        {"Content-Type": "application/json"},
        echo_each="{name}={value}&",
    ),
    "html-page": Scripted(
        502, b"<html><body><pre>{echo}</pre></body></html>", echo_each="{name}: {value}\n"
    ),
    "redirect": Scripted(302, echo_headers=("Location", CI_ID)),
    "answer-quoting-it": Scripted(
        200,
        b"<Response><JobsDetail><Operation><JobLevel>{echo}</JobLevel></Operation></JobsDetail>"
        b"</Response>",
        echo_each="{value}",
        echo_only=("Authorization",),  # only its first 40 characters are quoted
    ),
    "success-header": Scripted(200, GOOD_DESCRIBE, echo_headers=(CI_ID, "x-cos-request-id")),
}
# An HTML page has no field the gateway passes on: nothing to redact there, nothing leaks.
SHOWS_NOTHING = {"html-page"}
# A Tencent-shaped SecretId is recognised by its shape; any other by being the one in use.
ID_PREFIXES = {"akid": "AKID", "other-id": "sid-"}


@pytest.mark.parametrize("keys", sorted(ID_PREFIXES))
@pytest.mark.parametrize("mode", sorted(ECHOES))
async def test_an_echoing_peer_hands_no_credential_to_the_caller_or_the_log(
    mode: str, keys: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11 item 8: whatever CI (or a middlebox) echoes of the signed request, the caller
    sees neither the SecretId, the signature, the token nor the Authorization value: not in
    the status message, ErrorInfo, RequestInfo, trailing metadata, nor any log line."""
    caplog.set_level(logging.DEBUG)
    credentials = Credentials(
        ID_PREFIXES[keys] + secrets.token_hex(16),
        "SK-" + secrets.token_hex(16),
        "TOK-" + secrets.token_urlsafe(24),
    )
    seen: list[str] = []
    async with fake_ci(ECHOES[mode]) as fake, gateway_stub(fake, credentials) as stub:
        call = stub.DescribeMediaJobs(DESCRIBE, timeout=10)
        try:
            await call
        except grpc.aio.AioRpcError as caught:
            error = rich_error(caught)
            seen += [str(error), caught.debug_error_string() or ""]
            assert error.code is not grpc.StatusCode.OK
        seen.append(repr(await call.trailing_metadata()))
    authorization = fake.requests[0].headers["Authorization"]
    signature = authorization.rsplit("q-signature=", 1)[1]
    assert fake.requests[0].headers["x-ci-security-token"] == credentials.token
    shown = "\n".join([*seen, log_text(caplog)])
    assert ("[REDACTED]" in shown) is (mode not in SHOWS_NOTHING)
    for secret in (credentials.secret_id, signature, credentials.token or "", authorization):
        assert secret not in shown, f"{mode}: {secret[:8]}... leaked"
