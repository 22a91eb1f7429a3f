"""`ci-gateway demo`: the CI emulator and the gateway on loopback, one MediaInfo job, printed.

It lives beside the emulator, not in the service, because it needs the emulator (and PyAV): a
production install has neither. The demo invents throwaway credentials that it hands to its
in-process emulator and gateway, so no key is ever typed or stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from google.protobuf import json_format

from ci_emulator.config import BucketConfig, EmulatorConfig
from ci_emulator.samples import ensure_demo_bucket
from ci_emulator.server import start_emulator
from gateway import logs
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.config_file import AccessConfig
from gateway.access.interceptor import ClientAccess, InsecureListenError
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import LOG_LEVELS, Settings
from gateway.console.exits import listing
from gateway.credentials import Credentials, StaticCredentialsProvider

DEMO_BUCKET = "demo-1250000000"
DEMO_REGION = "ap-guangzhou"
DEMO_OBJECT = "input/demo.mp4"
DEMO_JOB_TIMEOUT_S = 60.0
DEFAULT_LISTEN = "127.0.0.1:50051"  # also the operator CLI's default address
TERMINAL_STATES = frozenset(
    {media_pb2.JOB_STATE_SUCCESS, media_pb2.JOB_STATE_FAILED, media_pb2.JOB_STATE_CANCEL}
)


class CannotStart(Exception):
    """The demo's gateway cannot listen where it was asked: one line for `main` to print."""


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _await_job(
    stub: service_pb2_grpc.MediaJobServiceAsyncStub, job_id: str
) -> media_pb2.JobsDetail:
    """Poll until the job ends; bounded in time, backing off from 0.1 s to 1 s."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + DEMO_JOB_TIMEOUT_S
    delay = 0.1
    while True:
        answer = await stub.DescribeMediaJobs(
            service_pb2.DescribeMediaJobsRequest(job_ids=[job_id]), timeout=10
        )
        job = answer.jobs_detail[0]
        if job.state in TERMINAL_STATES:
            return job
        if loop.time() + delay > give_up_at:
            raise TimeoutError(f"job {job_id} did not finish in {DEMO_JOB_TIMEOUT_S:.0f} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def next_steps(address: str, job_id: str) -> str:
    """What to try against the serving gateway: the operator's CLI and grpcurl (reflection, so
    no .proto files). The commands name this demo's address and job, so each one works as
    printed (tests/test_cli.py runs the CLI ones)."""
    beside = Path(sys.executable).with_name("ci-gateway")
    cli = os.path.relpath(beside) if beside.is_file() else "ci-gateway"
    flag = "" if address == DEFAULT_LISTEN else f" --address {address}"
    submit = json.dumps({"request": {"input": {"object": DEMO_OBJECT}}})
    lines = [
        f"{cli} jobs describe {job_id}{flag}",
        f"{cli} jobs submit --object {DEMO_OBJECT}{flag}",
        f"{cli} jobs watch {job_id}{flag}",
        f"{cli} jobs list{flag}",
        f"{cli} jobs media-info {DEMO_OBJECT}{flag}",
        f"grpcurl -plaintext {address} list",
        f"grpcurl -plaintext {address} describe ci.media.v1.MediaJobService",
        f"grpcurl -plaintext -d '{submit}' {address} ci.media.v1.MediaJobService/SubmitMediaJob",
    ]
    return "\nTry next, from another shell (`ci-gateway jobs --help` for more):\n" + "\n".join(
        f"  {line}" for line in lines
    )


async def _start_gateway(
    listen: str, emulator_url: str, credentials: Credentials
) -> RunningGateway:
    """The demo's gateway in front of its emulator; `CannotStart` when `listen` will not do (a
    port taken by another demo or gateway is the likely case: `make demo` run twice)."""
    try:
        settings = Settings(
            listen=listen,
            default_bucket=DEMO_BUCKET,
            default_region=DEMO_REGION,
            endpoint_url=emulator_url,
        )
        # One person's loopback playground: it may change its own emulator's queues, templates
        # and workflows (a sidecar refuses that by default), so the README's day one runs
        # against it.
        access = ClientAccess(AccessConfig(sidecar_operations=frozenset({"*"})))
        provider = StaticCredentialsProvider(credentials)
        return await start_gateway(settings, provider, access=access)
    except InsecureListenError:  # its advice (an access file, --insecure) is serve's, not ours
        raise CannotStart(
            f"--listen {listen}: the demo has no client authentication, so it listens on "
            "loopback only"
        ) from None
    except ValueError as exc:
        raise CannotStart(str(exc)) from None
    except OSError as exc:
        raise CannotStart(
            f"{exc}: is another demo or gateway running there? Stop it, or give another "
            "address with --listen (port 0: any free one)"
        ) from None


async def _demo(listen: str, bucket_dir: Path, serve: bool) -> int:
    ensure_demo_bucket(bucket_dir)
    credentials = Credentials("AKID" + secrets.token_hex(16), secrets.token_urlsafe(24))
    emulator = await start_emulator(
        EmulatorConfig(
            buckets=(BucketConfig(DEMO_BUCKET, DEMO_REGION, bucket_dir),),
            credentials={credentials.secret_id: credentials.secret_key},
        )
    )
    try:
        gateway = await _start_gateway(listen, emulator.url, credentials)
    except BaseException:
        await emulator.close()
        raise
    try:
        print(f"CI emulator:  {emulator.url}  (bucket {DEMO_BUCKET} -> {bucket_dir})")
        print(f"ci-gateway:   {gateway.address}  (gRPC, service ci.media.v1.MediaJobService)")
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub: service_pb2_grpc.MediaJobServiceAsyncStub = service_pb2_grpc.MediaJobServiceStub(
                channel
            )
            submitted = await stub.SubmitMediaJob(
                service_pb2.SubmitMediaJobRequest(
                    request=media_pb2.Request(
                        tag="MediaInfo",
                        input=media_pb2.Input(object=DEMO_OBJECT),
                        operation=media_pb2.Operation(user_data="ci-gateway demo"),
                    )
                ),
                timeout=10,
            )
            job_id = submitted.jobs_detail.job_id
            print(f"submitted MediaInfo job {job_id} for {DEMO_OBJECT}; waiting for it to end")
            job = await _await_job(stub, job_id)
        print("JobsDetail:")
        print(
            json.dumps(json_format.MessageToDict(job, preserving_proto_field_name=True), indent=2)
        )
        if not serve:
            return 0 if job.state == media_pb2.JOB_STATE_SUCCESS else 1
        print(next_steps(gateway.address, job_id))
        # Flushed: piped (`make demo | tee`), everything above would wait for the exit.
        print(
            f"\nThe gateway keeps serving on {gateway.address}; press Ctrl-C to stop.", flush=True
        )
        await _wait_for_signal()
        return 0
    finally:
        await gateway.stop()
        await emulator.close()


# Relative: `make demo` runs from the repository, so the files land in its (ignored) var/.
DEFAULT_BUCKET_DIR = "var/demo-bucket"


# What `main` ends with, listed by `--help` (tests/console/test_help.py keeps them equal).
EXIT_CODES = {
    0: "stopped by Ctrl-C or SIGTERM (or --help); with --no-serve: the job succeeded",
    1: "with --no-serve: the job did not succeed",
    2: "bad arguments, the emulator or the gateway could not start; as `ci-gateway demo`, "
    "also: the emulator extra is not installed",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ci-gateway demo",
        description=__doc__,
        epilog=f"exit codes:\n{listing(EXIT_CODES)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, help=f"gateway address (default {DEFAULT_LISTEN})"
    )
    parser.add_argument(
        "--bucket-dir",
        type=Path,
        default=Path(DEFAULT_BUCKET_DIR),
        help=f"the demo bucket's folder, where the sample video is written as {DEMO_OBJECT} "
        f"(default {DEFAULT_BUCKET_DIR}, under the current directory)",
    )
    parser.add_argument(
        "--no-serve", action="store_true", help="exit after printing the job instead of serving"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    level = os.environ.get("CI_GATEWAY_LOG_LEVEL", "INFO")
    if level.upper() not in LOG_LEVELS:
        parser.error(f"CI_GATEWAY_LOG_LEVEL {level!r} must be one of {LOG_LEVELS}")
    logs.configure(level, "text")
    try:
        return asyncio.run(_demo(args.listen, args.bucket_dir, serve=not args.no_serve))
    except CannotStart as exc:  # one line and status 2, as `serve` refuses, not a traceback
        print(f"ci-gateway demo: {exc}", file=sys.stderr)
        return 2
