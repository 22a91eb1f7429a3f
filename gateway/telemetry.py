"""The seam between the CI client and whatever watches it (metrics, debug logs).

The client reports each attempt and each scheduled retry through this protocol and knows nothing
of Prometheus, log formats or traces; `NullTelemetry` is the default. The sinks: metrics
(`gateway.api.metrics`), the attempt log (`gateway.logs`) and, with tracing on, a client span
per attempt (`gateway.tracing.spans.AttemptSpans`). Labels are bounded by construction:
operation names are the CI operation names below, outcomes are an HTTP status or an error class
name, reasons are `errors.Reason` values, never a job id, object key or secret.
"""

from __future__ import annotations

from typing import Protocol

OPERATIONS = (
    "CreateMediaJobs",
    "DescribeMediaJob",
    "DescribeMediaJobs",
    "CancelMediaJob",
    "GenerateMediaInfo",
    "GetMediaInfo",
)


class Telemetry(Protocol):
    def attempt_started(self, operation: str) -> None:
        """An HTTP attempt towards CI is about to be sent."""

    def attempt_finished(self, operation: str, outcome: str, seconds: float) -> None:
        """`outcome`: the HTTP status as text (`"200"`, `"503"`) or an error class name
        (`"TransportError"`, `"UpstreamTimeout"`) when no answer came."""

    def retry_scheduled(self, operation: str, reason: str, delay_s: float) -> None:
        """A failed attempt will be retried after `delay_s`; `reason` is an `errors.Reason`."""


class NullTelemetry:
    def attempt_started(self, operation: str) -> None:
        pass

    def attempt_finished(self, operation: str, outcome: str, seconds: float) -> None:
        pass

    def retry_scheduled(self, operation: str, reason: str, delay_s: float) -> None:
        pass
