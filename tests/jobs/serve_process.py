"""`ci-gateway serve` as a child process of a test: its JSON log lines awaited, never slept on.

The process's stderr (where the gateway logs, one JSON object a line) is read by a task for as
long as the process lives, so a chatty gateway never blocks on a full pipe, and a test waits for
a particular line with a deadline (`line`). Readiness is the gRPC health check on the API
service (`wait_until_serving`), watched as a stream, not polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto import service_pb2
from gateway.credentials import ENV_SECRET_ID, ENV_SECRET_KEY, Credentials

Line = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
API_SERVICE: str = service_pb2.DESCRIPTOR.services_by_name["MediaJobService"].full_name
WAIT_S = 15.0


def serve_command(config: Path) -> list[str]:
    """The installed `ci-gateway` console script (the product), else `python -m gateway`."""
    script = shutil.which("ci-gateway", path=str(Path(sys.executable).parent))
    head = [script] if script else [sys.executable, "-m", "gateway"]
    return [*head, "serve", "--config", str(config)]


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_config(path: Path, top: Mapping[str, object], **sections: Mapping[str, object]) -> Path:
    lines = [f"{key} = {toml_value(value)}" for key, value in top.items()]
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class ServeProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[Line] = []
        self.raw: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, config: Path, credentials: Credentials) -> ServeProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CI_GATEWAY_")}
        env.update({ENV_SECRET_ID: credentials.secret_id, ENV_SECRET_KEY: credentials.secret_key})
        process = await asyncio.create_subprocess_exec(
            *serve_command(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:  # ends at EOF, when the process exits
            text = raw.decode(errors="replace")
            async with self._changed:
                self.raw.append(text)
                try:
                    line = json.loads(text)
                except ValueError:
                    line = None
                if isinstance(line, dict):
                    self.lines.append(line)
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def line(self, matches: Callable[[Line], bool], timeout: float = WAIT_S) -> Line:
        """The first JSON log line that `matches`, waiting for it (bounded) if need be."""

        async def found() -> Line:
            async with self._changed:
                while True:  # each pass waits for the next line (or EOF)
                    for line in self.lines:
                        if matches(line):
                            return line
                    if self._reader.done():
                        raise AssertionError("the gateway exited:\n" + self.log)
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(found(), timeout)
        except TimeoutError:
            raise AssertionError("no such log line; the log:\n" + self.log) from None

    def message_line(self, msg: str) -> Callable[[Line], bool]:
        return lambda line: line.get("msg") == msg

    async def terminate(self, timeout: float = WAIT_S) -> int:
        """SIGTERM, then the exit status (bounded)."""
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.wait_for(self._reader, timeout)
        return code

    async def kill(self) -> None:
        """For cleanup after a failure: never leave a process behind."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    @property
    def log(self) -> str:
        return "".join(self.raw)


async def wait_until_serving(address: str, timeout: float = WAIT_S) -> None:
    """Until the API service's health is SERVING, by the health Watch stream (bounded)."""
    async with grpc.aio.insecure_channel(address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=API_SERVICE), timeout=timeout
        )
        async for reply in watch:  # bounded by the call's deadline
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                watch.cancel()
                return
        raise AssertionError(f"the health watch of {address} ended before SERVING")
