"""A Transcode in the CI emulator against the `ffmpeg` command line doing the same conversion
on the same file, side by side in one run (issue 14: the emulator may take at most 1.2x).

    .venv/bin/python -m bench.transcode              # 3 interleaved repetitions of each
    .venv/bin/python -m bench.transcode --reps 5 --seconds 10

The conversion: an H.264/AAC MP4 (default 1280x720, 6 s, 25 fps, made by
`ci_emulator.samples`) to MP4 with H.264 at 854x480 (crf 23, x264's default preset) and AAC
128 kbps: the emulator's `<Transcode>` with `Width` 854, and for the CLI
`ffmpeg -i in.mp4 -vf fps=25,scale=854:480 -c:v libx264 -crf 23 -pix_fmt yuv420p -c:a aac
-b:a 128k out.mp4`. Both use every CPU this process may use (x264 and the decoders pick their
own thread counts), nothing else runs meanwhile, and the repetitions alternate (CLI, emulator,
CLI, ...) so drift hits both.

The emulator's time is a client's: from sending the signed `POST /jobs` to the job's
`Success`, so it includes the HTTP round trip, scheduling, the worker's fork (from a warm
forkserver: one unmeasured warm-up job first), the transcode, the probe of the output and its
MD5. The CLI's time includes its process start. Caveat, printed with the result: the CLI is
Debian's FFmpeg and libx264, the emulator PyAV's bundled ones, so part of any difference is
two builds of the same encoder.

Needs `ffmpeg` on PATH (`make bench` installs Debian's when it is missing). Writes
`bench/results/transcode.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import signed

BUCKET = "transcodebench-1250000000"
REGION = "ap-guangzhou"
SECRET_ID = "AKIDtranscodeBench00000000000000000"  # noqa: S105 - a loopback-only fake
SECRET_KEY = "transcode-bench-secret-not-real"  # noqa: S105 - a loopback-only fake
INPUT_KEY = "input/bench.mp4"
OUT_WIDTH, OUT_HEIGHT, FPS, CRF, AUDIO_KBPS = 854, 480, 25, 23, 128
TARGET_RATIO = 1.2
RESULTS = Path(__file__).resolve().parent / "results" / "transcode.json"


def ffmpeg_path() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise RuntimeError("ffmpeg is not on PATH (make bench installs Debian's ffmpeg)")
    return found


def ffmpeg_command(source: Path, target: Path) -> list[str]:
    return [
        ffmpeg_path(), "-nostdin", "-y", "-loglevel", "error", "-i", str(source),
        "-vf", f"fps={FPS},scale={OUT_WIDTH}:{OUT_HEIGHT}",
        "-c:v", "libx264", "-crf", str(CRF), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", str(target),
    ]  # fmt: skip


def transcode_body(output_key: str) -> bytes:
    return (
        f"<Request><Tag>Transcode</Tag><Input><Object>{INPUT_KEY}</Object></Input><Operation>"
        "<Transcode><Container><Format>mp4</Format></Container><Video><Codec>H.264</Codec>"
        f"<Width>{OUT_WIDTH}</Width><Crf>{CRF}</Crf></Video><Audio><Codec>aac</Codec>"
        f"<Bitrate>{AUDIO_KBPS}</Bitrate></Audio></Transcode><Output><Region>{REGION}</Region>"
        f"<Bucket>{BUCKET}</Bucket><Object>{output_key}</Object></Output></Operation></Request>"
    ).encode()


def _signed_headers(body: bytes) -> dict[str, str]:
    headers = {
        "Host": f"{BUCKET}.ci.{REGION}.myqcloud.com",
        "Content-Type": "application/xml",
        "Content-Length": str(len(body)),
    }
    return signed(headers, secret_id=SECRET_ID, secret_key=SECRET_KEY)


def time_ffmpeg(source: Path, folder: Path, rep: int) -> float:
    target = folder / f"cli-{rep}.mp4"
    started = time.perf_counter()
    subprocess.run(ffmpeg_command(source, target), check=True, timeout=600)  # noqa: S603 - ours
    return time.perf_counter() - started


async def time_emulator(emulator: Any, session: aiohttp.ClientSession, rep: int) -> float:
    from ci_emulator.jobs import JobState

    body = transcode_body(f"out/emulator-{rep}.mp4")
    started = time.perf_counter()
    async with session.post(
        f"{emulator.url}/jobs", data=body, headers=_signed_headers(body)
    ) as response:
        text = await response.text()
        if response.status != 200:
            raise RuntimeError(f"submit refused: {response.status} {text}")
    job_id = text.split("<JobId>", 1)[1].split("</JobId>", 1)[0]
    job = await emulator.state.wait_for_job_state(
        job_id, {JobState.SUCCESS, JobState.FAILED}, timeout=600
    )
    elapsed = time.perf_counter() - started
    if job.state != JobState.SUCCESS:
        raise RuntimeError(f"the emulator's transcode failed: {job.code} {job.message}")
    return elapsed


def ffmpeg_version() -> str:
    found = subprocess.run(  # noqa: S603 - our own fixed command line
        [ffmpeg_path(), "-version"], capture_output=True, text=True, check=True, timeout=30
    )
    return found.stdout.splitlines()[0]


async def measure(
    *, reps: int = 3, seconds: float = 6.0, width: int = 1280, height: int = 720
) -> dict[str, Any]:
    """Run the comparison; the caller's CPU affinity is widened to every CPU meanwhile."""
    ffmpeg_path()
    import av

    from ci_emulator.config import BucketConfig, EmulatorConfig
    from ci_emulator.samples import make_h264_aac_mp4
    from ci_emulator.server import start_emulator

    loadavg_at_start = os.getloadavg()
    previous = os.sched_getaffinity(0)
    every_cpu = tuple(sorted(range(os.cpu_count() or 1)))
    os.sched_setaffinity(0, every_cpu)
    try:
        with tempfile.TemporaryDirectory(prefix="transcode-bench-") as name:
            folder = Path(name)
            source = folder / INPUT_KEY
            source.parent.mkdir(parents=True)
            make_h264_aac_mp4(source, seconds=seconds, width=width, height=height, fps=FPS)
            config = EmulatorConfig(
                buckets=(BucketConfig(BUCKET, REGION, folder),),
                credentials={SECRET_ID: SECRET_KEY},
                media_worker_cpus=every_cpu,
            )
            cli: list[float] = []
            emulated: list[float] = []
            async with (
                await start_emulator(config) as emulator,
                aiohttp.ClientSession(trust_env=False) as session,
            ):
                await time_emulator(emulator, session, -1)  # warm-up: boots the forkserver
                time_ffmpeg(source, folder, -1)
                for rep in range(reps):
                    cli.append(time_ffmpeg(source, folder, rep))
                    emulated.append(await time_emulator(emulator, session, rep))
            ratios = [e / c for e, c in zip(emulated, cli, strict=True)]
            return {
                "benchmark": "Transcode in the emulator vs the ffmpeg CLI, same file, same output",
                "input": f"{width}x{height} {seconds:g} s {FPS} fps H.264/AAC MP4",
                "output": f"{OUT_WIDTH}x{OUT_HEIGHT} H.264 crf {CRF} + AAC {AUDIO_KBPS}k MP4",
                "ffmpeg_cli_s": [round(v, 3) for v in cli],
                "emulator_s": [round(v, 3) for v in emulated],
                "ffmpeg_cli_median_s": round(statistics.median(cli), 3),
                "emulator_median_s": round(statistics.median(emulated), 3),
                "ratio_median": round(statistics.median(emulated) / statistics.median(cli), 3),
                "ratios": [round(r, 3) for r in ratios],
                "target_ratio": TARGET_RATIO,
                "meets_target": statistics.median(emulated)
                <= TARGET_RATIO * statistics.median(cli),
                "cli_build": ffmpeg_version(),
                "emulator_build": f"PyAV {av.__version__}, libavcodec "
                f"{'.'.join(map(str, av.library_versions['libavcodec']))}",
                "cpus": len(every_cpu),
                "loadavg_at_start": loadavg_at_start,
                "loadavg_at_end": os.getloadavg(),
                "python": platform.python_version(),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
    finally:
        os.sched_setaffinity(0, previous)


def render(result: dict[str, Any]) -> str:
    return (
        f"Transcode {result['input']} -> {result['output']}, {len(result['ratios'])} "
        f"interleaved repetitions on {result['cpus']} CPUs: ffmpeg CLI median "
        f"{result['ffmpeg_cli_median_s']:.2f} s {result['ffmpeg_cli_s']}, emulator (submit to "
        f"Success) median {result['emulator_median_s']:.2f} s {result['emulator_s']}: ratio "
        f"{result['ratio_median']:.2f} (target <= {result['target_ratio']}: "
        f"{'met' if result['meets_target'] else 'NOT met'}). CLI: {result['cli_build']}; "
        f"emulator: {result['emulator_build']}. Load average "
        f"{result['loadavg_at_start'][0]:.2f} at start, {result['loadavg_at_end'][0]:.2f} at end."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="input length")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = asyncio.run(
        measure(reps=args.reps, seconds=args.seconds, width=args.width, height=args.height)
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
