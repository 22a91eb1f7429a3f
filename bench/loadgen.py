"""Closed-loop load: `concurrency` workers, each starting its next call when the last one ends.

Every loop is bounded twice, by time (`warmup_s + duration_s`) and by a call count, so no
benchmark can run away. Calls that end during the warm-up are not counted; throughput is the
calls completed in the measured window divided by its length, and the latency percentiles are
over exactly those calls. A failed call is counted as an error (its latency is not).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from bench.common import RunStats, cpu_seconds

DEFAULT_MAX_CALLS = 2_000_000


class _CpuWindow:
    """Reads each process's CPU time at the start and at the end of the measured window, from
    a thread of its own, so neither an event loop nor the worker threads have to."""

    def __init__(self, pids: Mapping[str, int], measure_from: float, stop_at: float) -> None:
        self._pids = dict(pids)
        self._times = (measure_from, stop_at)
        self._snapshots: list[dict[str, float]] = []
        self._thread = threading.Thread(target=self._run, name="cpu-window", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for when in self._times:  # two snapshots, each after a bounded sleep
            time.sleep(max(0.0, when - time.perf_counter()))
            self._snapshots.append({role: cpu_seconds(pid) for role, pid in self._pids.items()})

    def used(self) -> dict[str, float]:
        self._thread.join(timeout=5)
        if len(self._snapshots) != 2:
            return {}
        start, end = self._snapshots
        return {role: end[role] - start[role] for role in self._pids}


class _Recorder:
    def __init__(
        self, measure_from: float, stop_at: float, max_calls: int, pids: Mapping[str, int]
    ) -> None:
        self.measure_from = measure_from
        self.stop_at = stop_at
        self.max_calls = max_calls
        self.latencies: list[float] = []
        self.errors = 0
        self.started = 0
        self.first_error: str | None = None
        self.finished = 0
        self.finished_ok = 0
        self.cpu = _CpuWindow(pids, measure_from, stop_at)

    def may_start(self) -> bool:
        if self.started >= self.max_calls or time.perf_counter() >= self.stop_at:
            return False
        self.started += 1
        return True

    def record(self, began: float, ended: float, error: BaseException | None) -> None:
        self.finished += 1
        self.finished_ok += error is None
        if ended < self.measure_from or ended > self.stop_at:
            return
        if error is None:
            self.latencies.append(ended - began)
        else:
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"{type(error).__name__}: {str(error)[:300]}"

    def stats(self) -> RunStats:
        window = self.stop_at - self.measure_from
        return RunStats.from_latencies(
            self.latencies, self.errors, window, self.cpu.used(), self.finished, self.finished_ok
        )


async def closed_loop_async(
    call: Callable[[], Awaitable[object]],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    max_calls: int = DEFAULT_MAX_CALLS,
    cpu_pids: Mapping[str, int] | None = None,
) -> tuple[RunStats, str | None]:
    now = time.perf_counter()
    recorder = _Recorder(now + warmup_s, now + warmup_s + duration_s, max_calls, cpu_pids or {})

    async def worker() -> None:
        while recorder.may_start():
            began = time.perf_counter()
            error: BaseException | None = None
            try:
                await call()
            except Exception as exc:  # any failure of the system under test is data here
                error = exc
            recorder.record(began, time.perf_counter(), error)

    async with asyncio.timeout(warmup_s + duration_s + 60):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return recorder.stats(), recorder.first_error


def closed_loop_threads(
    call: Callable[[], object],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    max_calls: int = DEFAULT_MAX_CALLS,
    cpu_pids: Mapping[str, int] | None = None,
) -> tuple[RunStats, str | None]:
    """The same loop on a thread pool of `concurrency` threads (for the synchronous SDK)."""
    now = time.perf_counter()
    recorder = _Recorder(now + warmup_s, now + warmup_s + duration_s, max_calls, cpu_pids or {})
    lock = threading.Lock()

    def may_start() -> bool:
        with lock:
            return recorder.may_start()

    def worker() -> None:
        while may_start():
            began = time.perf_counter()
            error: BaseException | None = None
            try:
                call()
            except Exception as exc:  # any failure of the system under test is data here
                error = exc
            ended = time.perf_counter()
            with lock:
                recorder.record(began, ended, error)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sdk") as pool:
        futures = [pool.submit(worker) for _ in range(concurrency)]
        for future in futures:
            future.result(timeout=warmup_s + duration_s + 60)
    return recorder.stats(), recorder.first_error
