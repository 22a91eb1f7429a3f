"""The spans a traced gateway exports, as an OTLP receiver on loopback gets them.

The gateway is real, called over a real gRPC channel with a caller's `traceparent`, and exports
with OpenTelemetry's own OTLP/gRPC exporter; CI is the emulator, whose seeded fault plan fails
exactly the attempts a test wants failed. Stopping the gateway flushes its spans.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web

from ci_emulator.faults import FaultKind, FaultPlan, FaultSpec
from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Callbacks, Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.jobs.callbacks import MAX_CALLBACK_BYTES
from gateway.logs import JsonFormatter
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.fixtures.logs import access_lines
from tests.fixtures.otlp import OtlpReceiver, ReceivedSpan
from tests.tracing.conftest import SERVICE_NAME, traced

M, S = media_pb2, service_pb2
SUBMIT = "ci.media.v1.MediaJobService/SubmitMediaJob"
DESCRIBE = "ci.media.v1.MediaJobService/DescribeMediaJobs"
WAIT_S = 10.0


@dataclass(frozen=True)
class CallerContext:
    """What a traced caller sends: W3C `traceparent` (sampled) and `baggage`."""

    trace_id: str
    span_id: str

    @classmethod
    def new(cls) -> CallerContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    def metadata(self, request_id: str) -> tuple[tuple[str, str], ...]:
        return (
            ("traceparent", f"00-{self.trace_id}-{self.span_id}-01"),
            ("baggage", "tenant=acme"),
            ("x-request-id", request_id),
        )


@dataclass(frozen=True)
class SeenByCi:
    method: str
    path: str
    traceparent: str | None
    at: float  # time.monotonic() when it reached the emulator


def record_ci_requests(emulator: RunningEmulator) -> list[SeenByCi]:
    """Every request reaching the emulator, with the `traceparent` it carried."""
    seen: list[SeenByCi] = []

    async def hook(request: web.Request, target: Target) -> None:
        traceparent = request.headers.get("traceparent")
        seen.append(SeenByCi(request.method, request.path, traceparent, time.monotonic()))
        return None

    emulator.state.request_hooks.append(hook)
    return seen


def fail_first_attempt_only(emulator: RunningEmulator, operation: str, kind: FaultKind) -> None:
    """Arm the emulator's fault plan so that the first `operation` request fails with `kind`
    and the second succeeds: a seed found by replaying the plan's own draws (bounded)."""
    spec = FaultSpec(**{kind.value: 0.5})
    for seed in range(1000):
        plan = FaultPlan(seed)
        plan.set(operation, spec)
        if [plan.draw(operation).kind for _ in range(2)] == [kind, None]:
            emulator.state.faults.reseed(seed)
            emulator.state.faults.set(operation, spec)
            return
    raise AssertionError(f"no seed below 1000 fails only the first {operation}")


def one(spans: Sequence[ReceivedSpan], name: str) -> ReceivedSpan:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, f"{name}: {[s.name for s in spans]}"
    return matching[0]


