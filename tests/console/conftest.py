"""Fixtures for the operator's CLI: a gateway that notices job changes quickly, and the CLI run
in the test's own event loop against it (`jobs`), with its streams captured."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace

import pytest

from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings, Tracking
from gateway.console.commands import run
from gateway.credentials import Credentials, StaticCredentialsProvider

FAST = Tracking(poll_initial_s=0.05, poll_max_s=0.2)


@dataclass
class Done:
    code: int
    out: str
    err: str


class Capture(io.StringIO):
    """Captured output that a test can await (`wait_for`) while the command is still running;
    with `tty` it says it is a terminal, so `watch` draws its bar."""

    def __init__(self, *, tty: bool = False) -> None:
        super().__init__()
        self._tty = tty
        self._written = asyncio.Event()

    def isatty(self) -> bool:
        return self._tty

    def write(self, text: str) -> int:
        self._written.set()
        return super().write(text)

    async def wait_for(self, text: str, timeout: float = 20.0) -> None:
        """Until `text` has been written; each pass waits for the next write."""
        async with asyncio.timeout(timeout):
            while text not in self.getvalue():
                self._written.clear()
                await self._written.wait()


Jobs = Callable[..., Coroutine[None, None, Done]]


async def run_jobs(
    address: str | None,
    *argv: str,
    stdin: str = "",
    out: Capture | None = None,
    environ: Mapping[str, str] | None = None,
) -> Done:
    """`ci-gateway jobs *argv` against `address` (none: as given), with an empty environment
    unless one is passed, so the machine's CI_GATEWAY_* variables never leak in."""
    out = out or Capture()
    err = io.StringIO()
    args = [*argv, "--address", address] if address else list(argv)
    code = await run(args, out=out, err=err, stdin=io.StringIO(stdin), environ=environ or {})
    return Done(code, out.getvalue(), err.getvalue())


@pytest.fixture
async def fast_gateway(
    settings: Settings, credentials: Credentials
) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(
        replace(settings, tracking=FAST), StaticCredentialsProvider(credentials)
    )
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


@pytest.fixture
def jobs(fast_gateway: RunningGateway) -> Jobs:
    async def call(*argv: str, **options: object) -> Done:
        return await run_jobs(fast_gateway.address, *argv, **options)  # type: ignore[arg-type]

    return call
