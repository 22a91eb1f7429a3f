"""How CI attempts are numbered and parented (`gateway.tracing.spans`), at the seam itself.

The span-tree tests cover a submit and a read end to end; these drive the hooks and the attempt
sink directly, in the order the interceptor and the CI client call them, with the SDK's own
in-memory exporter: the cases that need a task outliving its RPC, or a long run of outcomes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry import baggage
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.rpc_context import RpcScope
from gateway.tracing import hooks
from gateway.tracing.spans import AttemptSpans, Spans

SUBMIT = "/ci.media.v1.MediaJobService/SubmitMediaJob"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Tracing installed on an in-memory exporter for the test's length."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert hooks._active is None
    hooks._active = Spans(provider.get_tracer("test"))
    try:
        yield exporter
    finally:
        hooks._active = None
        provider.shutdown()


def sink() -> AttemptSpans:
    assert isinstance(hooks._active, Spans)
    return AttemptSpans(hooks._active)


def attempt(operation: str, outcome: str) -> None:
    """One attempt as the CI client reports it."""
    attempts = sink()
    attempts.attempt_started(operation)
    attempts.attempt_finished(operation, outcome, 0.001)


def retries(spans: tuple[ReadableSpan, ...], name: str) -> list[object]:
    return [span.attributes["ci.retry"] for span in spans if span.name == name and span.attributes]


def test_retries_count_failures_worth_retrying_and_restart_after_any_other_answer(
    exported: InMemorySpanExporter,
) -> None:
    trace = hooks.start_rpc(SUBMIT, (), "rid")
    for outcome in ("503", "TransportError", "429", "200", "500", "404", "200"):
        attempt("CreateMediaJobs", outcome)
    attempt("DescribeMediaJobs", "200")  # another operation keeps its own count
    hooks.end_rpc(trace, 0, "OK", RpcScope(SUBMIT, "rid"))
    spans = exported.get_finished_spans()
    assert retries(spans, "CI CreateMediaJobs") == [0, 1, 2, 3, 0, 1, 0]
    assert retries(spans, "CI DescribeMediaJobs") == [0]


async def test_work_outliving_its_rpc_starts_traces_of_its_own(
    exported: InMemorySpanExporter,
) -> None:
    """The job tracker's poller is started inside a watch RPC and keeps polling after it ended:
    its attempts must not hang off a finished span of someone else's trace."""
    trace = hooks.start_rpc(SUBMIT, (), "rid")
    rpc_ended = asyncio.Event()

    async def poller() -> None:
        attempt("DescribeMediaJob", "200")  # while the RPC is open: its child
        await rpc_ended.wait()
        attempt("DescribeMediaJob", "503")  # after: a new trace each
        attempt("DescribeMediaJob", "200")

    task = asyncio.create_task(poller())  # copies the RPC's context, as the tracker's does
    await asyncio.sleep(0)  # the poller's first attempt, inside the RPC
    hooks.end_rpc(trace, 0, "OK", RpcScope(SUBMIT, "rid"))
    rpc_ended.set()
    await asyncio.wait_for(task, 5)

    spans = exported.get_finished_spans()
    (server,) = [span for span in spans if span.name == SUBMIT.lstrip("/")]
    during, *after = [span for span in spans if span.name == "CI DescribeMediaJob"]
    assert during.parent is not None and during.parent.span_id == server.context.span_id
    assert [span.parent for span in after] == [None, None]
    assert {span.context.trace_id for span in after}.isdisjoint({server.context.trace_id})
    # Still numbered within the task's own unit.
    assert [span.attributes["ci.retry"] for span in after if span.attributes] == [0, 1]


def test_the_callers_baggage_is_in_the_calls_context_and_only_there(
    exported: InMemorySpanExporter,
) -> None:
    trace = hooks.start_rpc(SUBMIT, (("baggage", "tenant=acme,tier=gold"),), "rid")
    assert baggage.get_all() == {"tenant": "acme", "tier": "gold"}
    headers: dict[str, str] = {}
    attempts = sink()
    attempts.attempt_started("CreateMediaJobs")
    hooks.inject(headers)  # towards CI: the trace context, not the caller's baggage
    attempts.attempt_finished("CreateMediaJobs", "200", 0.001)
    hooks.end_rpc(trace, 0, "OK", RpcScope(SUBMIT, "rid"))
    assert set(headers) == {"traceparent"}
    assert baggage.get_all() == {}


def test_hooks_do_nothing_when_tracing_is_off() -> None:
    assert hooks._active is None
    headers = {"Host": "example"}
    hooks.inject(headers)
    hooks.attempt_answered("rid")
    assert (
        hooks.start_rpc(SUBMIT, (("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01"),), "r")
        is None
    )
    with hooks.span(hooks.RECONCILE_SPAN) as span:
        span.set_attribute("x", 1)
    assert headers == {"Host": "example"}
