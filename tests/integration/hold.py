"""Holding CI requests inside the emulator, so calls are certainly in flight when a test acts."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ci_emulator.hosts import Target

HOLD_S = 10.0


class Hold:
    """A request hook that keeps every CI request in the emulator until released, and says
    when `count` of them are held: tests fill slots or drains with it, deterministically and
    without a timed latency."""

    def __init__(self, count: int) -> None:
        self.count = 0
        self.target = count
        self.full = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: web.Request, target: Target) -> web.StreamResponse | None:
        self.count += 1
        if self.count >= self.target:
            self.full.set()
        async with asyncio.timeout(HOLD_S):  # bounded: a failing test still ends
            await self.release.wait()
        return None
