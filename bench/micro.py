"""Item 3 of issue 8 and the gateway's per-call CPU pieces, in process, without any I/O.

* Signer: microseconds per `Authorization` value, ours (`select_signed_headers` +
  `authorization`, exactly what `CiClient._send` runs) vs the SDK's `CosS3Auth.__call__` (which
  filters the headers itself), on the same request: `POST /jobs` with Host, Content-Type,
  Content-Length and Content-MD5. Both read the time on every call and so derive a new sign key
  each time, as each does in real use. Before timing, both are run at one frozen time and must
  produce the same header, which proves the inputs are the same.
* Codec: `xml_codec.encode` of a submit body and `xml_codec.decode` of real emulator answers
  (a submit answer, a describe of one finished MediaInfo job, a list of 10).

Each figure is the median of `reps` timed batches (min and max kept), after one warm-up batch.

The codec item also runs on its own, for work on `xml_codec` (issue 16) without `make bench`::

    python -m bench.micro --bodies var/codec-bodies             # captures them once, then times
    python -m bench.micro --bodies var/codec-bodies --instructions

`--instructions` counts CPU instructions per call under callgrind (valgrind), the difference
between a run of `--calls` calls and a run of none: unlike wall time on a shared, loaded
machine it repeats to within ~1%, so it can show a change of a few percent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from bench.clients import SUBMIT_BODY
from bench.common import CI_HOST, SECRET_ID, SECRET_KEY, Spread
from gateway._proto import media_pb2, service_pb2
from gateway.upstream import signing, xml_codec

SIGN_HEADERS = {
    "Host": CI_HOST,
    "Content-Type": "application/xml",
    "Content-Length": str(len(SUBMIT_BODY)),
    "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
}
FROZEN_NOW = 1_700_000_000


def time_per_call_us(function: Callable[[], object], *, number: int, reps: int) -> Spread:
    function()  # warm caches and imports
    batches = []
    for _ in range(reps + 1):
        started = time.perf_counter()
        for _ in range(number):
            function()
        batches.append((time.perf_counter() - started) / number * 1e6)
    return Spread.of(batches[1:])  # the first batch is a warm-up


def ours(now: Callable[[], float] = time.time) -> str:
    start = int(now())
    return signing.authorization(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        method="POST",
        host=None,
        path="/jobs",
        params={},
        headers=signing.select_signed_headers(SIGN_HEADERS),
        start=start - 60,
        end=start + 600,
    )


def _sdk_signer() -> tuple[Callable[[], str], Callable[[], str]]:
    """The SDK's signer on a prepared request; returns (sign now, sign at FROZEN_NOW)."""
    import requests
    from qcloud_cos import CosConfig
    from qcloud_cos.cos_auth import CosS3Auth

    config = CosConfig(Region="ap-guangzhou", SecretId=SECRET_ID, SecretKey=SECRET_KEY)
    auth = CosS3Auth(config, "/jobs", params={}, expire=600)
    prepared = requests.Request(
        "POST", f"https://{CI_HOST}/jobs", headers=SIGN_HEADERS, data=SUBMIT_BODY
    ).prepare()

    def sign() -> str:
        return str(auth(prepared).headers["Authorization"])

    def sign_frozen() -> str:
        with mock.patch("qcloud_cos.cos_auth.time.time", return_value=FROZEN_NOW):
            return sign()

    return sign, sign_frozen


