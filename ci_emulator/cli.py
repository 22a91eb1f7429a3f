"""`python -m ci_emulator` (also `ci-gateway emulator`): run the CI emulator until interrupted.

    python -m ci_emulator --port 9000 \\
        --bucket examplebucket-1250000000:ap-guangzhou:/srv/bucket \\
        --credential AKIDEXAMPLE:secretkey \\
        --credential AKIDTEMPORARY:tempkey:sts-token:1767225600

or `--config emulator.toml` (its keys: `config_file.EXAMPLE`, which `--help` prints) for many
buckets, credentials, queues, faults.
Flags add to the file: buckets, credentials and faults from both are used (a flag wins over the
file for the same SecretId or operation), and `--host`/`--port`/`--fault-seed` override it.

Credentials may also come from CI_EMULATOR_SECRET_ID / CI_EMULATOR_SECRET_KEY (preferred over
flags: argv is visible to every user through `ps`). Secret keys and tokens are never logged; the
log names the URL, the buckets, their queues and the SecretIds only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ci_emulator.config import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CLOCK_SKEW_S,
    DEFAULT_QUEUE_MAX_CONCURRENT,
    DEFAULT_QUEUE_MAX_SIZE,
    BucketConfig,
    CallbackSettings,
    Credential,
    EmulatorConfig,
)
from ci_emulator.config_file import EXAMPLE, ConfigFileError, FileSettings, load_config_file
from ci_emulator.faults import FaultSpec, check_operation
from ci_emulator.server import CannotListen, serve
from gateway.config.settings import LOG_LEVELS
from gateway.console.exits import listing

logger = logging.getLogger(__name__)

ENV_SECRET_ID = "CI_EMULATOR_SECRET_ID"  # noqa: S105 - a variable name, not a secret
ENV_SECRET_KEY = "CI_EMULATOR_SECRET_KEY"  # noqa: S105 - a variable name, not a secret
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000

EPILOG = """\
routing (three ways to address a bucket):
  Host header, as CI sees it: connect to http://127.0.0.1:PORT and send
      Host: <bucket>.ci.<region>.myqcloud.com    job API, queues, POST /mediainfo
      Host: <bucket>.cos.<region>.myqcloud.com   GET /<key>?ci-process=videoinfo
  proxy form: use http://127.0.0.1:PORT as the HTTP proxy for http://<bucket>.ci.<region>...
      e.g. cos-python-sdk-v5: CosConfig(..., Scheme="http", Proxies={"http": "http://127.0.0.1:PORT"})
  path style, for clients that cannot set Host:
      http://127.0.0.1:PORT/_path/<bucket>/<region>/<ci|cos>/<path>   (sign /<path> as usual)

admin (JSON, unauthenticated, any Host):
  GET /_emulator/health | /_emulator/counters | /_emulator/faults
  PUT /_emulator/faults {"seed": 7, "faults": {"CreateMediaJobs": {"error_500": 0.2}}}
  POST /_emulator/queues {"bucket": ..., "name": ..., "max_concurrent": 2}
  POST /_emulator/scheduling/pause|resume, /_emulator/running/hold|release

fault operations: CreateMediaJobs DescribeMediaJob DescribeMediaJobs CancelMediaJob
  DescribeMediaQueues UpdateMediaQueue GenerateMediaInfo GetMediaInfo, or * for all