def named(spans: Sequence[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.name == name]


def attribute_values(spans: Sequence[ReceivedSpan]) -> list[str]:
    values: list[Any] = []
    for span in spans:
        values += span.attributes.values()
        values += [value for _, attributes in span.events for value in attributes.values()]
    return [str(value) for value in values]


async def test_a_submit_answered_503_is_one_trace_with_both_attempts_and_the_reconcile(
    traced_gateway: RunningGateway,
    receiver: OtlpReceiver,
    emulator: RunningEmulator,
    credentials: Credentials,
    settings: Settings,
) -> None:
    emulator.state.pause_scheduling()  # the job is only created: probing is not under test
    fail_first_attempt_only(emulator, "CreateMediaJobs", FaultKind.ERROR_503)
    seen = record_ci_requests(emulator)
    caller = CallerContext.new()
    request = S.SubmitMediaJobRequest(
        request_id="rid-traced", request=M.Request(input=M.Input(object=SAMPLE_KEY))
    )
    async with grpc.aio.insecure_channel(traced_gateway.address) as channel:
        call = service_pb2_grpc.MediaJobServiceStub(channel).SubmitMediaJob(
            request, metadata=caller.metadata("order-42"), timeout=WAIT_S
        )
        await call
        trailing = dict(await call.trailing_metadata() or ())
    await traced_gateway.stop()  # flushes the spans
    spans = receiver.spans()

    # The caller's request_id was new to the store, so the gateway first looked for a job of it
    # (store-loss recovery, nothing found); CI answered 503, the gateway reconciled at once and
    # again after letting CI settle (nothing found either time), then sent it again.
    assert emulator.state.faults.injected["CreateMediaJobs:error_503"] == 1
    assert emulator.state.jobs_created == 1
    assert {span.trace_id for span in spans} == {caller.trace_id}
    assert {span.resource["service.name"] for span in spans} == {SERVICE_NAME}

    server = one(spans, SUBMIT)
    assert (server.kind, server.parent_span_id) == ("server", caller.span_id)
    assert server.status == "unset"
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert server.attributes["ci_gateway.request_id"] == "order-42"
    assert server.attributes["ci.request_id"] == trailing["x-ci-request-id"]
    assert server.attributes["ci_gateway.attempts"] == 5  # 3 listings, 2 POSTs
    # The pause between the two reconciles after the 503: CI let settle before a resend.
    ((event, attributes),) = server.events
    assert event == "retry scheduled"
    assert attributes["ci.operation"] == "CreateMediaJobs"
    assert attributes["ci_gateway.reason"] == "UPSTREAM_UNAVAILABLE"
    # The event names the wait still ahead when it is scheduled: the settle (floor plus jitter)
    # counted from the 503, less the look made meanwhile, so it may fall a little under the
    # floor but never above floor and jitter's ceiling.
    retry = settings.retry  # the gateway's own (`traced_gateway` is started from `settings`)
    ceiling_ms = 1000 * (retry.submit_settle_s + retry.transient_base_s)
    assert 0 < attributes["ci_gateway.retry_delay_ms"] <= ceiling_ms
    # What the settle is for: the resend reached CI no sooner than the floor after the send in
    # doubt did (which reached CI before its 503 was made, so before the settle began).
    posts = [r.at for r in seen if (r.method, r.path) == ("POST", "/jobs")]
    assert len(posts) == 2 and posts[1] - posts[0] >= retry.submit_settle_s

    attempts = named(spans, "CI CreateMediaJobs")
    assert [a.attributes["ci.retry"] for a in attempts] == [0, 1]
    assert [a.attributes["http.response.status_code"] for a in attempts] == [503, 200]
    assert [a.attributes["ci.outcome"] for a in attempts] == ["503", "200"]
    assert [a.status for a in attempts] == ["error", "unset"]
    assert attempts[1].attributes["http.request.resend_count"] == 1
    assert all(a.kind == "client" and a.parent_span_id == server.span_id for a in attempts)
    assert all(a.attributes["ci.operation"] == "CreateMediaJobs" for a in attempts)
    # Each attempt names CI's RequestId of its own answer; the last one is the call's.
    request_ids = [a.attributes["ci.request_id"] for a in attempts]
    assert len(set(request_ids)) == 2 and request_ids[1] == trailing["x-ci-request-id"]

    reconciles = named(spans, "reconcile submit")
    # The store-loss look, then the reconciles after the 503: at once, and after the settle.
    assert len(reconciles) == 3
    assert {(r.kind, r.parent_span_id) for r in reconciles} == {("internal", server.span_id)}
    assert [r.attributes["ci_gateway.reconcile.found"] for r in reconciles] == [False] * 3
    listings = named(spans, "CI DescribeMediaJobs")
    assert [item.parent_span_id for item in listings] == [r.span_id for r in reconciles]
    assert {(item.attributes["ci.retry"], item.attributes["ci.outcome"]) for item in listings} == {
        (0, "200")
    }

    # CI got each attempt's own traceparent, in the caller's trace.
    sent = [r.traceparent for r in seen if (r.method, r.path) == ("POST", "/jobs")]
    assert sent == [f"00-{caller.trace_id}-{a.span_id}-01" for a in attempts]
    assert [r.traceparent for r in seen if r.method == "GET"] == [
        f"00-{caller.trace_id}-{item.span_id}-01" for item in listings
    ]
    # What the access log does not log, no span carries: object key, bucket, keys, baggage.
    values = attribute_values(spans)
    for secret_or_sensitive in (SAMPLE_KEY, BUCKET, credentials.secret_key, "acme"):
        assert not [v for v in values if secret_or_sensitive in v]


async def test_a_read_retried_after_a_500_numbers_its_attempts_and_notes_the_retry(
    traced_gateway: RunningGateway, receiver: OtlpReceiver, emulator: RunningEmulator
) -> None:
    async with grpc.aio.insecure_channel(traced_gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        job = (
            await stub.SubmitMediaJob(
                S.SubmitMediaJobRequest(request=M.Request(input=M.Input(object=SAMPLE_KEY))),
                timeout=WAIT_S,
            )
        ).jobs_detail
        fail_first_attempt_only(emulator, "DescribeMediaJob", FaultKind.ERROR_500)
        await stub.DescribeMediaJobs(S.DescribeMediaJobsRequest(job_ids=[job.job_id]))
    await traced_gateway.stop()
    spans = receiver.spans()

    server = one(spans, DESCRIBE)
    assert server.parent_span_id == ""  # no traceparent sent: the gateway starts the trace
    attempts = named(spans, "CI DescribeMediaJob")
    assert [a.attributes["ci.retry"] for a in attempts] == [0, 1]
    assert [a.attributes["ci.outcome"] for a in attempts] == ["500", "200"]
    assert {a.parent_span_id for a in attempts} == {server.span_id}
    assert {a.trace_id for a in attempts} == {server.trace_id}
    ((event, attributes),) = server.events
    assert event == "retry scheduled"
    assert attributes["ci.operation"] == "DescribeMediaJob"
    assert attributes["ci_gateway.reason"] == "UPSTREAM_UNAVAILABLE"
    # Another RPC, another trace.
    assert one(spans, SUBMIT).trace_id != server.trace_id


async def test_each_callback_received_is_a_trace_with_its_verification(
    receiver: OtlpReceiver, settings: Settings, credentials: Credentials, emulator: RunningEmulator
) -> None:
    token = "cb-" + secrets.token_hex(20)
    receiver_settings = Callbacks(listen="127.0.0.1:0", public_url="auto", token=token)
    gateway = await start_gateway(
        traced(replace(settings, callbacks=receiver_settings)),
        StaticCredentialsProvider(credentials),
    )
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            await stub.SubmitMediaJob(
                S.SubmitMediaJobRequest(request=M.Request(input=M.Input(object=SAMPLE_KEY))),
                timeout=WAIT_S,
            )
        (delivery,) = await asyncio.wait_for(emulator.state.wait_for_callbacks(1), WAIT_S)
        assert delivery.status == 200
    finally:
        await gateway.stop(grace_s=0)
    spans = receiver.spans()

    callback = one(spans, "CI job callback")
    assert (callback.kind, callback.parent_span_id) == ("server", "")
    assert callback.attributes["http.route"] == "/ci-callback/{token}/{bucket}/{region}"
    assert callback.attributes["http.response.status_code"] == 200
    verification = one(spans, "CI DescribeMediaJob")
    assert verification.parent_span_id == callback.span_id
    assert verification.trace_id == callback.trace_id != one(spans, SUBMIT).trace_id
    assert not [value for value in attribute_values(spans) if token in value]


async def test_a_caller_that_does_not_sample_gets_no_spans_but_ci_keeps_its_trace(
    traced_gateway: RunningGateway, receiver: OtlpReceiver, emulator: RunningEmulator
) -> None:
    """The default sampler follows the caller's decision (`parentbased_always_on`)."""
    seen = record_ci_requests(emulator)
    caller = CallerContext.new()
    unsampled = (("traceparent", f"00-{caller.trace_id}-{caller.span_id}-00"),)
    async with grpc.aio.insecure_channel(traced_gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        await stub.GetMediaInfo(
            S.GetMediaInfoRequest(object=SAMPLE_KEY), metadata=unsampled, timeout=WAIT_S
        )
    await traced_gateway.stop()
    assert receiver.spans() == []
    ((traceparent,),) = {(r.traceparent,) for r in seen}
    assert traceparent is not None
    assert traceparent.startswith(f"00-{caller.trace_id}-") and traceparent.endswith("-00")


async def test_the_sampler_the_start_line_names_is_the_one_in_use(
    receiver: OtlpReceiver,
    settings: Settings,
    credentials: Credentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value as a manifest may write it, a space after it: the gateway reads it as
    `always_off`, and so must the sampler (the SDK's own reading fell back to sampling all)."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off ")
    gateway = await start_gateway(traced(settings), StaticCredentialsProvider(credentials))
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            await stub.GetMediaInfo(S.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=WAIT_S)
    finally:
        await gateway.stop(grace_s=0)
    assert receiver.spans() == []


async def test_refused_callbacks_are_spans_with_their_status_and_no_path(
    receiver: OtlpReceiver, settings: Settings, credentials: Credentials
) -> None:
    """A wrong token (404, answered) and a body over the limit (413, raised by aiohttp) are
    the caller's doing: recorded, not marked as the gateway's errors."""
    token = "cb-" + secrets.token_hex(20)
    receiver_settings = Callbacks(listen="127.0.0.1:0", public_url="auto", token=token)
    gateway = await start_gateway(
        traced(replace(settings, callbacks=receiver_settings)),
        StaticCredentialsProvider(credentials),
    )
    try:
        assert gateway.tracking.receiver is not None
        base = gateway.tracking.receiver.base_url
        path = f"/ci-callback/{{}}/{BUCKET}/{REGION}"
        async with aiohttp.ClientSession() as http:
            async with http.post(base + path.format("wrong-" + token), data=b"<x/>") as answer:
                assert answer.status == 404
            too_big = io.BytesIO(b"<" + b"x" * MAX_CALLBACK_BYTES)
            async with http.post(base + path.format(token), data=too_big) as answer:
                assert answer.status == 413
    finally:
        await gateway.stop(grace_s=0)
    spans = named(receiver.spans(), "CI job callback")
    assert [s.attributes["http.response.status_code"] for s in spans] == [404, 413]
    assert [s.status for s in spans] == ["unset", "unset"]
    assert not [value for value in attribute_values(spans) if token in value]


async def test_the_access_line_names_the_calls_trace_and_server_span(
    traced_gateway: RunningGateway, receiver: OtlpReceiver
) -> None:
    """A log line leads to its trace: the caller's trace id and the gateway's server span, for
    sampled and unsampled callers alike (the ids exist either way)."""
    sampled, unsampled = CallerContext.new(), CallerContext.new()
    with access_lines(JsonFormatter()) as stream:
        async with grpc.aio.insecure_channel(traced_gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            await stub.GetMediaInfo(
                S.GetMediaInfoRequest(object=SAMPLE_KEY),
                metadata=sampled.metadata("trace-log-1"),
                timeout=WAIT_S,
            )
            await stub.GetMediaInfo(
                S.GetMediaInfoRequest(object=SAMPLE_KEY),
                metadata=(
                    ("traceparent", f"00-{unsampled.trace_id}-{unsampled.span_id}-00"),
                    ("x-request-id", "trace-log-2"),
                ),
                timeout=WAIT_S,
            )
    await traced_gateway.stop()
    lines = {
        line["request_id"]: line
        for line in map(json.loads, stream.getvalue().splitlines())
        if line["msg"] == "rpc"
    }
    server = one(receiver.spans(), "ci.media.v1.MediaJobService/GetMediaInfo")
    assert lines["trace-log-1"]["trace_id"] == sampled.trace_id == server.trace_id
    assert lines["trace-log-1"]["span_id"] == server.span_id
    assert lines["trace-log-2"]["trace_id"] == unsampled.trace_id
    assert len(lines["trace-log-2"]["span_id"]) == 16
    assert lines["trace-log-2"]["span_id"] not in (unsampled.span_id, "0" * 16)
