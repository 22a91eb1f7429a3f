"""The secret key never reaches a log line or an error a client sees, whatever happens."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2
from gateway.credentials import Credentials
from tests.conftest import SAMPLE_KEY
from tests.integration.helpers import rich_error

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub


async def test_secret_key_is_in_no_log_line_or_error(
    stub: Stub,
    emulator: RunningEmulator,
    credentials: Credentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    job = (
        await stub.SubmitMediaJob(
            service_pb2.SubmitMediaJobRequest(
                request=media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY))
            ),
            timeout=10,
        )
    ).jobs_detail
    await emulator.state.wait_for_job_state(job.job_id, {"Success", "Failed"}, timeout=20)
    await stub.DescribeMediaJobs(service_pb2.DescribeMediaJobsRequest(job_ids=[job.job_id]))
    failing: list[Awaitable[object]] = [
        stub.GetMediaInfo(service_pb2.GetMediaInfoRequest(object="input/none.mp4"), timeout=10),
        stub.CancelMediaJob(service_pb2.CancelMediaJobRequest(job_id=job.job_id), timeout=10),
        stub.SubmitMediaJob(service_pb2.SubmitMediaJobRequest(), timeout=10),
    ]
    for call in failing:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = rich_error(caught.value)
        errors.append(f"{error.message} {error.error_info} {error.request_info}")
    assert len(errors) == 3
    text = caplog.text + "\n".join(errors)
    assert "CI GET" in caplog.text  # the gateway's debug logging of attempts ran
    assert credentials.secret_key not in text
