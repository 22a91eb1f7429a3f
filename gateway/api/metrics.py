"""Prometheus metrics: the gRPC server side (standard names) and the CI side (via Telemetry).

Server side, the names every gRPC dashboard knows (go-grpc-prometheus / grpc-ecosystem):
`grpc_server_started_total`, `grpc_server_handled_total` and `grpc_server_handling_seconds`,
labelled `grpc_type`, `grpc_service`, `grpc_method` (and `grpc_code` once handled). Upstream side,
fed by `UpstreamMetrics` (a `gateway.telemetry.Telemetry`): attempt duration by CI operation and
outcome, retries by reason, attempts in flight. Two gauges are read at scrape time from sources
other modules own (the retry budgets, the credentials' expiry); until a source is attached they
export no sample, rather than a misleading zero.

Labels are bounded: method names come from registered services only, CI operations and outcomes
are checked against their closed sets, and nothing a caller chooses (job id, object key, bucket)
is ever a label. Each gateway has its own registry, so several gateways in one process (the
tests) never collide.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from gateway.errors import Reason
from gateway.telemetry import OPERATIONS

# Seconds; from a loopback round trip to the slowest synchronous probe under the 60 s ceiling.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OTHER = "other"
_OUTCOME = re.compile(r"^(?:[1-5][0-9]{2}|[A-Z][A-Za-z]{0,63})$")

_REASONS = frozenset(reason.value for reason in Reason)
_OPERATIONS = frozenset(OPERATIONS)

GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")

BudgetSource = Callable[[], Mapping[str, float]]
ExpirySource = Callable[[], float | None]


def bounded_operation(operation: str) -> str:
    """A CI operation the client knows (`gateway.telemetry.OPERATIONS`), else `other`."""
    return operation if operation in _OPERATIONS else OTHER


def bounded_outcome(outcome: str) -> str:
    """An HTTP status (`"503"`) or an error class name (`"UpstreamTimeout"`), else `other`."""
    return outcome if _OUTCOME.fullmatch(outcome) else OTHER


def bounded_reason(reason: str) -> str:
    """An `errors.Reason` value, else `other`."""
    return reason if reason in _REASONS else OTHER


class _SourcedGauges(Collector):
    """Gauges whose values live elsewhere and are read when Prometheus scrapes."""

    def __init__(self) -> None:
        self.retry_budget: BudgetSource | None = None
        self.credentials_expiry: ExpirySource | None = None

    def collect(self) -> Iterable[Metric]:
        budget = GaugeMetricFamily(
            "ci_upstream_retry_budget_tokens",
            "Retry tokens left in the emptiest upstream's budget (a retry spends, a success "
            "refunds); 0 means retries towards that upstream have stopped.",
        )
        tokens = self.retry_budget() if self.retry_budget is not None else {}
        if tokens:
            budget.add_metric([], min(tokens.values()))
        yield budget
        expiry = GaugeMetricFamily(
            "ci_gateway_credentials_expiry_timestamp_seconds",
            "Unix time at which the current CI credentials expire (temporary credentials only).",
        )
        expires_at = self.credentials_expiry() if self.credentials_expiry is not None else None
        if expires_at is not None:
            expiry.add_metric([], expires_at)
        yield expiry

    def describe(self) -> Iterable[Metric]:
        return self.collect()


class GatewayMetrics:
    """Every metric of one gateway, in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.grpc_started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", GRPC_LABELS, registry=r
        )
        self.grpc_handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, whatever their status.",
            (*GRPC_LABELS, "grpc_code"),
            registry=r,
        )
        self.grpc_handling = Histogram(
            "grpc_server_handling_seconds",
            "Time from an RPC's start to its status, on the server.",
            GRPC_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "ci_upstream_request_duration_seconds",
            "One HTTP attempt towards CI, by CI operation and outcome (HTTP status, or the error "
            "class when no answer came).",
            ("operation", "outcome"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_retries = Counter(
            "ci_upstream_retries_total",
            "Retries scheduled towards CI, by operation and reason (an ErrorInfo reason); a "
            "submit in doubt letting CI settle before it may be resent counts as one.",
            ("operation", "reason"),
            registry=r,
        )
        self.upstream_in_flight = Gauge(
            "ci_upstream_requests_in_flight",
            "HTTP attempts towards CI currently waiting for an answer.",
            ("operation",),
            registry=r,
        )
        self._sourced = _SourcedGauges()
        r.register(self._sourced)

    def initialize(self, grpc_type: str, service: str, methods: Iterable[str]) -> None:
        """Export zeros for a service's methods before their first call, so `rate()` and
        absence alerts work from the first scrape."""
        for method in methods:
            self.grpc_started.labels(grpc_type, service, method)
            self.grpc_handling.labels(grpc_type, service, method)

    def watch_retry_budget(self, source: BudgetSource) -> None:
        """`source()` -> remaining tokens per upstream; read at scrape time."""
        self._sourced.retry_budget = source

    def watch_credentials_expiry(self, source: ExpirySource) -> None:
        """`source()` -> Unix expiry time of the credentials in use, or None; read at scrape."""
        self._sourced.credentials_expiry = source

    def samples(self, name: str) -> Iterator[tuple[dict[str, str], float]]:
        """Every sample called `name` with its labels (for tests and debugging)."""
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name == name:
                    yield sample.labels, sample.value


# Children remembered per label set by `UpstreamMetrics`: the label sets are bounded already
# (operations and outcomes are checked), this bounds the cache whatever those checks allow.
_MAX_CHILDREN = 1024


class UpstreamMetrics:
    """`Telemetry` sink turning the CI client's reports into the upstream metrics. The metric
    child of each label set is looked up once and kept: `labels()` validates the values and
    takes a lock on every call, twice or three times per attempt.

    The attempts in flight are counted here, in a plain dict by operation label, and each label's
    gauge child reads its count when Prometheus scrapes (`Gauge.set_function`): the same samples
    as an `inc()` and a `dec()` per attempt, without their two locked updates (~9,000
    instructions an attempt, bench/README). Only the event loop's thread changes the counts; a
    scrape reads an int."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._m = metrics
        # By bounded operation label: at most the known operations and `other`.
        self._in_flight: dict[str, int] = {}
        self._duration: dict[tuple[str, str], Any] = {}

    def _count_in_flight(self, label: str) -> None:
        """A first attempt of `label`: its gauge child, which reads the count from now on."""
        counts = self._in_flight
        counts[label] = 1
        self._m.upstream_in_flight.labels(label).set_function(lambda: counts[label])

    def attempt_started(self, operation: str) -> None:
        label = bounded_operation(operation)
        if label in self._in_flight:
            self._in_flight[label] += 1
        else:
            self._count_in_flight(label)

    def attempt_finished(self, operation: str, outcome: str, seconds: float) -> None:
        # Started before (the client reports both, in that order), so the label is counted.
        self._in_flight[bounded_operation(operation)] -= 1
        key = (operation, outcome)
        child = self._duration.get(key)
        if child is None:
            labels = (bounded_operation(operation), bounded_outcome(outcome))
            child = self._m.upstream_duration.labels(*labels)
            if len(self._duration) < _MAX_CHILDREN:
                self._duration[key] = child
        child.observe(seconds)

    def retry_scheduled(self, operation: str, reason: str, delay_s: float) -> None:
        self._m.upstream_retries.labels(bounded_operation(operation), bounded_reason(reason)).inc()
