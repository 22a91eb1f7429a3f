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
