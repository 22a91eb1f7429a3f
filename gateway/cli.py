"""`ci-gateway`: serve the gateway, run the CI emulator, or run the demo.

Credentials never come from flags (argv is visible to every user of the machine through `ps`):
`serve` reads them from the environment or the sources its credentials file names
(`gateway.credentials_config`), and `demo` invents throwaway ones that it hands to its
in-process emulator and gateway.
"""

from __future__ import annotations

import argparse
import asyncio
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

from gateway import logs
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.api.server import start_gateway
from gateway.config.load import load_settings
from gateway.config.settings import OPTIONS, Settings
from gateway.credentials import (
    Credentials,
    CredentialsProvider,
    NoCredentialsError,
    StaticCredentialsProvider,
)
from gateway.credentials.config_file import open_credentials

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


async def _serve(
    settings: Settings,
    credentials: CredentialsProvider,
    access: ClientAccess | None = None,
    insecure: bool = False,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain; a second signal cuts the drain short.

    The handlers are installed explicitly (not left to Python's defaults) because as PID 1 in
    a container the kernel ignores any signal whose handler is the default: SIGTERM would do
    nothing and the pod would wait for SIGKILL.
    """
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    gateway = None

    def on_signal(sig: signal.Signals) -> None:
        if signalled.is_set() and gateway is not None:
            log.warning("second %s: ending the calls still running", sig.name)
            gateway.force_stop()
        else:
            log.info("%s received: draining", sig.name)
        signalled.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await credentials.start()  # the first keys, then rotation watching / STS refresh
        gateway = await start_gateway(settings, credentials, access=access, insecure=insecure)
        try:
            await signalled.wait()
        finally:
            await gateway.stop()
    finally:
        await credentials.close()
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


async def _demo(listen: str, bucket_dir: Path, serve: bool) -> int:
    from ci_emulator.config import BucketConfig, EmulatorConfig
    from ci_emulator.samples import ensure_demo_bucket
    from ci_emulator.server import start_emulator

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
        overrides={option.key: getattr(args, option.key) for option in OPTIONS if option.flag},
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ci-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the gRPC gateway")
    serve.add_argument("--config", type=Path, help="TOML settings file")
    for option in OPTIONS:
        if option.flag:
            serve.add_argument(
                option.flag, dest=option.key, help=f"{option.help} (env {option.env})"
            )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow listening beyond loopback without client authentication (logs a warning)",
    )

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
        from ci_emulator.cli import main as emulator_main

        status: int = emulator_main(args_list[1:])
        return status
    args = build_parser().parse_args(args_list)
    if args.command == "demo":
        logs.configure(os.environ.get("CI_GATEWAY_LOG_LEVEL", "INFO"), "text")
        return asyncio.run(_demo(args.listen, args.bucket_dir, serve=not args.no_serve))
    try:
        settings = _settings_from(args)
        credentials = open_credentials(settings.credentials_file)
        access = ClientAccess.from_setting(settings.access_file)
        refusal = access.listen_refusal(settings.listen, insecure=args.insecure)
        if refusal is not None:
            raise ValueError(refusal)
    except (ValueError, OSError, NoCredentialsError) as exc:
        print(f"ci-gateway: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(_serve(settings, credentials, access, args.insecure))
    return 0


if __name__ == "__main__":
    sys.exit(main())
