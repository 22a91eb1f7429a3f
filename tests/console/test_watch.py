"""`ci-gateway jobs watch|wait`: the live view (a redrawn bar on a terminal, plain lines in a
pipe, JSON Lines) and the exit code that says how the job ended. The emulator's test controls
move the job (hold it Submitted or Running, set its Progress); the test waits for what the CLI
printed before each next move, never for time."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys

from ci_emulator.server import RunningEmulator
from gateway.api.server import RunningGateway
from gateway.console.exits import ExitCode
from gateway.console.progress import ERASE_LINE
from tests.conftest import SAMPLE_KEY
from tests.console.conftest import Capture, Jobs
from tests.console.test_commands import submit

LINE_TIMEOUT_S = 20.0
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


async def test_watch_draws_one_live_bar_on_a_terminal(
    jobs: Jobs, emulator: RunningEmulator
) -> None:
    state = emulator.state
    state.pause_scheduling()
    job_id = await submit(jobs, "--object", SAMPLE_KEY)
    screen = Capture(tty=True)
    watching = asyncio.create_task(jobs("watch", job_id, out=screen))
    await screen.wait_for("Submitted")
    state.hold_running()
    state.resume_scheduling()
    await screen.wait_for("Running")
    state.set_progress(job_id, 40)
    await screen.wait_for(" 40%")
    state.release_running()
    done = await watching

    assert done.code == ExitCode.OK, done.err
    frames = done.out.split(ERASE_LINE)
    assert frames[0] == "" and done.out.count("\n") == 1 and done.out.endswith("\n")
    assert frames[1] == f"{job_id}  [{'.' * 30}]    -  Submitted"
    assert f"{job_id}  [{'#' * 12}{'.' * 18}]  40%  Running" in frames
    assert frames[-1] == f"{job_id}  [{'#' * 30}] 100%  Success\n"


async def test_watch_prints_plain_lines_when_piped(
    fast_gateway: RunningGateway, jobs: Jobs, emulator: RunningEmulator
) -> None:
    """A real `ci-gateway jobs watch` process with its output in a pipe (as in a CI log)."""
    state = emulator.state
    state.pause_scheduling()
    job_id = await submit(jobs, "--object", SAMPLE_KEY)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CI_GATEWAY_")}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "gateway", "jobs", "watch", job_id),
        *("--address", fast_gateway.address),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    assert process.stdout is not None and process.stderr is not None

    stdout = process.stdout

    async def line() -> str:
        text: bytes = await asyncio.wait_for(stdout.readline(), LINE_TIMEOUT_S)
        return text.decode()

    try:
        assert re.fullmatch(rf"{TIME}  {job_id}  Submitted  -\n", await line())
        state.hold_running()
        state.resume_scheduling()
        assert re.fullmatch(rf"{TIME}  {job_id}  Running  0%\n", await line())
        state.set_progress(job_id, 40)
        assert re.fullmatch(rf"{TIME}  {job_id}  Running  40%\n", await line())
        state.release_running()
        assert re.fullmatch(rf"{TIME}  {job_id}  Success  100%\n", await line())
        assert await asyncio.wait_for(process.wait(), LINE_TIMEOUT_S) == ExitCode.OK
        assert await process.stdout.read() == b""
        assert await process.stderr.read() == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_watch_json_lines_are_the_stream_messages(jobs: Jobs) -> None:
    job_id = await submit(jobs, "--object", SAMPLE_KEY)
    assert (await jobs("wait", job_id)).code == ExitCode.OK
    done = await jobs("watch", job_id, "--json")
    assert done.code == ExitCode.OK
    (line,) = done.out.splitlines()  # a job that has ended: its final state, once
    message = json.loads(line)
    assert (message["jobs_detail"]["job_id"], message["jobs_detail"]["state"]) == (
        job_id,
        "JOB_STATE_SUCCESS",
    )


async def test_a_failed_job_exits_1(jobs: Jobs) -> None:
    job_id = await submit(jobs, "--object", "input/no-such.mp4")
    waited = await jobs("wait", job_id)
    assert waited.code == ExitCode.JOB_FAILED
    row = waited.out.splitlines()[1]
    assert job_id in row and "Failed" in row
    watched = await jobs("watch", job_id)
    assert watched.code == ExitCode.JOB_FAILED
    assert re.fullmatch(rf"{TIME}  {job_id}  Failed  \S+  \S+: .+\n", watched.out), watched.out


async def test_a_cancelled_job_exits_3(jobs: Jobs, emulator: RunningEmulator) -> None:
    emulator.state.pause_scheduling()
    job_id = await submit(jobs, "--object", SAMPLE_KEY)
    screen = Capture()
    watching = asyncio.create_task(jobs("watch", job_id, out=screen))
    await screen.wait_for("Submitted")
    assert (await jobs("cancel", job_id)).code == ExitCode.OK
    watched = await watching
    assert watched.code == ExitCode.JOB_CANCELLED
    assert watched.out.splitlines()[-1].endswith(f"{job_id}  Cancel  -")
    assert (await jobs("wait", job_id)).code == ExitCode.JOB_CANCELLED


async def test_running_out_of_time_exits_5_with_the_latest_state(
    jobs: Jobs, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    job_id = await submit(jobs, "--object", SAMPLE_KEY)
    for command in ("wait", "watch"):
        done = await jobs(command, job_id, "--timeout", "0.5")
        assert done.code == ExitCode.NOT_DONE, (command, done.err)
        assert done.err == (
            f"ci-gateway jobs {command}: job {job_id} is still Submitted after 0.5 s\n"
        )
        assert job_id in done.out  # the latest state was shown


async def test_watching_an_unknown_job_is_refused(jobs: Jobs) -> None:
    done = await jobs("watch", "j" + "0" * 32)
    assert (done.code, done.out) == (ExitCode.REFUSED, "")
    assert done.err.startswith("ci-gateway jobs watch: NOT_FOUND: ")


async def test_ctrl_c_ends_a_watch_with_130_and_no_traceback(
    fast_gateway: RunningGateway, jobs: Jobs, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    job_id = await submit(jobs, "--object", SAMPLE_KEY)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CI_GATEWAY_")}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "gateway", "jobs", "watch", job_id),
        *("--address", fast_gateway.address),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), LINE_TIMEOUT_S)
        assert b"Submitted" in first
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), LINE_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == ExitCode.INTERRUPTED
    assert b"Traceback" not in err and out == b""