def signer(*, reps: int, number: int) -> dict[str, Any]:
    sdk_sign, sdk_frozen = _sdk_signer()
    # The SDK backdates 60 s and signs `expire` ahead; ours, as CiClient calls it, the same.
    ours_frozen = ours(lambda: FROZEN_NOW)
    if ours_frozen != sdk_frozen():
        raise AssertionError(f"signers disagree:\n ours {ours_frozen}\n sdk  {sdk_frozen()}")
    ours_us = time_per_call_us(ours, number=number, reps=reps)
    sdk_us = time_per_call_us(sdk_sign, number=max(1, number // 4), reps=reps)
    return {"ours_us": ours_us, "sdk_us": sdk_us, "speedup": sdk_us.median / ours_us.median}


CODEC_TYPES: dict[str, type[Any]] = {
    "submit": service_pb2.SubmitMediaJobResponse,
    "describe": service_pb2.DescribeMediaJobsResponse,
    "list": service_pb2.ListMediaJobsResponse,
}


def codec(bodies: Mapping[str, bytes], *, reps: int, number: int) -> dict[str, Spread]:
    """Encode the submit body; decode each captured answer into its response type."""
    results = {"encode submit": time_per_call_us(_encoder(), number=number, reps=reps)}
    for name, body in bodies.items():
        scale = max(1, len(body) // 1000)
        results[f"decode {name} ({len(body)} B)"] = time_per_call_us(
            _decoder(body, CODEC_TYPES[name]), number=max(10, number // scale), reps=reps
        )
    return results


def _encoder() -> Callable[[], object]:
    request = media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object="input/bench.mp4"))
    return lambda: xml_codec.encode(request, root="Request")


def _decoder(body: bytes, message_type: type[Any]) -> Callable[[], object]:
    return lambda: xml_codec.decode(body, message_type, root="Response")


# --- the codec item on its own ------------------------------------------------------------------


def codec_bodies(folder: Path) -> dict[str, bytes]:
    """The emulator's answers from `folder`, captured there first (emulator + gateway started,
    12 jobs seeded, ~20 s) when any is missing, so every later run decodes the same bytes."""
    paths = {name: folder / f"{name}.xml" for name in CODEC_TYPES}
    if not all(path.exists() for path in paths.values()):
        folder.mkdir(parents=True, exist_ok=True)
        for name, body in asyncio.run(_capture()).items():
            paths[name].write_bytes(body)
    return {name: path.read_bytes() for name, path in paths.items()}


async def _capture() -> dict[str, bytes]:
    from bench import throughput
    from bench.procs import default_cpus, servers

    cpus = default_cpus()
    with servers(emulator_cpu=cpus[0], gateway_cpu=cpus[1]) as pair:
        ids = await throughput.seed_jobs(pair, count=12)
        return await throughput.capture_bodies(pair.emulator_url, ids[0])


def _call(item: str, bodies: Mapping[str, bytes]) -> Callable[[], object]:
    return _encoder() if item == "encode" else _decoder(bodies[item], CODEC_TYPES[item])


def instructions_per_call(item: str, folder: Path, calls: int) -> int:
    """Callgrind's instruction count of `calls` calls of `item` minus that of none (imports,
    warm-up and exit cancel out), per call."""

    def collected(n: int) -> int:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        command += [sys.executable, "-m", "bench.micro", "--bodies", str(folder)]
        command += ["--run", item, "--calls", str(n)]
        # A fixed hash seed: string hashes decide dict probing, a few percent of the count.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)  # noqa: S603 - our own argv
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no callgrind total in: {done.stderr[-500:]}")
        return int(found.group(1))

    return (collected(calls) - collected(0)) // calls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.add_argument("--bodies", type=Path, required=True, help="captured answers (folder)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000, help="calls per timed batch")
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    parser.add_argument("--calls", type=int, default=0, help="calls per counted run")
    parser.add_argument("--run", choices=["encode", *CODEC_TYPES], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    bodies = codec_bodies(args.bodies)
    if args.run:  # one run under callgrind: a warm-up call, then `--calls` calls
        function = _call(args.run, bodies)
        for _ in range(args.calls + 1):
            function()
        return 0
    if args.instructions:
        for item in ("encode", *CODEC_TYPES):
            # ~0.5 s of calls natively for each: 50x that under callgrind.
            calls = args.calls or (40 if item == "list" else 400)
            count = instructions_per_call(item, args.bodies, calls)
            print(f"{item:10} {count:>12,} instructions per call ({calls} calls)")
        return 0
    for name, spread in codec(bodies, reps=args.reps, number=args.number).items():
        print(f"{name:28} {spread.fmt(2)} us per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
