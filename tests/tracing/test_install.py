"""Turning tracing on and off: the switch, OpenTelemetry's variables, and its absence.

Off is the default, and the OTEL_* variables alone do not turn it on; `ci-gateway serve` traces
when the switch is on and exports where the standard variables say; a value it cannot honour,
or enabling it without the packages, stops it at start with a message, not a traceback; and
without the packages, a gateway with tracing off runs and never imports them.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import textwrap
import tomllib
from pathlib import Path

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway import tracing
from gateway._proto import service_pb2, service_pb2_grpc
from gateway.api.server import RunningGateway
from gateway.config.load import load_settings
from gateway.credentials import ENV_SECRET_ID, ENV_SECRET_KEY, Credentials
from gateway.tracing import hooks
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.fixtures.otlp import OtlpReceiver
from tests.fixtures.serve_process import (
    ROOT,
    ServeRefusal,
    StartServe,
    gateway_env,
    wait_until_serving,
)
from tests.tracing.conftest import SERVICE_NAME
from tests.tracing.test_span_tree import record_ci_requests

S = service_pb2
START_S = 60.0  # a cold interpreter importing grpc, protobuf, aiohttp, lxml and OpenTelemetry
ENABLED = "CI_GATEWAY_TRACING_ENABLED"


@pytest.mark.parametrize(
    ("written", "enabled"),
    [("true", True), ("1", True), ("on", True), ("false", False), ("0", False), ("no", False)],
)
def test_the_switch_reads_like_a_switch(written: str, enabled: bool) -> None:
    assert load_settings(environ={ENABLED: written}).tracing.enabled is enabled


def test_a_switch_that_is_neither_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"tracing\.enabled"):
        load_settings(environ={ENABLED: "maybe"})
    config = tmp_path / "gateway.toml"
    config.write_text("[tracing]\nenabled = true\n")
    assert load_settings(config_file=config).tracing.enabled is True
    config.write_text('[tracing]\nenabled = "perhaps"\n')
    with pytest.raises(ValueError, match=r"tracing\.enabled"):
        load_settings(config_file=config)


async def test_off_by_default_even_with_an_otlp_endpoint_set(
    receiver: OtlpReceiver, gateway: RunningGateway, emulator: RunningEmulator
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT is set (the receiver fixture sets it), the switch is not."""
    seen = record_ci_requests(emulator)
    assert os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] == receiver.endpoint
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        await stub.GetMediaInfo(S.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=10)
    assert hooks._active is None
    await gateway.stop()
    assert seen and all(request.traceparent is None for request in seen)
    assert receiver.requests == []


def test_otel_sdk_disabled_wins_over_the_switch(
    monkeypatch: pytest.MonkeyPatch, clean_otel_environment: None
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.install(enabled=True) is None
    assert hooks._active is None


async def test_one_process_installs_tracing_once(
    monkeypatch: pytest.MonkeyPatch, clean_otel_environment: None
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    installed = tracing.install(enabled=True)
    assert installed is not None
    try:
        with pytest.raises(RuntimeError, match="already installed"):
            tracing.install(enabled=True)
    finally:
        await installed.shutdown()
    assert hooks._active is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_TRACES_EXPORTER", "otlp,none"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
    ],
)
def test_serve_refuses_otel_values_it_cannot_honour(
    serve_refusal: ServeRefusal,
    monkeypatch: pytest.MonkeyPatch,
    clean_otel_environment: None,
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv(variable, value)
    keys = Credentials("AKIDx", "never-printed-secret")
    stderr = serve_refusal("--listen", "127.0.0.1:0", credentials=keys, **{ENABLED: "true"})
    assert variable in stderr
    # The same values are harmless while tracing is off.
    tracing.check(enabled=False)


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
def test_an_otlp_endpoint_with_a_password_is_refused_without_repeating_it(
    monkeypatch: pytest.MonkeyPatch, clean_otel_environment: None, variable: str
) -> None:
    """OTLP/gRPC never sends a URL's user and password: every span would be dropped, and the
    exporter would log the password with each failed export."""
    monkeypatch.setenv(variable, "http://otel:pa55word-in-url@127.0.0.1:4317")
    with pytest.raises(ValueError, match=variable) as refused:
        tracing.check(enabled=True)
    assert "pa55word-in-url" not in str(refused.value)
    tracing.check(enabled=False)  # harmless while tracing is off


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"]
)
def test_otlp_headers_the_exporter_cannot_read_are_refused_without_repeating_them(
    monkeypatch: pytest.MonkeyPatch, clean_otel_environment: None, variable: str
) -> None:
    """The exporter would drop such an entry, logging it whole: the collector's token."""
    monkeypatch.setenv(variable, "x-tenant=ci, Authorization: Bearer tok-in-header")
    with pytest.raises(ValueError, match=variable) as refused:
        tracing.check(enabled=True)
    assert "tok-in-header" not in str(refused.value)
    monkeypatch.setenv(variable, "x-tenant=ci, authorization=Bearer%20tok , api-key = k+/=")
    tracing.check(enabled=True)


