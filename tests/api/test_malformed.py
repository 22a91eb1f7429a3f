"""Issue 11 item 9: bytes that are no valid request get INVALID_ARGUMENT (MALFORMED_REQUEST),
never reach CI, and cost the log at most one warning line a minute, never a traceback.

The calls go over a real channel with no serializer, so the gateway receives exactly the bytes
the test wrote, as it would from a broken or hostile client.
"""

from __future__ import annotations

import logging

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from ci_emulator.server import RunningEmulator
from gateway.api.malformed import RateLimitedWarning, Undecodable
from gateway.api.server import RunningGateway
from tests.access.helpers import FakeClock
from tests.integration.helpers import rich_error

API = "/ci.media.v1.MediaJobService/"
CORRUPT = b"\xff\xff\xff\xff"  # a field tag whose varint never ends
BAD_UTF8 = b"\x0a\x02\xc3\x28"  # field 1 (`bucket`), 2 bytes that are no UTF-8
MALFORMED = {"corrupt": CORRUPT, "bad-utf8": BAD_UTF8}


def _malformed_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gateway.api.malformed"]


@pytest.mark.parametrize("data", sorted(MALFORMED))
async def test_every_rpc_refuses_malformed_bytes_with_invalid_argument(
    data: str,
    gateway: RunningGateway,
    emulator: RunningEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        for rpc in (
            "SubmitMediaJob", "DescribeMediaJobs", "ListMediaJobs", "CancelMediaJob",
            "GenerateMediaInfo", "GetMediaInfo", "WaitMediaJob",
        ):  # fmt: skip
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary(API + rpc, None, None)(MALFORMED[data], timeout=10)
            error = rich_error(caught.value)
            assert error.code is grpc.StatusCode.INVALID_ARGUMENT, rpc
            assert error.error_info is not None
            assert error.error_info.reason == "MALFORMED_REQUEST"
            assert error.error_info.metadata["attempts"] == "0"
            assert rpc in error.message
        stream = channel.unary_stream(API + "WatchMediaJob", None, None)(
            MALFORMED[data], timeout=10
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stream:  # ends at the refusal
                pass
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert sum(emulator.state.operations.values()) == 0  # CI was never asked
    # Eight refusals: one warning line, no error, no traceback anywhere.
    warnings = _malformed_lines(caplog)
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert all("\n" not in r.getMessage() for r in caplog.records)
    # The access log still has one line per call, with the code and reason.
    access = [r for r in caplog.records if r.name == "gateway.access" and r.levelno == logging.INFO]
    reasons = [r.__dict__["fields"]["reason"] for r in access]
    assert reasons == ["MALFORMED_REQUEST"] * 8


async def test_a_malformed_message_in_a_request_stream_is_refused_too(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """Reflection is the one client stream, open to anyone (no credentials)."""
    caplog.set_level(logging.INFO)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        info = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", None, None
        )
        call = info(timeout=10)  # type: ignore[call-arg]  # written below, not iterated
        await call.write(
            reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
        )
        assert await call.read()  # a well-formed request is answered
        await call.write(BAD_UTF8)
        await call.done_writing()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert len(_malformed_lines(caplog)) == 1


def test_the_warning_is_one_line_per_interval_and_counts_what_it_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    clock = FakeClock(1000.0)
    warning = RateLimitedWarning(every_s=60.0, clock=clock)
    bad = Undecodable("Error parsing message", 4)
    for _ in range(5):
        warning.note("/x/Y", "ipv4:127.0.0.1:1", bad)
    clock.advance(59.9)
    warning.note("/x/Y", "ipv4:127.0.0.1:1", bad)
    assert [r.__dict__["fields"]["unreported"] for r in _malformed_lines(caplog)] == [0]
    clock.advance(0.1)
    warning.note("/x/Y", "ipv4:127.0.0.1:1", bad)
    assert [r.__dict__["fields"]["unreported"] for r in _malformed_lines(caplog)] == [0, 5]
