"""`start_gateway` owns what it builds: the credentials provider is started and closed through
its protocol (nothing probes for the methods), and a start that fails half-way closes whatever it
had built already, so every port it bound is free again."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from gateway.api.server import start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider

EXPIRY = 2_000_000_000.0


class RecordingProvider(StaticCredentialsProvider):
    """Static keys that remember the lifecycle calls the gateway made."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__(credentials, "recording")
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")

    async def close(self) -> None:
        self.calls.append("close")

    def expires_at(self) -> float | None:
        return EXPIRY


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


async def test_the_gateway_starts_closes_and_watches_its_credentials(
    settings: Settings, credentials: Credentials
) -> None:
    provider = RecordingProvider(credentials)
    gateway = await start_gateway(settings, provider)
    try:
        assert provider.calls == ["start"]
        expiry = list(gateway.metrics.samples("ci_gateway_credentials_expiry_timestamp_seconds"))
        assert expiry == [({}, EXPIRY)]
    finally:
        await gateway.stop(grace_s=0)
    assert provider.calls == ["start", "close"]
    await gateway.stop(grace_s=0)  # a second stop is a no-op
    assert provider.calls == ["start", "close"]


async def test_a_failed_start_closes_what_it_built_and_frees_its_ports(
    settings: Settings, credentials: Credentials
) -> None:
    first = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        provider = RecordingProvider(credentials)
        ports = replace(settings, metrics_listen=free_address(), health_listen=free_address())
        # The API port is taken: the ops and health ports were bound (and credentials started)
        # before the API server found out.
        with pytest.raises(OSError, match="cannot listen"):
            await start_gateway(replace(ports, listen=first.address), provider)
        assert provider.calls == ["start", "close"]
        again = await start_gateway(ports, provider)
        try:
            assert again.ops_address == ports.metrics_listen
            assert again.health_address == ports.health_listen
        finally:
            await again.stop(grace_s=0)
    finally:
        await first.stop(grace_s=0)
