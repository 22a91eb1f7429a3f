"""`python -m gateway.emulator`: run the CI emulator on a port until interrupted.

    python -m gateway.emulator --port 9000 \\
        --bucket examplebucket-1250000000:ap-guangzhou:/srv/bucket \\
        --credential AKIDEXAMPLE:secretkey

Credentials may instead come from CI_EMULATOR_SECRET_ID / CI_EMULATOR_SECRET_KEY (preferred: argv
is visible to every user through `ps`). Secret keys are never logged; the log names the URL, the
buckets and the SecretIds only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.emulator.config import BucketConfig, EmulatorConfig
from gateway.emulator.faults import FaultSpec, check_operation
from gateway.emulator.server import serve

logger = logging.getLogger(__name__)

ENV_SECRET_ID = "CI_EMULATOR_SECRET_ID"  # noqa: S105 - a variable name, not a secret
ENV_SECRET_KEY = "CI_EMULATOR_SECRET_KEY"  # noqa: S105 - a variable name, not a secret


def parse_bucket(value: str) -> BucketConfig:
    name, sep1, rest = value.partition(":")
    region, sep2, folder = rest.partition(":")
    if not (sep1 and sep2 and name and region and folder):
        raise argparse.ArgumentTypeError("expected NAME-APPID:REGION:FOLDER")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise argparse.ArgumentTypeError(f"{root} is not a folder")
    return BucketConfig(name=name, region=region, root=root)


def parse_credential(value: str) -> tuple[str, str]:
    secret_id, sep, secret_key = value.partition(":")
    if not (sep and secret_id and secret_key):
        raise argparse.ArgumentTypeError("expected SECRET_ID:SECRET_KEY")
    return secret_id, secret_key


def parse_fault(value: str) -> tuple[str, FaultSpec]:
    """`CreateMediaJobs:error_500=0.2,commit_then_drop=0.05` -> (operation, spec)."""
    operation, sep, assignments = value.partition(":")
    try:
        if not (sep and operation and assignments):
            raise ValueError("expected OPERATION:FIELD=VALUE[,FIELD=VALUE...]")
        check_operation(operation)
        values: dict[str, object] = {}
        for assignment in assignments.split(","):
            name, eq, number = assignment.partition("=")
            if not (eq and name.strip()):
                raise ValueError(f"expected FIELD=VALUE, not {assignment!r}")
            values[name.strip()] = number.strip()
        return operation, FaultSpec.from_mapping(values)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.emulator", description="Emulate Tencent Cloud CI on loopback."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=9000, help="port (0 picks a free one)")
    parser.add_argument(
        "--bucket",
        type=parse_bucket,
        action="append",
        required=True,
        metavar="NAME-APPID:REGION:FOLDER",
        help="a bucket and the local folder holding its objects (repeatable)",
    )
    parser.add_argument(
        "--credential",
        type=parse_credential,
        action="append",
        default=[],
        metavar="SECRET_ID:SECRET_KEY",
        help=f"an accepted key pair (repeatable); or set {ENV_SECRET_ID}/{ENV_SECRET_KEY}",
    )
    parser.add_argument(
        "--fault",
        type=parse_fault,
        action="append",
        default=[],
        metavar="OPERATION:FIELD=P[,FIELD=P...]",
        help="inject faults into an operation (or '*'), e.g. "
        "CreateMediaJobs:error_500=0.2,commit_then_drop=0.05; fields: error_500, error_503, "
        "slowdown_429, reset_before, commit_then_drop, latency_s, latency_p (repeatable)",
    )
    parser.add_argument(
        "--fault-seed", type=int, default=0, help="seed of the fault draws (default 0)"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def build_config(args: argparse.Namespace, environ: Mapping[str, str]) -> EmulatorConfig:
    credentials = dict(args.credential)
    if environ.get(ENV_SECRET_ID) and environ.get(ENV_SECRET_KEY):
        credentials[environ[ENV_SECRET_ID]] = environ[ENV_SECRET_KEY]
    if not credentials:
        raise ValueError(f"pass --credential or set {ENV_SECRET_ID}/{ENV_SECRET_KEY}")
    return EmulatorConfig(
        buckets=tuple(args.bucket),
        credentials=credentials,
        faults=dict(args.fault),
        fault_seed=args.fault_seed,
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = build_config(args, os.environ if environ is None else environ)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    logger.info("accepting SecretIds: %s", ", ".join(sorted(config.credentials)))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(config, args.host, args.port))
    return 0


async def _serve_until_signalled(config: EmulatorConfig, host: str, port: int) -> None:
    """`serve` until SIGINT or SIGTERM, then shut down cleanly (jobs cancelled, port closed)."""
    task = asyncio.create_task(serve(config, host, port))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    logger.info("CI emulator stopped")
