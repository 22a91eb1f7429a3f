"""The benchmark harness runs on a clean checkout and measures all three clients.

Not a performance test: nothing here is timed or compared with a target (that is `make bench`).
It proves that `python -m bench.run` still starts its pinned emulator and gateway processes,
drives the gateway, the direct call and the official SDK, and writes its JSON, so the numbers in
bench/README.md stay reproducible.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_bench_run_measures_every_client_and_writes_json() -> None:
    name = f"ci-smoke-{uuid.uuid4().hex[:8]}"
    result = ROOT / "bench" / "results" / f"{name}.json"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.run", "--only", "signer,submit,ratio", "--quick",
             "--concurrency", "1", "--ratio-concurrency", "1", "--duration", "0.2",
             "--warmup", "0.1", "--name", name],
            cwd=ROOT, capture_output=True, text=True, timeout=110,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        data = json.loads(result.read_text())
    finally:
        result.unlink(missing_ok=True)
        result.with_suffix(".md").unlink(missing_ok=True)
    rows = {row["client"]: row for row in data["submit"]}
    assert set(rows) == {"gateway", "direct", "sdk"}
    for client, row in rows.items():
        assert row["errors"] == 0, (client, row["first_error"])
        assert row["runs"][0]["calls"] > 0, client
    assert data["signer"]["ours_us"]["median"] > 0
    assert data["signer"]["sdk_us"]["median"] > 0
    assert "Signer" in done.stdout and "Submit" in done.stdout
    # The headline (issue 16): every operation's ratio to its floors, measured with the access
    # log on (one line per RPC the gateway served).
    ratio = {row["operation"]: row for row in data["ratio"]["rows"]}
    assert set(ratio) == {"submit", "describe", "list"}
    for operation, row in ratio.items():
        assert row["ratio"]["median"] > 0, operation
        assert row["ratio_vs_own_stack"]["median"] > 0, operation
    assert data["ratio"]["reps"][0]["access_lines_per_rpc"]["gateway"] == 1.0
    assert "Headline" in done.stdout


def test_inproc_harness_runs_every_operation_with_its_access_lines() -> None:
    """`python -m bench.inproc` (issue 16's in-process figures): the real chain and servicer
    answer each operation, and the access log holds one line per call, or it exits non-zero."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.inproc", "--calls", "20", "--reps", "2", "--warmup", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["submit", "describe", "list"]


def test_validation_driver_validates_both_of_its_requests() -> None:
    """`python -m bench.validation` (session 14): both requests pass validation (a refused one
    would measure the refusal), or it exits non-zero."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.validation", "--calls", "20", "--reps", "2", "--warmup", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["submit", "rich"]


def test_latency_trace_measures_every_client_at_concurrency_1() -> None:
    """`python -m bench.latency_trace` (issue 16's latency at concurrency 1) starts its pinned
    processes and measures the gateway, the floor and both direct calls (the stage trace, which
    needs perf, is `test_latency_stages_*`'s on recorded text)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.latency_trace", "--ops", "submit,describe", "--calls", "10",
         "--reps", "1", "--warmup", "5", "--trace-calls", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[1].strip() for line in done.stdout.splitlines() if line.startswith("|")]
    for client in ("gateway", "floor", "floor-uvloop", "direct", "direct-own", "zero-logic"):
        assert client in rows, client


# What `perf script` printed for one gateway call and one direct call (pids: client 10, its grpc
# thread 11, gateway 20 with grpc threads 21 and 22, emulator 30), trimmed to the lines a stage
# is read from plus some that must not be taken for one.
_GATEWAY_CALL = """\
10/10 100.000100: syscalls:sys_enter_sendmsg: fd: 0x00000007, msg: 0x1, flags: 0x00000000
20/21 100.000200: syscalls:sys_enter_recvmsg: fd: 0x00000013, msg: 0x1, flags: 0x00000000
20/21 100.000210: syscalls:sys_exit_recvmsg: 0x5c
20/20 100.000300: syscalls:sys_enter_recvfrom: fd: 0x0000000e, ubuf: 0x1, size: 0x1
20/20 100.000301: syscalls:sys_exit_recvfrom: 0x1
20/20 100.000350: syscalls:sys_enter_write: fd: 0x00000002, buf: 0x1, count: 0x00000040
20/20 100.000400: syscalls:sys_enter_write: fd: 0x0000000d, buf: 0x1, count: 0x00000008
20/20 100.000800: syscalls:sys_enter_write: fd: 0x00000015, buf: 0x1, count: 0x00000285
30/30 100.000900: syscalls:sys_enter_recvfrom: fd: 0x00000007, ubuf: 0x1, size: 0x40000
30/30 100.000910: syscalls:sys_exit_recvfrom: 0x285
30/30 100.001400: syscalls:sys_enter_sendto: fd: 0x00000007, buff: 0x1, len: 0x00000289
20/20 100.001500: syscalls:sys_enter_read: fd: 0x0000000e, buf: 0x1, count: 0x00040000
20/20 100.001501: syscalls:sys_exit_read: 0x1
20/20 100.001510: syscalls:sys_enter_read: fd: 0x00000015, buf: 0x1, count: 0x00040000
20/20 100.001520: syscalls:sys_exit_read: 0x289
20/20 100.001800: syscalls:sys_enter_sendmsg: fd: 0x00000013, msg: 0x1, flags: 0x00000000
20/20 100.001850: syscalls:sys_enter_write: fd: 0x00000002, buf: 0x1, count: 0x00000180
10/11 100.001900: syscalls:sys_enter_recvmsg: fd: 0x00000007, msg: 0x1, flags: 0x00000000
10/11 100.001910: syscalls:sys_exit_recvmsg: 0xfffffffffffffff5
10/11 100.001950: syscalls:sys_enter_recvmsg: fd: 0x00000007, msg: 0x1, flags: 0x00000000
10/11 100.001960: syscalls:sys_exit_recvmsg: 0xd2
"""
_DIRECT_CALL = """\
10/10 200.000100: syscalls:sys_enter_sendto: fd: 0x00000009, buff: 0x1, len: 0x0000023f
30/30 200.000200: syscalls:sys_exit_recvfrom: 0x23f
30/30 200.000600: syscalls:sys_enter_sendto: fd: 0x00000008, buff: 0x1, len: 0x0000025a
10/10 200.000700: syscalls:sys_exit_recvfrom: 0x25a
"""
_SWITCHES = "\n".join(
    f"[{cpu:03d}] {at}: sched:sched_switch: prev_comm=x prev_pid=1 prev_prio=120 prev_state=S"
    f" ==> next_comm=x next_pid={tid} next_prio=120"
    for cpu, at, tid in (
        (1, "100.000000000", 10),
        (1, "100.000150000", 21),
        (1, "100.000250000", 20),
        (1, "100.000850000", 0),
        (0, "100.000000000", 99),
        (0, "100.000880000", 30),
    )
)


def test_latency_stages_follow_one_call_through_the_gateway() -> None:
    from bench import latency_stages

    events = latency_stages.parse_syscalls(_GATEWAY_CALL)
    [row] = latency_stages.stages(events, [(100.0, 100.002)], client=10, gateway=20, emulator=30)
    ms = {stage: round(seconds * 1000, 3) for stage, seconds in row.items()}
    assert ms == {
        "client sent": 0.1,
        "gateway read": 0.21,
        "loop woken": 0.301,
        # Not the access line of an earlier call (fd 2) nor grpc's eventfd kick (8 bytes).
        "CI request written": 0.8,
        "CI read": 0.91,
        "CI answered": 1.4,
        # Not grpc's wake-up byte: the read on the fd the request went out on.
        "answer read": 1.52,
        "access line": 1.85,
        "reply sent": 1.8,
        # Not the read that found nothing (EAGAIN).
        "client read": 1.96,
        "done": 2.0,
    }
    occupancy = latency_stages.Occupancy(
        _SWITCHES,
        {10: "client", 11: "client", 20: "gateway loop", 21: "gateway threads", 30: "emulator"},
    )
    held = occupancy.during(1, 100.0001, 100.0009)
    assert {who: round(s * 1e6) for who, s in held.items() if s} == {
        "client": 50, "gateway threads": 100, "gateway loop": 600, "idle": 50,
    }  # fmt: skip
    assert round(occupancy.during(0, 100.0008, 100.0009)["others"] * 1e6) == 80
    lines = latency_stages.table(
        [row], latency_stages.GATEWAY_STAGES, occupancy, [(100.0, 100.002)], {"gw": 1}
    )
    assert lines[5].endswith("| 0.800 | +0.499 | gateway loop 499 |"), lines[5]


def test_latency_stages_follow_one_direct_call() -> None:
    from bench import latency_stages

    events = latency_stages.parse_syscalls(_DIRECT_CALL)
    [row] = latency_stages.stages(events, [(200.0, 200.0008)], client=10, gateway=None, emulator=30)
    assert {stage: round(seconds * 1000, 3) for stage, seconds in row.items()} == {
        "client sent": 0.1, "CI read": 0.2, "CI answered": 0.6, "client read": 0.7, "done": 0.8,
    }  # fmt: skip


def test_instruction_counts_read_from_callgrind_dumps_and_divided_by_both_floors() -> None:
    """`python -m bench.instructions` (issue 16's quotient in instructions): a dump's total is
    read from callgrind 3.19's `summary:` line and older ones' `totals:`, and the ratio divides
    the gateway by the sum of its two floors (a baseline by the same sum)."""
    from bench.instructions import render, total_instructions

    assert total_instructions(b"events: Ir\nsummary: 278989864\n") == 278_989_864
    assert total_instructions(b"# callgrind format\ntotals: 12345\n") == 12_345
    with pytest.raises(ValueError, match="no summary or totals"):
        total_instructions(b"fn=main\n0 12\n")  # never read as 0
    rows = {"submit": {"gateway": 1_500, "gRPC floor": 600, "HTTP floor": 400, "baseline": 2_000}}
    table = render(rows)
    assert "| submit | 1,500 | 600 | 400 | **1.50** | 2,000 | 2.00 |" in table
