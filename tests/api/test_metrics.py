"""The Prometheus endpoint: standard gRPC names and the CI side, with exact counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import grpc
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from ci_emulator.hooks import RequestHook
from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2
from gateway.api.health import API_SERVICE, OVERALL
from gateway.api.metrics import GatewayMetrics, UpstreamMetrics, bounded_operation, bounded_outcome
from gateway.api.server import RunningGateway
from tests.api.conftest import Labels, health_status, labels, scrape
from tests.conftest import SAMPLE_KEY

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

MISSING_KEY = "input/no-such-video.mp4"


def fail_once_with_503() -> RequestHook:
    fired = False

    async def hook(request: web.Request, target: Target) -> web.StreamResponse | None:
        nonlocal fired
        if fired:
            return None
        fired = True
        return web.Response(status=503)

    return hook


def rpc(method: str, service: str = API_SERVICE) -> dict[str, str]:
    return {"grpc_type": "unary", "grpc_service": service, "grpc_method": method}


async def test_metrics_count_known_calls_exactly(
    ops_gateway: RunningGateway,
    api: Stub,
    channel: grpc.aio.Channel,
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
) -> None:
    await api.GetMediaInfo(service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await api.GetMediaInfo(service_pb2.GetMediaInfoRequest(object=MISSING_KEY), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await api.SubmitMediaJob(service_pb2.SubmitMediaJobRequest(), timeout=10)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    emulator.state.request_hooks.append(fail_once_with_503())
    await api.GetMediaInfo(service_pb2.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=10)
    await health_status(channel, OVERALL)

    m = await scrape(http, ops_gateway)
    started, handled = m["grpc_server_started_total"], m["grpc_server_handled_total"]
    assert started[labels(**rpc("GetMediaInfo"))] == 3
    assert started[labels(**rpc("SubmitMediaJob"))] == 1
    assert started[labels(**rpc("ListMediaJobs"))] == 0  # exported before its first call
    assert handled[labels(**rpc("GetMediaInfo"), grpc_code="OK")] == 2
    assert handled[labels(**rpc("GetMediaInfo"), grpc_code="NOT_FOUND")] == 1
    assert handled[labels(**rpc("SubmitMediaJob"), grpc_code="INVALID_ARGUMENT")] == 1
    assert handled[labels(**rpc("Check", "grpc.health.v1.Health"), grpc_code="OK")] == 1
    assert m["grpc_server_handling_seconds_count"][labels(**rpc("GetMediaInfo"))] == 3
    assert m["grpc_server_handling_seconds_bucket"][labels(**rpc("GetMediaInfo"), le="+Inf")] == 3

    durations = m["ci_upstream_request_duration_seconds_count"]
    assert durations[labels(operation="GetMediaInfo", outcome="200")] == 2
    assert durations[labels(operation="GetMediaInfo", outcome="404")] == 1
    assert durations[labels(operation="GetMediaInfo", outcome="503")] == 1
    assert not any(dict(key)["operation"] == "CreateMediaJobs" for key in durations)  # invalid
    retries = m["ci_upstream_retries_total"]
    assert retries == {labels(operation="GetMediaInfo", reason="UPSTREAM_UNAVAILABLE"): 1}
    assert m["ci_upstream_requests_in_flight"] == {labels(operation="GetMediaInfo"): 0}
    (tokens,) = m["ci_upstream_retry_budget_tokens"].values()
    assert 0 < tokens < 100  # the retry spent from the default 100-token budget
    # Registered now, fed by temporary credentials later: no misleading sample until then.
    assert m["ci_gateway_credentials_expiry_timestamp_seconds"] == {}
    assert "process_cpu_seconds_total" in m


async def test_no_object_key_or_job_id_becomes_a_label(
    ops_gateway: RunningGateway, api: Stub, http: aiohttp.ClientSession
) -> None:
    job = (
        await api.SubmitMediaJob(
            service_pb2.SubmitMediaJobRequest(
                request=media_pb2.Request(input=media_pb2.Input(object=SAMPLE_KEY))
            ),
            timeout=10,
        )
    ).jobs_detail
    await api.DescribeMediaJobs(service_pb2.DescribeMediaJobsRequest(job_ids=[job.job_id]))
    async with http.get(f"http://{ops_gateway.ops_address}/metrics") as response:
        text = await response.text()
    assert 'operation="CreateMediaJobs"' in text
    assert job.job_id not in text and SAMPLE_KEY not in text and "examplebucket" not in text


def test_unknown_operations_and_outcomes_collapse_to_other() -> None:
    metrics = GatewayMetrics()
    sink = UpstreamMetrics(metrics)
    sink.attempt_started("GET /jobs/j123")
    sink.attempt_finished("GET /jobs/j123", "weird outcome /input/x.mp4", 0.1)
    sink.retry_scheduled("CreateMediaJobs", "job j123 failed", 0.1)
    seen = {
        tuple(sorted(s.items()))
        for s, _ in metrics.samples("ci_upstream_request_duration_seconds_count")
    }
    assert seen == {(("operation", "other"), ("outcome", "other"))}
    assert _in_flight_exposition(metrics) == [("other", 0.0)]  # started, then finished
    assert [s for s, _ in metrics.samples("ci_upstream_retries_total")] == [
        {"operation": "CreateMediaJobs", "reason": "other"}
    ]
    assert bounded_operation("GetMediaInfo") == "GetMediaInfo"
    assert bounded_outcome("UpstreamTimeout") == "UpstreamTimeout"
    assert bounded_outcome("503") == "503"


def _in_flight_exposition(metrics: GatewayMetrics) -> list[tuple[str, float]]:
    return sorted(
        (labels["operation"], value)
        for labels, value in metrics.samples("ci_upstream_requests_in_flight")
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(["GetMediaInfo", "CreateMediaJobs", "GET /x", "DescribeMediaJobs"]),
        ),
        max_size=40,
    )
)
def test_attempts_in_flight_read_at_scrape_equal_a_gauge_moved_per_attempt(
    steps: list[tuple[bool, str]],
) -> None:
    """`UpstreamMetrics` counts the attempts in flight in a dict that the gauge reads when
    scraped: after any sequence of attempts started and finished (each finish after its start,
    as the client reports them), the samples are exactly those of a gauge moved by `inc()` and
    `dec()` per attempt, as it was before (same labels, same values, same series present)."""
    metrics, reference = GatewayMetrics(), GatewayMetrics()
    sink = UpstreamMetrics(metrics)
    started: list[str] = []
    for finish, operation in steps:
        if finish and started:
            operation = started.pop(0)
            sink.attempt_finished(operation, "200", 0.01)
            reference.upstream_in_flight.labels(bounded_operation(operation)).dec()
        else:
            started.append(operation)
            sink.attempt_started(operation)
            reference.upstream_in_flight.labels(bounded_operation(operation)).inc()
        assert _in_flight_exposition(metrics) == _in_flight_exposition(reference)

    def exposed(of: GatewayMetrics) -> list[bytes]:
        lines = generate_latest(of.registry).splitlines()
        return sorted(line for line in lines if b"ci_upstream_requests_in_flight" in line)

    assert exposed(metrics) == exposed(reference)  # the text Prometheus reads, byte for byte


async def test_a_streaming_method_is_exported_under_the_type_its_calls_are_counted_as(
    ops_gateway: RunningGateway, api: Stub, http: aiohttp.ClientSession
) -> None:
    """The zeros exported before the first call are the series the calls then increase: a
    stream's zero labelled `unary` would be a series no call ever moves (its absence alert
    always quiet) beside the `server_stream` one that appears only with the first watch."""

    def watch_series(samples: dict[Labels, float]) -> dict[str, float]:
        return {
            dict(key)["grpc_type"]: value
            for key, value in samples.items()
            if dict(key)["grpc_method"] == "WatchMediaJob"
        }

    before = await scrape(http, ops_gateway)
    assert watch_series(before["grpc_server_started_total"]) == {"server_stream": 0}
    workflows = {
        dict(key)["grpc_type"]
        for key in before["grpc_server_started_total"]
        if dict(key)["grpc_method"] == "WatchWorkflowExecution"
    }
    assert workflows == {"server_stream"}
    call = api.WatchMediaJob(service_pb2.WatchMediaJobRequest(), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        async for _ in call:
            pass
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = await scrape(http, ops_gateway)
    assert watch_series(after["grpc_server_started_total"]) == {"server_stream": 1}
    assert watch_series(after["grpc_server_handling_seconds_count"]) == {"server_stream": 1}
