"""Closing the emulator while media jobs start or run is quiet and clean: every worker process
is killed and reaped before `close` returns, nothing is logged, nothing is left behind.

A job's worker is started in a thread (the forkserver start), which a cancellation cannot stop.
A close that came while a start was under way left the started process running with nobody
reading its pipe: its first progress report died of BrokenPipeError, logged by the worker as
"media worker for Transcode crashed" with a traceback, after the emulator had closed. A close
while a worker ran killed it but returned before it had exited.

In process, the workers are `multiprocessing` children of the test's own process (through the
forkserver), which `active_children` lists while they live. As a process (`python -m
ci_emulator`, SIGTERM), everything the emulator, its forkserver and its workers write to stderr
is read, and every process of its session must be gone once it has exited.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from ci_emulator.samples import make_h264_aac_mp4
from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET, REGION, SECRET_ID, SECRET_KEY, SignedClient
from tests.ci_emulator.media_support import JOB_TIMEOUT_S, leftovers, media_body, submit
from tests.ci_emulator.test_media_transcode import AAC, H264, transcode

# Jobs started at once (one queue runs them all): several starts under way together.
JOBS = 4
WAIT_S = 30.0
LONG_VIDEO_KEY = "input/long.mp4"


def live_workers() -> list[str]:
    """The media worker processes of this process still alive (`active_children` also joins
    the ones that have ended)."""
    return sorted(
        process.name
        for process in multiprocessing.active_children()
        if process.name.startswith("ci-media-")
    )


@pytest.mark.parametrize("moment", ["starting", "running"])
async def test_closing_stops_every_worker_before_it_returns(
    client: SignedClient,
    emu: RunningEmulator,
    bucket_root: Path,
    caplog: pytest.LogCaptureFixture,
    moment: str,
) -> None:
    state = emu.state
    queue = state.add_queue(BUCKET, "wide", max_concurrent=JOBS)
    body = media_body("Transcode", transcode("mp4", H264, AAC), QueueId=queue.queue_id)
    if moment == "starting":
        state.hold_running()  # each job Running, its worker not started yet
    else:
        state.hold_workers()  # each worker alive, stopped after its first progress report
    jobs = [state.jobs[await submit(client, body)] for _ in range(JOBS)]
    if moment == "starting":
        await state.wait_until(lambda: all(job.state == "Running" for job in jobs))
        state.release_running()  # the workers start: the close comes while they do
    else:
        await state.wait_until(
            lambda: all(job.progress_reports for job in jobs), timeout=JOB_TIMEOUT_S
        )
    with caplog.at_level(logging.DEBUG):
        await emu.close()
        assert live_workers() == []
        # No start left under way in a thread either, to leave a worker behind afterwards.
        await asyncio.get_running_loop().shutdown_default_executor()
        assert live_workers() == []
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert leftovers(bucket_root) == []


def session_processes(session: int) -> list[str]:
    """The processes of `session` still alive (zombies are dead), as `pid state name`."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name, _, rest = stat.partition(" (")[2].rpartition(") ")
        fields = rest.split()
        if int(fields[3]) == session and fields[0] != "Z":
            alive.append(f"{entry.name} {fields[0]} {name}")
    return alive


async def read_url(stream: asyncio.StreamReader, seen: list[bytes]) -> str:
    while True:  # bounded by the caller's timeout
        raw = await stream.readline()
        seen.append(raw)
        if not raw:
            raise AssertionError(f"the emulator exited before listening: {b''.join(seen)!r}")
        if b"listening on " in raw:
            return raw.decode().rsplit(" ", 1)[-1].strip()


@pytest.mark.parametrize("moment", ["starting", "running"])
async def test_sigterm_while_a_media_job_runs_leaves_no_trace(tmp_path: Path, moment: str) -> None:
    root = tmp_path / "bucket"
    (root / "input").mkdir(parents=True)
    # Long enough to be mid-transcode when the signal comes (seconds of work, not milliseconds).
    make_h264_aac_mp4(root / LONG_VIDEO_KEY, seconds=6.0)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ci_emulator", "--port", "0",
        "--bucket", f"{BUCKET}:{REGION}:{root}",
        "--credential", f"{SECRET_ID}:{SECRET_KEY}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its forkserver and workers share its session id: its pid
    )  # fmt: skip
    assert process.stderr is not None
    log: list[bytes] = []
    try:
        async with asyncio.timeout(WAIT_S):
            url = await read_url(process.stderr, log)
        async with aiohttp.ClientSession() as session:
            client = SignedClient(session, url)
            if moment == "starting":
                async with session.post(f"{url}/_emulator/running/hold") as held:
                    assert held.status == 200
            body = media_body("Transcode", transcode("mp4", H264, AAC), key=LONG_VIDEO_KEY)
            job_id = await submit(client, body)
            # Each pass is one describe; bounded by the time-out.
            async with asyncio.timeout(WAIT_S):
                while True:
                    job = (await client.describe(job_id)).ok().xml()
                    assert job.findtext("JobsDetail/State") in {"Submitted", "Running"}
                    if moment == "starting" and job.findtext("JobsDetail/State") == "Running":
                        # The first worker of the process also starts the forkserver (it
                        # imports PyAV): the signal comes while that start is under way.
                        async with session.post(f"{url}/_emulator/running/release") as released:
                            assert released.status == 200
                        break
                    if moment == "running" and job.findtext("JobsDetail/Progress") not in {"", "0"}:
                        break
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT_S):
            log.append(await process.stderr.read())
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = b"".join(log).decode(errors="replace")
    assert code == 0, text
    assert "CI emulator stopped" in text
    for noise in ("Traceback", "ERROR", "crashed", "Error"):
        assert noise not in text, text
    # The forkserver leaves once it sees the emulator gone (no event says so): its session is
    # read every 50 ms, for `WAIT_S` at most.
    for _ in range(int(WAIT_S / 0.05)):
        if not session_processes(process.pid):
            break
        await asyncio.sleep(0.05)
    assert session_processes(process.pid) == []
    assert leftovers(root) == []