--config FILE (TOML; JSON with the same keys): every key below; an unknown one is an error.
Flags add buckets, credentials and faults to the file's and override host, port, fault_seed.
The file holds secret keys: keep it private.
""" + "".join(f"  {line}\n" if line else "\n" for line in EXAMPLE.splitlines())


def parse_bucket(value: str) -> BucketConfig:
    name, sep1, rest = value.partition(":")
    region, sep2, folder = rest.partition(":")
    if not (sep1 and sep2 and name and region and folder):
        raise argparse.ArgumentTypeError("expected NAME-APPID:REGION:FOLDER")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise argparse.ArgumentTypeError(f"{root} is not a folder")
    return BucketConfig(name=name, region=region, root=root)


def parse_credential(value: str) -> tuple[str, Credential]:
    """`ID:KEY`, `ID:KEY:TOKEN` or `ID:KEY:TOKEN:EXPIRES_UNIX`.

    Colons separate the parts, so a key or token containing one belongs in `--config`.
    """
    parts = value.split(":")
    usage = "expected SECRET_ID:SECRET_KEY[:TOKEN[:EXPIRES_UNIX]] (use --config for keys with ':')"
    if not 2 <= len(parts) <= 4 or not all(parts):
        raise argparse.ArgumentTypeError(usage)
    secret_id, secret_key = parts[0], parts[1]
    token = parts[2] if len(parts) > 2 else None
    expires: float | None = None
    if len(parts) == 4:
        if not parts[3].isdigit():
            raise argparse.ArgumentTypeError("EXPIRES_UNIX must be Unix seconds")
        expires = float(parts[3])
    return secret_id, Credential(secret_key, token=token, expires_at=expires)


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


# What `main` ends with, listed by `--help` (tests/console/test_help.py keeps them equal).
EXIT_CODES = {
    0: "stopped by Ctrl-C or SIGTERM (or --help)",
    2: "bad arguments or configuration file, or its port cannot be bound; as `ci-gateway "
    "emulator`, also: the emulator extra is not installed",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        # The README starts it as `ci-gateway emulator`; a usage line naming another command
        # would send a new user looking for it.
        prog="ci-gateway emulator",
        description="Emulate Tencent Cloud Infinite's media-job API on loopback "
        "(also started as `python -m ci_emulator`).",
        epilog=f"{EPILOG}\nexit codes:\n{listing(EXIT_CODES)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="a TOML or JSON file of buckets, credentials, queues, "
        "limits, callbacks and faults (its keys: below)",
    )
    parser.add_argument("--host", help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, help=f"port, 0 picks a free one (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--bucket",
        type=parse_bucket,
        action="append",
        default=[],
        metavar="NAME-APPID:REGION:FOLDER",
        help="a bucket and the local folder holding its objects (repeatable)",
    )
    parser.add_argument(
        "--credential",
        type=parse_credential,
        action="append",
        default=[],
        metavar="ID:KEY[:TOKEN[:EXPIRES_UNIX]]",
        help="an accepted key pair, optionally temporary: its STS token and expiry (repeatable); "
        f"or set {ENV_SECRET_ID}/{ENV_SECRET_KEY}",
    )
    parser.add_argument(
        "--fault",
        type=parse_fault,
        action="append",
        default=[],
        metavar="OPERATION:FIELD=P[,FIELD=P...]",
        help="inject faults into an operation (or '*'), e.g. "
        "CreateMediaJobs:error_500=0.2,commit_then_drop=0.05; fields: error_500, error_503, "
        "slowdown_429, reset_before, commit_then_drop, latency_s, latency_p, and for "
        "DescribeMediaJobs listing_lag_s (repeatable)",
    )
    parser.add_argument("--fault-seed", type=int, help="seed of the fault draws (default 0)")
    parser.add_argument(
        "--callback-json-array",
        action="store_true",
        help="send JSON callbacks' JobsDetail as an array instead of an object",
    )
    parser.add_argument(
        "--callback-on-cancel", action="store_true", help="also call back for cancelled jobs"
    )
    parser.add_argument(
        "--callback-allow-public-hosts",
        action="store_true",
        help="also call back URLs whose host is not loopback or private (refused by default)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="default INFO",
    )
    return parser


@dataclass(frozen=True)
class Launch:
    """Everything `main` starts: the configuration and where to listen."""

    config: EmulatorConfig
    host: str
    port: int


def build_launch(args: argparse.Namespace, environ: Mapping[str, str]) -> Launch:
    """Merge the file (if any), the flags and the environment; ValueError if it cannot run."""
    file = load_config_file(args.config) if args.config else FileSettings()
    credentials: dict[str, str | Credential] = dict(file.credentials)
    credentials.update(args.credential)
    if environ.get(ENV_SECRET_ID) and environ.get(ENV_SECRET_KEY):
        credentials[environ[ENV_SECRET_ID]] = environ[ENV_SECRET_KEY]
    if not credentials:
        raise ValueError(f"give a credential (--credential, --config, or {ENV_SECRET_ID}/...)")
    buckets = (*file.buckets, *args.bucket)
    if not buckets:
        raise ValueError("give at least one bucket (--bucket or --config)")
    callbacks = file.callbacks or CallbackSettings()
    if args.callback_json_array:
        callbacks = replace(callbacks, json_array=True)
    if args.callback_on_cancel:
        callbacks = replace(callbacks, on_cancel=True)
    if args.callback_allow_public_hosts:
        callbacks = replace(callbacks, allow_public_hosts=True)
    limits = file.limits
    seed = args.fault_seed if args.fault_seed is not None else file.fault_seed
    config = EmulatorConfig(
        buckets=buckets,
        credentials=credentials,
        queues=file.queues,
        callbacks=callbacks,
        faults={**file.faults, **dict(args.fault)},
        fault_seed=seed or 0,
        max_clock_skew_s=limits.get("max_clock_skew_s", DEFAULT_MAX_CLOCK_SKEW_S),
        max_body_bytes=limits.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES),
        queue_max_concurrent=limits.get("queue_max_concurrent", DEFAULT_QUEUE_MAX_CONCURRENT),
        queue_max_size=limits.get("queue_max_size", DEFAULT_QUEUE_MAX_SIZE),
    )
    host = args.host or file.host or DEFAULT_HOST
    port = args.port if args.port is not None else file.port
    return Launch(config, host, DEFAULT_PORT if port is None else port)


def build_config(args: argparse.Namespace, environ: Mapping[str, str]) -> EmulatorConfig:
    return build_launch(args, environ).config


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        launch = build_launch(args, os.environ if environ is None else environ)
    except (ValueError, ConfigFileError) as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    logger.info("accepting SecretIds: %s", ", ".join(sorted(launch.config.credentials)))
    if not _is_loopback_address(launch.host):
        logger.warning(
            "listening on %s, not loopback: the admin surface is unauthenticated", launch.host
        )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_until_signalled(launch.config, launch.host, launch.port))
    except CannotListen as exc:  # e.g. a second emulator on the README's port 9000
        print(f"ci-gateway emulator: {exc}", file=sys.stderr)
        return 2
    return 0


def _is_loopback_address(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve_until_signalled(config: EmulatorConfig, host: str, port: int) -> None:
    """`serve` until SIGINT or SIGTERM, then shut down cleanly (jobs cancelled, port closed)."""
    task = asyncio.create_task(serve(config, host, port))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    logger.info("CI emulator stopped")
