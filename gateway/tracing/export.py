"""The OpenTelemetry SDK as the standard `OTEL_*` variables configure it.

The SDK reads most of them itself, and the gateway leaves them to it: `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES` (the resource), `OTEL_BSP_*` (the batch processor: a bounded queue,
so a slow collector costs dropped spans, not memory), `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`,
`_HEADERS`, `_TIMEOUT`, `_COMPRESSION`, `_CERTIFICATE`, `_INSECURE` (the OTLP exporter). What
the SDK leaves to its caller is decided here: which exporters `OTEL_TRACES_EXPORTER` names
(`otlp`, the default; `console`; `none`), over which protocol, and the service name when none is
given (`ci-gateway`). The sampler (`OTEL_TRACES_SAMPLER` / `_ARG`) is built here too, from the
values checked here, so that the one the start-up line names is the one in use.

A value the gateway cannot honour (an unknown exporter or sampler, OTLP over HTTP, which this
build does not ship, an endpoint URL carrying a password, which OTLP/gRPC never sends, OTLP
headers the exporter cannot read) is refused at start rather than logged and replaced by a
default, the way the gateway's own settings refuse an unknown key: a trace that silently goes
nowhere is worse than a gateway that says why it did not start.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

DEFAULT_SERVICE_NAME = "ci-gateway"
EXPORTERS = ("otlp", "console", "none")
OTLP_PROTOCOLS = ("grpc",)
DEFAULT_OTLP_ENDPOINT = "http://localhost:4317"
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


def _get(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def exporter_names() -> list[str]:
    """`OTEL_TRACES_EXPORTER`, checked: a comma list of `EXPORTERS` (default `otlp`)."""
    names = [name.strip().lower() for name in _get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    names = [name for name in names if name]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER: unknown exporter(s) {', '.join(unknown)}; "
            f"the gateway offers {', '.join(EXPORTERS)}"
        )
    if "none" in names and len(names) > 1:
        raise ValueError("OTEL_TRACES_EXPORTER: `none` cannot be combined with an exporter")
    return [name for name in names if name != "none"]


def otlp_protocol() -> str:
    """The traces-specific variable first, then the general one, as the specification says."""
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = _get(variable)
        if protocol:
            if protocol not in OTLP_PROTOCOLS:
                raise ValueError(
                    f"{variable} {protocol!r}: this gateway exports OTLP over gRPC only "
                    "(`grpc`, port 4317 on a collector)"
                )
            return protocol
    return OTLP_PROTOCOLS[0]


def otlp_endpoint() -> str:
    """Where OTLP goes: the traces-specific variable first, then the general one. A URL with a
    user or password in it is refused: OTLP/gRPC does not send them (the collector would be
    unreachable, every span dropped) and the exporter names the endpoint, password and all, in
    each warning about a failed export. Credentials go in `OTEL_EXPORTER_OTLP_HEADERS`."""
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = _get(variable)
        if url:
            if "@" in urlsplit(url).netloc:
                raise ValueError(
                    f"{variable}: a user or password in the URL (not repeated here) is never "
                    "sent over OTLP/gRPC; give credentials in OTEL_EXPORTER_OTLP_HEADERS"
                )
            return url
    return DEFAULT_OTLP_ENDPOINT


def _ratio() -> float:
    arg = _get("OTEL_TRACES_SAMPLER_ARG", "1.0")
    try:
        ratio = float(arg)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG {arg!r} must be a ratio in [0, 1]")
    return ratio


# How the OTLP exporter reads `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` (OpenTelemetry's
# `opentelemetry.util.re`, liberal mode): comma-separated `name=value`. An entry it cannot read
# it drops with a WARNING quoting it whole: `Authorization: Bearer ...` put the token in the
# gateway's log, and the collector then refused every export.
_HEADER_ENTRY = re.compile(
    r"[ \t]*[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+[ \t]*=[ \t]*"
    r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*[ \t]*"
)
_HEADER_DELIMITER = re.compile(r"[ \t]*,[ \t]*")


def check_otlp_headers() -> None:
    """The variable the exporter reads (the traces-specific one when set), refused if an entry
    is not `name=value`; the message never repeats a value, which is usually a credential."""
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        value = os.environ.get(variable, "")
        if not value:
            continue
        for position, entry in enumerate(_HEADER_DELIMITER.split(value), 1):
            if entry.strip() and not _HEADER_ENTRY.fullmatch(entry.strip()):
                raise ValueError(
                    f"{variable}: entry {position} is not name=value (comma-separated, values "
                    "URL-encoded); the value is not repeated here"
                )
        return


def sampler_name() -> str:
    name = _get("OTEL_TRACES_SAMPLER", "parentbased_always_on").lower()
    if name not in SAMPLERS:
        raise ValueError(f"OTEL_TRACES_SAMPLER {name!r} is not one of {', '.join(SAMPLERS)}")
    if name in _RATIO_SAMPLERS:
        _ratio()
    return name


def _sampler() -> Sampler:
    """The sampler `sampler_name` names, built here rather than left to the SDK, which reads the
    variable unstripped: `traceidratio ` (a trailing space from a manifest) was checked and
    logged as a ratio here, and silently replaced there by its default, every trace sampled."""
    name = sampler_name()
    if name == "traceidratio":
        return TraceIdRatioBased(_ratio())
    if name == "parentbased_traceidratio":
        return ParentBasedTraceIdRatio(_ratio())
    root = ALWAYS_OFF if name.endswith("always_off") else ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


def check_environment() -> list[str]:
    """Refuse what cannot be honoured; the exporters to build."""
    names = exporter_names()
    if "otlp" in names:
        otlp_protocol()
        otlp_endpoint()
        check_otlp_headers()
    sampler_name()
    return names


def gateway_version() -> str:
    try:
        return importlib.metadata.version("ci-gateway")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def _resource() -> Resource:
    """`OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` first; `ci-gateway` and its version
    where they say nothing (the SDK would otherwise name the service `unknown_service`)."""
    detected = Resource.create()
    defaults: dict[str, str] = {}
    name = str(detected.attributes.get(SERVICE_NAME, ""))
    if not name or name.startswith("unknown_service"):
        defaults[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    if SERVICE_VERSION not in detected.attributes:
        defaults[SERVICE_VERSION] = gateway_version()
    return detected.merge(Resource(defaults))


def _endpoint() -> str:
    """Where OTLP goes, for the start-up log line: scheme, host and port only."""
    parts = urlsplit(otlp_endpoint())  # checked: no user or password in it
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else parts.netloc


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    return OTLPSpanExporter()  # endpoint, headers, TLS, timeout: the OTEL_EXPORTER_OTLP_* vars


def build_provider() -> tuple[TracerProvider, str]:
    """The provider (not installed as OpenTelemetry's global one: the gateway's spans are its
    own business) with a batch processor per exporter, and a line describing it for the log."""
    names = check_environment()
    resource = _resource()
    # shutdown_on_exit=False: the gateway shuts it down itself, bounded, when it stops.
    provider = TracerProvider(sampler=_sampler(), resource=resource, shutdown_on_exit=False)
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    where = [f"OTLP/gRPC to {_endpoint()}" if name == "otlp" else "the console" for name in names]
    description = (
        f"service {resource.attributes.get(SERVICE_NAME)}, sampler {sampler_name()}, "
        f"export: {' and '.join(where) or 'none (OTEL_TRACES_EXPORTER=none)'}"
    )
    return provider, description
