"""Tracing overhead (issue 17): gateway CPU per submit with tracing off, on, and before it existed.

Gateways measured side by side with item 1's closed loop, pinning and emulator:

* **baseline**: the gateway of the revision before tracing, imported from `--baseline-src`
  (a folder holding that revision's `gateway/`, e.g. `git archive <rev> gateway | tar -x -C
  DIR`); left out when the option is not given;
* **off**: this tree with `[tracing] enabled = false`, the default: the hooks are in place
  and return at once;
* **on**: this tree with tracing on, every span (server + one CI attempt per submit) sampled
  and exported over OTLP/gRPC by the real exporter to a receiver process (`bench.serve otlp`)
  pinned to the emulator's CPU: the gateway's own work (spans, the batch processor's thread,
  protobuf encoding, the gRPC export) is counted, the collector's is not;
* **on, not exported** (`OTEL_TRACES_EXPORTER=none`): the same spans, made and dropped: what
  making them costs, apart from exporting them;
* **on, 10% sampled** (`OTEL_TRACES_SAMPLER=traceidratio`, `_ARG=0.1`): the usual production
  setting for a busy service; unsampled calls get non-recording spans.

Every run gets a fresh emulator + gateway pair, and the repetitions are interleaved across the
variants (rep 1 of each, then rep 2...), so a drift of the machine spreads over all of them. The
receiver's span count over the calls that finished tells that the exporting variants really
exported (2 spans per submit when every call is sampled).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import RunStats, Summary
from bench.procs import child, servers
from bench.throughput import LoadPlan, run_load

BASELINE, OFF, ON = "baseline", "off", "on"
UNEXPORTED, SAMPLED = "on, not exported", "on, 10% sampled"
# The OTEL_* variables of each traced variant; an OTLP receiver is started for those exporting.
TRACED: dict[str, dict[str, str]] = {
    ON: {},
    UNEXPORTED: {"OTEL_TRACES_EXPORTER": "none"},
    SAMPLED: {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
}


async def run_tracing(
    plan: LoadPlan, cpus: tuple[int, int], baseline_src: Path | None
) -> dict[str, Any]:
    variants = ([BASELINE] if baseline_src else []) + [OFF, *TRACED]
    runs: dict[tuple[str, int], list[RunStats]] = {}
    spans: dict[str, int] = {}
    finished: dict[str, int] = {}
    sources: dict[str, str] = {}
    one_rep = replace(plan, reps=1, clients=("gateway",))
    with tempfile.TemporaryDirectory(prefix="ci-bench-otlp-") as folder:
        for rep in range(plan.reps):
            for variant in variants:
                counts = Path(folder) / f"counts-{rep}-{variants.index(variant)}.json"
                exports = (
                    variant in TRACED and TRACED[variant].get("OTEL_TRACES_EXPORTER") != "none"
                )
                with contextlib.ExitStack() as stack:
                    env: dict[str, str] | None = None
                    if variant in TRACED:
                        env = {"OTEL_SERVICE_NAME": "ci-gateway-bench", **TRACED[variant]}
                    if exports:
                        receiver = stack.enter_context(
                            child(["otlp", "--cpu", str(cpus[0]), "--count-file", str(counts)],
                                  "otlp")
                        )  # fmt: skip
                        assert env is not None
                        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = str(receiver.info["endpoint"])
                    pair = stack.enter_context(
                        servers(
                            emulator_cpu=cpus[0], gateway_cpu=cpus[1], tracing_env=env,
                            gateway_src=baseline_src if variant == BASELINE else None,
                        )
                    )  # fmt: skip
                    sources[variant] = str(pair.gateway.info.get("source"))
                    cells = await run_load(pair, one_rep, ("submit",))
                # Stopped, gateway first: its last spans were flushed before the receiver went.
                for (_, _, concurrency), summary in cells.items():
                    runs.setdefault((variant, concurrency), []).extend(summary.runs)
                    finished[variant] = finished.get(variant, 0) + sum(
                        run.finished for run in summary.runs
                    )
                if exports:
                    received = int(json.loads(counts.read_text())["spans"])
                    spans[variant] = spans.get(variant, 0) + received
    return {
        "variants": variants,
        "sources": sources,
        "cells": [
            {"variant": variant, "concurrency": concurrency, **Summary.of(stats).as_dict()}
            for (variant, concurrency), stats in runs.items()
        ],
        "spans_exported": spans,
        "calls_finished": finished,
        "micro": micro(reps=5, number=20_000 if plan.reps > 1 else 2_000),
    }


METHOD = "/ci.media.v1.MediaJobService/SubmitMediaJob"
_METADATA = (
    ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("x-request-id", "bench"),
    ("user-agent", "grpc-python-asyncio/1.85.1"),
)


def micro(*, reps: int, number: int) -> dict[str, dict[str, float]]:
    """The same costs in process, without I/O or a second thread, so without the noise of a
    shared machine: µs per submit for the hooks with tracing off, for making its two spans
    (server + one CI attempt, as the interceptor and the CI client drive them), and for
    encoding both for OTLP (what the exporter's thread then does, before the gRPC send); and
    the spans of a call the sampler leaves out (non-recording: the traceparent still goes to
    CI)."""
    from dataclasses import asdict

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from bench.common import Spread
    from bench.micro import time_per_call_us
    from gateway import tracing
    from gateway.rpc_context import RpcScope
    from gateway.tracing.spans import AttemptSpans, Spans

    scope = RpcScope(METHOD, "bench")

    def hooks_off() -> None:  # tracing is not installed in this process
        trace = tracing.start_rpc(METHOD, _METADATA, "bench")
        headers: dict[str, str] = {}
        tracing.inject(headers)
        tracing.attempt_answered("ci-request-id")
        tracing.end_rpc(trace, 0, "OK", scope)

    def submit(provider: TracerProvider) -> Callable[[], None]:
        spans = Spans(provider.get_tracer("bench"))
        attempts = AttemptSpans(spans)
        return functools.partial(spans_of_a_submit, spans, attempts)

    def spans_of_a_submit(spans: Spans, attempts: AttemptSpans) -> None:
        trace = spans.start_rpc(METHOD, _METADATA, "bench")
        attempts.attempt_started("CreateMediaJobs")
        spans.inject({})
        spans.attempt_answered("ci-request-id")
        attempts.attempt_finished("CreateMediaJobs", "200", 0.001)
        trace.end(0, "OK", scope)

    dropping = TracerProvider(shutdown_on_exit=False)  # no processor: made, ended, dropped
    unsampled = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    keeping = TracerProvider(shutdown_on_exit=False)
    kept = InMemorySpanExporter()
    keeping.add_span_processor(SimpleSpanProcessor(kept))
    keep = submit(keeping)
    for _ in range(256):
        keep()
    batch = kept.get_finished_spans()  # 512: the batch processor's default export size
    encode = time_per_call_us(
        lambda: encode_spans(batch).SerializeToString(), number=max(number // 100, 5), reps=reps
    )
    per_submit = 2 / len(batch)
    return {
        "hooks, tracing off": asdict(time_per_call_us(hooks_off, number=number, reps=reps)),
        "spans made (server + attempt)": asdict(
            time_per_call_us(submit(dropping), number=number, reps=reps)
        ),
        "spans of a call not sampled": asdict(
            time_per_call_us(submit(unsampled), number=number, reps=reps)
        ),
        "OTLP encoding of both": asdict(
            Spread(encode.median * per_submit, encode.min * per_submit, encode.max * per_submit)
        ),
    }


def _cell(result: dict[str, Any], variant: str, concurrency: int) -> dict[str, Any] | None:
    for cell in result["cells"]:
        if (cell["variant"], cell["concurrency"]) == (variant, concurrency):
            return dict(cell)
    return None


def _median(cell: dict[str, Any] | None, *keys: str) -> float:
    value: Any = cell
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return math.nan
        value = value[key]
    return float(value["median"])


def render(result: dict[str, Any], concurrencies: Sequence[int]) -> list[str]:
    from bench.common import Spread

    lines = [
        "| variant | conc | gateway CPU µs/call | vs off | calls/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for concurrency in concurrencies:
        off = _median(_cell(result, OFF, concurrency), "cpu_us_per_call", "gateway")
        for variant in result["variants"]:
            cell = _cell(result, variant, concurrency)
            if cell is None:
                continue
            cpu = cell["cpu_us_per_call"].get("gateway")
            delta = _median(cell, "cpu_us_per_call", "gateway") - off
            lines.append(
                f"| {variant} | {concurrency} | {Spread(**cpu).fmt() if cpu else '-'} "
                f"| {delta:+.0f} | {Spread(**cell['calls_per_s']).fmt()} "
                f"| {Spread(**cell['p50_ms']).fmt(2)} | {Spread(**cell['p99_ms']).fmt(1)} "
                f"| {cell['errors']} |"
            )
    if "micro" in result:
        lines += ["", "In process, µs per submit (median of batches [min-max]):", ""]
        lines += ["| step | µs |", "|---|---|"]
        lines += [
            f"| {step} | {Spread(**spread).fmt(2)} |" for step, spread in result["micro"].items()
        ]
    exported = ", ".join(
        f"{variant}: {count} for {result['calls_finished'][variant]} calls "
        f"({count / result['calls_finished'][variant]:.2f} per call)"
        for variant, count in result["spans_exported"].items()
        if result["calls_finished"].get(variant)
    )
    lines += [
        "",
        f"Spans received by the OTLP receiver: {exported}. Gateway sources: {result['sources']}.",
    ]
    return lines
