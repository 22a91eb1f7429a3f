"""Profile the gateway process under load with py-spy, and summarise where its time goes.

`py-spy record --format raw` writes collapsed stacks; `summarise` turns them into the share of
samples per function, by self time and inclusive time. Sampling is non-blocking by default (the
gateway runs at full speed); `native=True` stops the process at each sample to read C frames as
well (gRPC's Cython core, libc system calls), which slows it but shows what Python frames hide:
`Handle._run` as "self" time means time spent in C code that asyncio called, i.e. grpc's core.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.clients import GatewayClient
from bench.loadgen import closed_loop_async
from bench.procs import Servers

_FRAME = re.compile(r"(?P<name>.*) \((?P<file>.*?)(?::\d+)?\)$")
_NOISE = (f"{sys.prefix}/lib/python3.11/site-packages/", str(Path.cwd()) + "/")


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for prefix in _NOISE:
        file = file.removeprefix(prefix)
    file = re.sub(r".*/lib/python3\.\d+/", "", file)
    return f"{match['name']} ({file})"


def summarise(raw: Path, top: int = 25) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[tuple[float, str]]:
        return [(round(100 * n / total, 1), name) for name, n in counter.most_common(top)]

    return {"samples": total, "self": share(own), "inclusive": share(inclusive)}


async def profile_gateway(
    servers: Servers, out_dir: Path, *, seconds: float, concurrency: int, native: bool
) -> dict[str, Any]:
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    suffix = "native" if native else "python"
    raw = out_dir / f"profile-gateway-{suffix}.txt"
    client = GatewayClient(servers.gateway_address)
    try:
        await closed_loop_async(client.submit, concurrency=concurrency, duration_s=1.0, warmup_s=0)
        args = [spy, "record", "--pid", str(servers.gateway.pid), "--duration", str(int(seconds))]
        args += ["--rate", "200", "--format", "raw", "--output", str(raw)]
        args += ["--native"] if native else ["--nonblocking"]
        process = subprocess.Popen(  # noqa: S603, ASYNC220 - py-spy of ours; starting it is quick
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            stats, _ = await closed_loop_async(
                client.submit, concurrency=concurrency, duration_s=seconds + 1.0, warmup_s=0.5
            )
            await asyncio.to_thread(process.wait, 30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    finally:
        await client.close()
    if not raw.exists():
        return {"error": f"py-spy wrote nothing (exit {process.returncode}); is ptrace allowed?"}
    return {"raw": str(raw), "calls_per_s": stats.calls_per_s, **summarise(raw)}
