"""Start the emulator and the gateway as pinned child processes, and always stop them.

`servers(...)` is a context manager yielding both processes' addresses, pids and CPU masks. The
children are stopped with SIGTERM (then SIGKILL after a grace period) by their own pids, and
their stderr goes to `bench/results/logs/<what>.log`, so a failed start can be read afterwards.
Each start overwrites its file: a gateway writes an access-log line per RPC (the production
default), and a full run would otherwise pile up hundreds of MB.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench.common import (
    ENV_SECRET_ID,
    ENV_SECRET_KEY,
    RESULTS_DIR,
    ROOT,
    SECRET_ID,
    SECRET_KEY,
)

START_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0


def default_cpus() -> tuple[int, int]:
    """(emulator CPU, client-side CPU): the first two CPUs we may use, or one CPU twice."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[0], cpus[1] if len(cpus) > 1 else cpus[0]


@dataclass(frozen=True)
class Child:
    pid: int
    cpus: list[int]
    info: dict[str, Any]


@dataclass(frozen=True)
class Servers:
    emulator: Child
    gateway: Child

    @property
    def emulator_url(self) -> str:
        return str(self.emulator.info["url"])

    @property
    def gateway_address(self) -> str:
        return str(self.gateway.info["address"])


def _read_announcement(
    process: subprocess.Popen[bytes], what: str, timeout_s: float
) -> dict[str, Any]:
    assert process.stdout is not None
    stdout: IO[bytes] = process.stdout
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if process.poll() is not None:
                break
            if selector.select(timeout=min(left, 0.5)):
                line = stdout.readline()
                if line:
                    return dict(json.loads(line))
    raise RuntimeError(f"the {what} did not start; see {RESULTS_DIR / 'logs'}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_GRACE_S)
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def child(
    args: list[str],
    what: str,
    extra_env: Mapping[str, str] | None = None,
    *,
    wrapper: Sequence[str] = (),
    start_timeout_s: float = START_TIMEOUT_S,
) -> Iterator[Child]:
    """`bench.serve` with `args`, until the block ends; with `wrapper`, run under that command
    (valgrind: `bench.instructions`), whose pid is then the one to measure."""
    logs = RESULTS_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # No OTEL_* of the machine's: a gateway traces only where the benchmark says (`extra_env`).
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    env |= {ENV_SECRET_ID: SECRET_ID, ENV_SECRET_KEY: SECRET_KEY, **(extra_env or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with (logs / f"{what}.log").open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*wrapper, sys.executable, "-m", "bench.serve", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=ROOT,
        )
        try:
            info = _read_announcement(process, what, start_timeout_s)
            yield Child(pid=process.pid, cpus=list(info["cpus"]), info=info)
        finally:
            _stop(process)


@contextlib.contextmanager
def servers(
    *,
    emulator_cpu: int,
    gateway_cpu: int,
    delay_s: float = 0.0,
    uvloop: bool = False,
    noop: bool = False,
    max_in_flight: int = 0,
    max_watchers_per_client: int = 0,
    tracing_env: Mapping[str, str] | None = None,
    gateway_src: Path | None = None,
    event_loop: str = "",
) -> Iterator[Servers]:
    """An emulator pinned to `emulator_cpu` and a gateway in front of it on `gateway_cpu`
    (with `noop`, a bare grpc.aio server with canned answers in the gateway's place). With
    `tracing_env`, the gateway traces, configured by those `OTEL_*` variables; with
    `gateway_src`, its `gateway` package is imported from that folder (another revision); with
    `event_loop`, it runs on that loop instead of its default (`auto`: uvloop)."""
    emulator_args = ["emulator", "--cpu", str(emulator_cpu), "--delay-s", str(delay_s)]
    with child(emulator_args, "emulator") as emulator:
        gateway_args = ["gateway", "--cpu", str(gateway_cpu), "--endpoint", emulator.info["url"]]
        if uvloop:
            gateway_args.append("--uvloop")
        if noop:
            gateway_args.append("--noop")
        if max_in_flight:
            gateway_args += ["--max-in-flight", str(max_in_flight)]
        if max_watchers_per_client:
            gateway_args += ["--max-watchers-per-client", str(max_watchers_per_client)]
        if tracing_env is not None:
            gateway_args.append("--tracing")
        if gateway_src is not None:
            gateway_args += ["--src", str(gateway_src)]
        if event_loop:
            gateway_args += ["--event-loop", event_loop]
        with child(gateway_args, "gateway", tracing_env) as gateway:
            yield Servers(emulator, gateway)