def test_a_sampling_ratio_must_be_a_ratio(
    monkeypatch: pytest.MonkeyPatch, clean_otel_environment: None
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    tracing.check(enabled=True)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "2")
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER_ARG"):
        tracing.check(enabled=True)


async def test_serve_traces_where_the_standard_variables_say(
    receiver: OtlpReceiver,
    serve_processes: StartServe,
    emulator: RunningEmulator,
    credentials: Credentials,
) -> None:
    """The product path: `ci-gateway serve`, switched on by its environment variable, exports
    to OTEL_EXPORTER_OTLP_ENDPOINT as OTEL_SERVICE_NAME, and flushes on SIGTERM."""
    serve = await serve_processes(
        "--listen", "127.0.0.1:0",
        "--endpoint-url", emulator.url,
        "--default-bucket", BUCKET,
        "--default-region", REGION,
        "--log-format", "json",
        env=gateway_env(credentials, **{ENABLED: "true"}),
    )  # fmt: skip
    on = await serve.line(lambda line: str(line.get("msg")).startswith("tracing: on"), START_S)
    assert receiver.endpoint in on["msg"] and SERVICE_NAME in on["msg"]
    address = (await serve.line("gateway listening", START_S))["address"]
    await wait_until_serving(address)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        await stub.GetMediaInfo(S.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=10)
    assert await serve.terminate() == 0
    names = {(span.name, span.resource["service.name"]) for span in receiver.spans()}
    assert names == {
        ("ci.media.v1.MediaJobService/GetMediaInfo", SERVICE_NAME),
        ("CI GetMediaInfo", SERVICE_NAME),
    }


# A production install without the `tracing` extra: OpenTelemetry made unimportable.
_WITHOUT_OTEL = """
import sys
sys.modules["opentelemetry"] = None
"""


async def test_enabling_tracing_without_the_packages_names_the_extra() -> None:
    script = _WITHOUT_OTEL + "from gateway.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    keys = Credentials("AKIDx", "never-printed-secret")
    env = gateway_env(keys, **{ENABLED: "true"}, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-c", script, "serve", "--listen", "127.0.0.1:0"]
    status, _, err = await _run(command, env)
    assert status == 2, err
    assert "pip install 'ci-gateway[tracing]'" in err
    assert "Traceback" not in err
    assert keys.secret_key not in err


async def _run(command: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), START_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_without_the_packages_a_gateway_with_tracing_off_serves_and_never_imports_them(
    emulator: RunningEmulator, credentials: Credentials
) -> None:
    script = _WITHOUT_OTEL + textwrap.dedent(
        f"""
        import asyncio, os
        import grpc
        from gateway._proto import service_pb2, service_pb2_grpc
        from gateway.api.server import start_gateway
        from gateway.config.settings import Settings
        from gateway.credentials import Credentials, StaticCredentialsProvider

        async def main():
            settings = Settings(
                listen="127.0.0.1:0", default_bucket={BUCKET!r}, default_region={REGION!r},
                endpoint_url={emulator.url!r},
            )
            keys = Credentials(os.environ[{ENV_SECRET_ID!r}], os.environ[{ENV_SECRET_KEY!r}])
            gateway = await start_gateway(settings, StaticCredentialsProvider(keys))
            try:
                async with grpc.aio.insecure_channel(gateway.address) as channel:
                    stub = service_pb2_grpc.MediaJobServiceStub(channel)
                    request = service_pb2.GetMediaInfoRequest(object={SAMPLE_KEY!r})
                    await stub.GetMediaInfo(request, timeout=10)
            finally:
                await gateway.stop(grace_s=0)

        asyncio.run(main())
        print(sorted(m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v))
        """
    )
    env = gateway_env(credentials, PYTHONPATH=str(ROOT))
    status, out, err = await _run([sys.executable, "-c", script], env)
    assert status == 0, err
    assert out.strip() == "[]"


def test_only_the_tracing_package_imports_opentelemetry_and_only_the_extra_installs_it() -> None:
    importers = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "gateway").rglob("*.py")
        if re.search(r"^\s*(from|import) opentelemetry", path.read_text(), re.M)
    )
    assert importers == ["gateway/tracing/export.py", "gateway/tracing/spans.py"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [dep for dep in project["dependencies"] if dep.startswith("opentelemetry")]
    extras = project["optional-dependencies"]
    assert {dep.split(">")[0] for dep in extras["tracing"]} == {
        "opentelemetry-api",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-grpc",
    }
    assert any("tracing" in dep for dep in extras["dev"] if dep.startswith("ci-gateway["))
    # The image can trace: its install names the extra.
    assert "[tracing]" in next(
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("RUN pip")
    )
