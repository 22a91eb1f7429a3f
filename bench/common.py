"""What every benchmark shares: the bench bucket and keys, signing a request to the emulator,
CPU pinning, RSS, and statistics.

Figures are reported as the median of the repetitions with their min and max (`Spread`), so a
single noisy repetition cannot move a headline number and the table still shows how noisy it
was. Latency percentiles are nearest-rank over every call of one repetition.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateway.upstream import signing

BUCKET = "benchbucket-1250000000"
REGION = "ap-guangzhou"
OBJECT_KEY = "input/bench.mp4"
CI_HOST = f"{BUCKET}.ci.{REGION}.myqcloud.com"

# Fixed, obviously fake keys: the emulator only ever runs on loopback for a benchmark.
SECRET_ID = "AKIDbenchmark00000000000000000000000"  # noqa: S105 - a loopback-only fake
SECRET_KEY = "bench-secret-key-not-a-real-one-00000"  # noqa: S105 - a loopback-only fake

ENV_SECRET_ID = "BENCH_SECRET_ID"  # noqa: S105 - variable names, not secrets
ENV_SECRET_KEY = "BENCH_SECRET_KEY"  # noqa: S105

ROOT = Path(__file__).resolve().parent.parent
"""The checkout: where `python -m bench.*` children run, whatever the caller's own folder."""
RESULTS_DIR = ROOT / "bench" / "results"

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def signed(
    headers: dict[str, str],
    *,
    method: str = "POST",
    path: str = "/jobs",
    params: signing.Params | None = None,
    secret_id: str = SECRET_ID,
    secret_key: str = SECRET_KEY,
    valid_s: int = 3600,
) -> dict[str, str]:
    """`headers` with the Authorization the emulator verifies: over the headers CI signs (as
    the gateway picks them), valid from a minute ago (clock skew) for `valid_s` seconds."""
    now = int(time.time())
    headers["Authorization"] = signing.authorization(
        secret_id=secret_id,
        secret_key=secret_key,
        method=method,
        host=None,
        path=path,
        params=params or {},
        headers=signing.select_signed_headers(headers),
        start=now - 60,
        end=now + valid_s,
    )
    return headers


def clean_proxy_environment() -> None:
    """`requests` (the SDK) reads proxy variables; a NO_PROXY could send it off loopback."""
    for name in PROXY_VARIABLES:
        os.environ.pop(name, None)
        os.environ.pop(name.lower(), None)


def pin(cpu: int | None) -> list[int]:
    """Pin this process (and the threads it starts from now on) to `cpu`; return the CPU set."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    return sorted(os.sched_getaffinity(0))


def affinity(pid: int) -> list[int]:
    return sorted(os.sched_getaffinity(pid))


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MiB (VmRSS from /proc; Linux only, as is pinning)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Spread:
    """Median of the repetitions, with their min and max."""

    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return cls(math.nan, math.nan, math.nan)
        return cls(statistics.median(finite), min(finite), max(finite))

    def fmt(self, digits: int = 0, scale: float = 1.0) -> str:
        if math.isnan(self.median):
            return "-"
        m, lo, hi = (round(v * scale, digits) for v in (self.median, self.min, self.max))
        if digits == 0:
            return f"{int(m)} [{int(lo)}-{int(hi)}]"
        return f"{m:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


@dataclass(frozen=True)
class RunStats:
    """One repetition of one closed-loop load: completed calls, errors, latency percentiles."""

    calls: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_call: Mapping[str, float] = field(default_factory=dict)
    """CPU time (user + system, all threads) each process spent per completed call."""
    finished: int = 0
    """Every call that ended, successful or not, warm-up and tail included."""
    finished_ok: int = 0
    """Of those, the successful ones."""

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else math.nan

    @classmethod
    def from_latencies(
        cls,
        latencies_s: list[float],
        errors: int,
        seconds: float,
        cpu_s: Mapping[str, float] | None = None,
        finished: int = 0,
        finished_ok: int = 0,
    ) -> RunStats:
        latencies_s.sort()
        calls = len(latencies_s)
        return cls(
            finished=finished,
            finished_ok=finished_ok,
            calls=calls,
            errors=errors,
            seconds=seconds,
            p50_ms=percentile(latencies_s, 0.50) * 1000,
            p99_ms=percentile(latencies_s, 0.99) * 1000,
            cpu_us_per_call={
                role: used / calls * 1e6 if calls else math.nan
                for role, used in (cpu_s or {}).items()
            },
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "calls_per_s": self.calls_per_s}


@dataclass(frozen=True)
class Summary:
    """The repetitions of one cell (client x operation x concurrency), summarised."""

    calls_per_s: Spread
    p50_ms: Spread
    p99_ms: Spread
    cpu_us_per_call: Mapping[str, Spread]
    errors: int
    first_error: str | None
    runs: tuple[RunStats, ...]

    @classmethod
    def of(cls, runs: Sequence[RunStats], first_error: str | None = None) -> Summary:
        roles = sorted({role for r in runs for role in r.cpu_us_per_call})
        return cls(
            calls_per_s=Spread.of([r.calls_per_s for r in runs]),
            p50_ms=Spread.of([r.p50_ms for r in runs]),
            p99_ms=Spread.of([r.p99_ms for r in runs]),
            cpu_us_per_call={
                role: Spread.of([r.cpu_us_per_call.get(role, math.nan) for r in runs])
                for role in roles
            },
            errors=sum(r.errors for r in runs),
            first_error=first_error,
            runs=tuple(runs),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls_per_s": asdict(self.calls_per_s),
            "p50_ms": asdict(self.p50_ms),
            "p99_ms": asdict(self.p99_ms),
            "cpu_us_per_call": {k: asdict(v) for k, v in self.cpu_us_per_call.items()},
            "errors": self.errors,
            "first_error": self.first_error,
            "runs": [r.as_dict() for r in self.runs],
        }


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator and not math.isnan(denominator) else math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of `pid` so far (from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # skip "pid (comm) "; fields[0] is field 3
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


_COLLECTED = re.compile(rb"Collected : (\d+)")


def callgrind_instructions(argv: Sequence[str]) -> int:
    """The instructions `python *argv` runs in its whole life under callgrind (the in-process
    items' `--callgrind`: run with N and 2N calls and differenced, start-up cancels out).
    PYTHONHASHSEED fixed: a dict's layout, and so its probes, may not differ between the two."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(  # noqa: S603
        [*command, *argv], capture_output=True, env=env, check=False, cwd=ROOT
    )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return int(found[1])


def callgrind_per_call(argv: Callable[[int], Sequence[str]], calls: int) -> float:
    """Instructions per call of a command whose whole life is its calls: `argv(calls)` and
    `argv(2 * calls)` counted (`callgrind_instructions`) and differenced, so that start-up,
    imports and warm-up, the same in both runs, cancel out."""
    once = callgrind_instructions(argv(calls))
    twice = callgrind_instructions(argv(2 * calls))
    return (twice - once) / calls
