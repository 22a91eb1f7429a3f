"""Fixtures for the tracing tests: an OTLP receiver, the OTEL_* variables pointing at it, and a
gateway with `[tracing] enabled` in front of the test's emulator."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings, Tracing
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.fixtures.otlp import OtlpReceiver, otlp_receiver

SERVICE_NAME = "ci-gateway-under-test"


@pytest.fixture
def clean_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* variable of the machine's leaks into a test."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
async def receiver(
    monkeypatch: pytest.MonkeyPatch, clean_otel_environment: None
) -> AsyncIterator[OtlpReceiver]:
    """A receiver, and the standard variables that send the gateway's spans to it."""
    async with otlp_receiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", SERVICE_NAME)
        yield running


def traced(settings: Settings) -> Settings:
    return replace(settings, tracing=Tracing(enabled=True))


@pytest.fixture
async def traced_gateway(
    receiver: OtlpReceiver, settings: Settings, credentials: Credentials
) -> AsyncIterator[RunningGateway]:
    """Stopped by the test (stopping flushes the spans); stopped here too if the test failed
    first, so the next test can install tracing again."""
    running = await start_gateway(traced(settings), StaticCredentialsProvider(credentials))
    try:
        yield running
    finally:
        await running.stop(grace_s=0)
