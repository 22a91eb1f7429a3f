"""Running typed jobs through the gateway to the emulator, and reading back what they wrote.

Shared by the end-to-end kind tests (`test_kinds_emulator.py` with typed Protobuf requests,
`test_kinds_json.py` with the README's JSON): the small input clip, the gateway settings that
make WaitMediaJob answer soon after a job ends, and the check that every file a job reports
exists in the bucket folder with the MD5 CI reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci_emulator.samples import make_h264_aac_mp4
from gateway._proto import job_kinds_pb2, media_pb2, service_pb2
from gateway.config.settings import Tracking
from tests.ci_emulator.media_support import Probed, md5_of, probe_file
from tests.conftest import BUCKET, REGION

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

K, M, S = job_kinds_pb2, media_pb2, service_pb2

CLIP = "input/clip.mp4"
CLIP_SECONDS, CLIP_FPS, CLIP_GOP = 1.0, 25, 10
CLIP_WIDTH, CLIP_HEIGHT = 160, 128
CLIP_FRAMES = int(CLIP_SECONDS * CLIP_FPS)
FINAL = frozenset({M.JOB_STATE_SUCCESS, M.JOB_STATE_FAILED, M.JOB_STATE_CANCEL})
WAIT_CALLS = 4
"""WaitMediaJob calls before giving up on a job: each returns at the job's end or shortly before
its deadline; the first media job of a session also starts the emulator's worker forkserver."""
WAIT_TIMEOUT_S = 30.0
FAST = Tracking(poll_initial_s=0.05, poll_max_s=0.2)
"""How often the gateway describes a job while a wait is open: these jobs last well under 1 s,
and the default (0.5 s, doubling) would make each wait longer than its job."""


def make_clip(folder: Path) -> Path:
    """A 1 s 160x128 H.264/AAC clip, a key frame every 10 frames: cheap for every kind to
    process, and cuttable into pieces by Segment."""
    return make_h264_aac_mp4(
        folder / "clip.mp4",
        seconds=CLIP_SECONDS,
        width=CLIP_WIDTH,
        height=CLIP_HEIGHT,
        fps=CLIP_FPS,
        gop=CLIP_GOP,
    )


async def submit_and_wait(stub: Stub, request: M.Request) -> M.JobsDetail:
    """Submit `request` and wait (WaitMediaJob) until the job ends; return its last state."""
    submitted = await stub.SubmitMediaJob(S.SubmitMediaJobRequest(request=request), timeout=10)
    job = submitted.jobs_detail
    assert job.tag == request.tag and job.job_id
    for _ in range(WAIT_CALLS):
        waited = await stub.WaitMediaJob(
            S.WaitMediaJobRequest(job_id=job.job_id), timeout=WAIT_TIMEOUT_S
        )
        job = waited.jobs_detail
        if job.state in FINAL:
            break
    return job


async def run(stub: Stub, request: M.Request) -> M.JobsDetail:
    """Submit `request`, wait for the job to end, and return it: it must have succeeded."""
    job = await submit_and_wait(stub, request)
    assert job.state == M.JOB_STATE_SUCCESS, (job.code, job.message)
    return job


def check_file(root: Path, key: str, md5: str) -> None:
    """`key` is a file in the bucket folder `root`, with the MD5 CI reported for it."""
    assert (root / key).is_file(), key
    assert md5_of(root / key) == md5, key


@dataclass(frozen=True)
class Done:
    """A finished job and the files it reports, as keys in the bucket folder."""

    job: M.JobsDetail
    root: Path
    keys: list[str]
    sprites: list[str]

    def probe(self, key: str) -> Probed:
        return probe_file(self.root / key)


def reported(files: K.OutputFile, root: Path) -> list[str]:
    """Every key an `OutputFile` names (`ObjectPrefix` + `ObjectName`, the catalogue's rule),
    each checked to exist in the bucket with its `Md5Info`."""
    keys = [files.object_prefix + name for name in files.object_name]
    md5 = {files.object_prefix + info.object_name: info.md5 for info in files.md5_info}
    for key in keys:
        check_file(root, key, md5[key])
    if keys:
        assert (files.bucket, files.region) == (BUCKET, REGION)
    return keys


def outputs(job: M.JobsDetail, root: Path) -> Done:
    """What `job` wrote, each file checked; the output MediaInfo (when CI sends one: pictures
    and demuxed streams have none) must describe the first file."""
    files = job.operation.media_result.output_file
    done = Done(job, root, reported(files, root), reported(files.sprite_output_file, root))
    if job.operation.HasField("media_info"):
        info, first = job.operation.media_info, root / done.keys[0]
        assert info.format.size == str(first.stat().st_size)
        if info.stream.video:
            probed = done.probe(done.keys[0])
            video = info.stream.video[0]
            assert (int(video.width), int(video.height)) == (probed.width, probed.height)
    return done
