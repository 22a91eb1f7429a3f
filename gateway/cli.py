"""`ci-gateway`: serve the gateway, run the CI emulator, or run the demo.

Credentials never come from flags (argv is visible to every user of the machine through `ps`):
`serve` reads them from the environment, and `demo` invents throwaway ones that it hands to its
in-process emulator and gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from google.protobuf import json_format

from ci.media.v1 import media_pb2, service_pb2, service_pb2_grpc
from gateway.config import Settings, load_settings
from gateway.credentials import (
    Credentials,
    CredentialsProvider,
    EnvironmentCredentialsProvider,
    NoCredentialsError,
    StaticCredentialsProvider,
)
from gateway.server import start_gateway

log = logging.getLogger("gateway")

DEMO_BUCKET = "demo-1250000000"
DEMO_REGION = "ap-guangzhou"
DEMO_OBJECT = "input/demo.mp4"
DEMO_JOB_TIMEOUT_S = 60.0
TERMINAL_STATES = frozenset(
    {media_pb2.JOB_STATE_SUCCESS, media_pb2.JOB_STATE_FAILED, media_pb2.JOB_STATE_CANCEL}
)


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


async def _serve(settings: Settings, credentials: CredentialsProvider) -> None:
    gateway = await start_gateway(settings, credentials)
    try:
        await _wait_for_signal()
    finally:
        log.info("shutting down")
        await gateway.stop()


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


async def _demo(listen: str, bucket_dir: Path, serve: bool) -> int:
    from gateway.emulator.config import BucketConfig, EmulatorConfig
    from gateway.emulator.samples import ensure_demo_bucket
    from gateway.emulator.server import start_emulator

    ensure_demo_bucket(bucket_dir)
    credentials = Credentials("AKID" + secrets.token_hex(16), secrets.token_urlsafe(24))
    emulator = await start_emulator(
        EmulatorConfig(
            buckets=(BucketConfig(DEMO_BUCKET, DEMO_REGION, bucket_dir),),
            credentials={credentials.secret_id: credentials.secret_key},
        )
    )
    settings = Settings(
        listen=listen,
        default_bucket=DEMO_BUCKET,
        default_region=DEMO_REGION,
        endpoint_url=emulator.url,
    )
    gateway = await start_gateway(settings, StaticCredentialsProvider(credentials))
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
        print(f"\nThe gateway keeps serving on {gateway.address}; press Ctrl-C to stop.")
        await _wait_for_signal()
        return 0
    finally:
        await gateway.stop()
        await emulator.close()


def _settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        config_file=args.config,
        environ=os.environ,
        overrides={
            "listen": args.listen,
            "default_bucket": args.default_bucket,
            "default_region": args.default_region,
            "endpoint_url": args.endpoint_url,
            "log_level": args.log_level,
        },
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ci-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the gRPC gateway")
    serve.add_argument("--config", type=Path, help="TOML settings file")
    serve.add_argument("--listen", help="host:port to listen on (default 127.0.0.1:50051)")
    serve.add_argument("--default-bucket", help="bucket (name-APPID) when a request names none")
    serve.add_argument("--default-region", help="region when a request names none")
    serve.add_argument("--endpoint-url", help="connect here instead of CI (e.g. the emulator)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")

    commands.add_parser(
        "emulator", help="run the CI emulator (see `ci-gateway emulator --help`)", add_help=False
    )

    demo = commands.add_parser("demo", help="emulator + gateway + one MediaInfo job, printed")
    demo.add_argument("--listen", default="127.0.0.1:50051", help="gateway address")
    demo.add_argument(
        "--bucket-dir", type=Path, default=Path("var/demo-bucket"), help="demo bucket folder"
    )
    demo.add_argument(
        "--no-serve", action="store_true", help="exit after printing the job instead of serving"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        from gateway.emulator.cli import main as emulator_main

        status: int = emulator_main(args_list[1:])
        return status
    args = build_parser().parse_args(args_list)
    level = getattr(args, "log_level", None) or os.environ.get("CI_GATEWAY_LOG_LEVEL", "INFO")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "demo":
        return asyncio.run(_demo(args.listen, args.bucket_dir, serve=not args.no_serve))
    try:
        settings = _settings_from(args)
        credentials = EnvironmentCredentialsProvider()
    except (ValueError, OSError, NoCredentialsError) as exc:
        print(f"ci-gateway: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, credentials))
    return 0


if __name__ == "__main__":
    sys.exit(main())
