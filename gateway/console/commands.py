"""`ci-gateway jobs submit|submit-multi|describe|list|watch|wait|cancel|media-info`: one RPC
(or one stream) per command, against a running gateway.

Each handler builds the request from its flags, makes the call through `Session` (which turns
an RPC error into the exit it means) and prints the answer: a table, or with `--json` the
response message. `run` is the whole command as a coroutine with its streams passed in, so tests
drive it in the event loop that serves the gateway; `main` is the process entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from gateway._proto import media_pb2, service_pb2
from gateway.console import connection, exits, progress, render
from gateway.console.connection import Session
from gateway.console.exits import CommandFailed, ExitCode

PROG = "ci-gateway jobs"
CALL_TIMEOUT_S = 30.0
WAIT_TIMEOUT_S = 3600.0
MAX_PAGES = 100
# The gateway's bound on one DescribeMediaJobs (`gateway.jobs.describe.MAX_JOB_IDS_PER_RPC`,
# which this client may not import; tests/console/test_commands.py keeps the two equal).
MAX_DESCRIBE_IDS = 100
# `--state success` -> `JOB_STATE_SUCCESS` (the request takes enum names as well as numbers).
STATES = {
    name.removeprefix("JOB_STATE_").lower(): name
    for name in media_pb2.JobState.keys()  # noqa: SIM118 - an EnumTypeWrapper is not iterable
    if name != "JOB_STATE_UNSPECIFIED"
}


@dataclass(frozen=True)
class Streams:
    out: TextIO
    err: TextIO
    stdin: TextIO


Handler = Callable[[argparse.Namespace, Session, Streams], Awaitable[ExitCode]]


def _target(args: argparse.Namespace) -> dict[str, str]:
    return {"bucket": args.bucket or "", "region": args.region or ""}


def _show_jobs(
    args: argparse.Namespace,
    streams: Streams,
    reply: Message,
    jobs: Sequence[media_pb2.JobsDetail],
) -> None:
    """The answer as `--json` asks: the whole response message, or its jobs as a table."""
    if args.json:
        print(render.to_json(reply), file=streams.out)
    else:
        _print_jobs(streams, jobs)


def _print_jobs(streams: Streams, jobs: Sequence[media_pb2.JobsDetail]) -> None:
    """The jobs' table, then the media info of each job that carries one."""
    print(render.jobs_table(jobs), file=streams.out)
    for job in jobs:
        if job.operation.HasField("media_info"):
            print(f"\nmedia info of {job.job_id}:", file=streams.out)
            print(render.media_info_text(job.operation.media_info), file=streams.out)


# submit ------------------------------------------------------------------------------------


def _read_json(where: str, stdin: TextIO, message: Message) -> None:
    """Fill `message` from the JSON in file `where` (`-`: stdin); a usage error naming the
    source and the message type when it cannot be read or is not that message."""
    source = "stdin" if where == "-" else where
    try:
        # JSON is UTF-8 (RFC 8259), whatever the locale says.
        text = stdin.read() if where == "-" else Path(source).read_text(encoding="utf-8")
        json_format.Parse(text, message)
    except OSError as exc:
        raise CommandFailed(ExitCode.USAGE, f"cannot read {source}: {exc.strerror}") from None
    except UnicodeDecodeError:  # UTF-16 from PowerShell's `>`, say
        raise CommandFailed(ExitCode.USAGE, f"{source} is not UTF-8 text") from None
    except json_format.ParseError as exc:
        what = message.DESCRIPTOR.name
        if _is_rpc_body(text, message):
            raise CommandFailed(
                ExitCode.USAGE,
                f'{source} is not a {what}: it has "request" at the top, as the whole RPC '
                f"request grpcurl sends (the README's job examples); give the {what} under "
                f'"request" (`jq .request FILE` prints it)',
            ) from None
        raise CommandFailed(ExitCode.USAGE, f"{source} is not a {what}: {exc}") from None


def _is_rpc_body(text: str, message: Message) -> bool:
    """Whether `text` is a JSON object with a top-level "request" where `message` has no such
    field: the SubmitMediaJob(s) request grpcurl takes (`{"request": {...}}`), which a reader
    of the README's job examples hands to `--request-json` as it is."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    fields = message.DESCRIPTOR.fields_by_name
    return isinstance(data, dict) and "request" in data and "request" not in fields


def _submit_request(args: argparse.Namespace, stdin: TextIO) -> service_pb2.SubmitMediaJobRequest:
    """`--request-json` (a `Request`, as JSON) first, then the flags on top of it."""
    request = media_pb2.Request()
    if args.request_json is not None:
        _read_json(args.request_json, stdin, request)
    elif args.object is None:
        raise CommandFailed(ExitCode.USAGE, "give --object KEY, or --request-json FILE|-")
    if args.object is not None:
        request.input.object = args.object
    if args.tag is not None:
        request.tag = args.tag
    if args.user_data is not None:
        request.operation.user_data = args.user_data
    if args.queue_id is not None:
        request.queue_id = args.queue_id
    return service_pb2.SubmitMediaJobRequest(
        request=request, request_id=args.request_id or "", **_target(args)
    )


async def _submit(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    request = _submit_request(args, streams.stdin)
    with gateway.errors():
        reply = await gateway.stub.SubmitMediaJob(
            request, metadata=gateway.metadata, timeout=args.timeout
        )
    _show_jobs(args, streams, reply, [reply.jobs_detail])
    return ExitCode.OK


async def _submit_multi(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    """SubmitMediaJobs: one input, up to 6 operations, one job each, exactly once as a whole
    under one `--request-id` (a retry gets the same jobs)."""
    target = _target(args)
    request = service_pb2.SubmitMediaJobsRequest(
        bucket=target["bucket"], region=target["region"], request_id=args.request_id or ""
    )
    _read_json(args.request_json, streams.stdin, request.request)
    with gateway.errors():
        reply = await gateway.stub.SubmitMediaJobs(
            request, metadata=gateway.metadata, timeout=args.timeout
        )
    _show_jobs(args, streams, reply, reply.jobs_detail)
    return ExitCode.OK


# describe, list ----------------------------------------------------------------------------


async def _describe(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    request = service_pb2.DescribeMediaJobsRequest(
        job_ids=args.job_ids, bucket=args.bucket or "", region=args.region or ""
    )
    with gateway.errors():
        reply = await gateway.stub.DescribeMediaJobs(
            request, metadata=gateway.metadata, timeout=args.timeout
        )
    if args.json:
        print(render.to_json(reply), file=streams.out)
    elif reply.jobs_detail:
        _print_jobs(streams, reply.jobs_detail)
    for job_id in reply.non_exist_job_ids:
        print(f"{PROG} describe: no job {job_id}", file=streams.err)
    return ExitCode.REFUSED if reply.non_exist_job_ids else ExitCode.OK


async def _list(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    request = service_pb2.ListMediaJobsRequest(
        tag=args.tag or "",
        queue_id=args.queue_id or "",
        states=[STATES[state] for state in args.state or ()],
        order_by_time=(
            service_pb2.ORDER_BY_TIME_ASC if args.order == "asc" else service_pb2.ORDER_BY_TIME_DESC
        ),
        size=args.size or 0,
        next_token=args.next_token or "",
        input_object=args.object or "",
        start_creation_time=args.since or "",
        end_creation_time=args.until or "",
        bucket=args.bucket or "",
        region=args.region or "",
    )
    merged = service_pb2.ListMediaJobsResponse()
    for _ in range(args.max_pages if args.all else 1):  # bounded even if pages never end
        with gateway.errors():
            page = await gateway.stub.ListMediaJobs(
                request, metadata=gateway.metadata, timeout=args.timeout
            )
        merged.jobs_detail.extend(page.jobs_detail)
        merged.next_token = request.next_token = page.next_token
        if not page.next_token:
            break
    if args.json:
        print(render.to_json(merged), file=streams.out)
    else:
        print(render.jobs_table(merged.jobs_detail), file=streams.out)
    if merged.next_token and not args.json:
        print(f"more jobs: --next-token {merged.next_token} (or --all)", file=streams.err)
    return ExitCode.OK


# watch, wait -------------------------------------------------------------------------------


async def _watch(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    request = service_pb2.WatchMediaJobRequest(job_id=args.job_id, **_target(args))
    view = progress.view_for(streams.out, as_json=args.json)
    job: media_pb2.JobsDetail | None = None
    try:
        call = gateway.stub.WatchMediaJob(request, metadata=gateway.metadata, timeout=args.timeout)
        async for reply in call:  # the gateway ends the stream after a final state
            job = reply.jobs_detail
            view.update(job)
    except grpc.aio.AioRpcError as error:
        if not _out_of_time(error, gateway):
            raise gateway.failure(error) from None
    finally:
        view.close()
    if job is None:
        raise CommandFailed(ExitCode.NOT_DONE, f"no answer for job {args.job_id} in time")
    if not exits.is_final(job):
        raise CommandFailed(ExitCode.NOT_DONE, _still(job, args.timeout))
    return exits.for_job(job)


def _out_of_time(error: grpc.aio.AioRpcError, gateway: Session) -> bool:
    """The call's own deadline (`--timeout`) passed while the gateway was there: not an error
    of the gateway's, the job just has not ended yet."""
    return error.code() is grpc.StatusCode.DEADLINE_EXCEEDED and gateway.connected()


def _still(job: media_pb2.JobsDetail, timeout_s: float) -> str:
    return f"job {job.job_id} is still {render.state_name(job)} after {timeout_s:g} s"


async def _wait(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    """WaitMediaJob until the job ends: each call returns by the gateway's own ceiling with the
    latest state, and the next one goes on waiting, until `--timeout` is spent."""
    request = service_pb2.WaitMediaJobRequest(
        job_id=args.job_id, bucket=args.bucket or "", region=args.region or ""
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    reply: service_pb2.WaitMediaJobResponse | None = None
    while (left := deadline - loop.time()) > 0:  # bounded by --timeout
        try:
            reply = await gateway.stub.WaitMediaJob(
                request, metadata=gateway.metadata, timeout=left
            )
        except grpc.aio.AioRpcError as error:
            if not _out_of_time(error, gateway):
                raise gateway.failure(error) from None
            break  # report the latest state seen
        if exits.is_final(reply.jobs_detail):
            break
    if reply is None:
        raise CommandFailed(ExitCode.NOT_DONE, f"no answer for job {args.job_id} in time")
    _show_jobs(args, streams, reply, [reply.jobs_detail])
    if not exits.is_final(reply.jobs_detail):
        raise CommandFailed(ExitCode.NOT_DONE, _still(reply.jobs_detail, args.timeout))
    return exits.for_job(reply.jobs_detail)


# cancel, media-info ------------------------------------------------------------------------


async def _cancel(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    request = service_pb2.CancelMediaJobRequest(job_id=args.job_id, **_target(args))
    with gateway.errors():
        reply = await gateway.stub.CancelMediaJob(
            request, metadata=gateway.metadata, timeout=args.timeout
        )
    print(render.to_json(reply) if args.json else f"cancelled {args.job_id}", file=streams.out)
    return ExitCode.OK


async def _media_info(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    request = service_pb2.GetMediaInfoRequest(
        object=args.object, version_id=args.version_id or "", **_target(args)
    )
    with gateway.errors():
        reply = await gateway.stub.GetMediaInfo(
            request, metadata=gateway.metadata, timeout=args.timeout
        )
    if args.json:
        print(render.to_json(reply), file=streams.out)
    else:
        print(render.media_info_text(reply.media_info), file=streams.out)
    return ExitCode.OK


# the parser --------------------------------------------------------------------------------


def _positive(text: str) -> float:
    """Seconds: a finite number above 0 (argparse would name this function for a ValueError,
    and `inf` reached grpc as a deadline already past)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of seconds more than 0: {text}")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, at least 1: {text}")
    return value


def common_options(
    timeout_s: float,
    timeout_help: str,
    *,
    json_help: str = "print the RPC's response message as JSON",
) -> argparse.ArgumentParser:
    """The options every command (of `ci-gateway jobs` and `ci-gateway templates`) takes:
    where the gateway is, target, output, time-out."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bucket", help="bucket name-APPID (default: the gateway's)")
    common.add_argument("--region", help="region, e.g. ap-guangzhou (default: the gateway's)")
    common.add_argument("--json", action="store_true", help=json_help)
    common.add_argument("--timeout", type=_positive, default=timeout_s, help=timeout_help)
    connection.add_arguments(common)
    return common


def epilog(outcomes: Iterable[ExitCode] = ()) -> str:
    """The exit codes a command can end with (`exits.EVERY_COMMAND` and its own `outcomes`),
    and the connection's environment variables, for its `--help`."""
    environment = "\n".join(
        f"  {name:<28}{about}" for name, about in connection.ENVIRONMENT.items()
    )
    codes = exits.reference((*exits.EVERY_COMMAND, *outcomes))
    return f"exit codes:\n{codes}\n\nenvironment:\n{environment}"


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    about: str,
    parent: argparse.ArgumentParser,
    outcomes: Iterable[ExitCode],
) -> argparse.ArgumentParser:
    """A sub-command run by `handler` (`execute`), whose `--help` lists the exit codes it can end
    with (`epilog`): one way for `jobs` and `templates` alike."""
    sub: argparse.ArgumentParser = commands.add_parser(
        name,
        parents=[parent],
        help=about,
        description=about,
        epilog=epilog(outcomes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.set_defaults(handler=handler)
    return sub


# The exit codes each command adds to `exits.EVERY_COMMAND` (tests/console/test_help.py keeps
# them equal to what its handler can return).
OUTCOMES: dict[str, tuple[ExitCode, ...]] = {
    "watch": exits.JOB_ENDS,
    "wait": exits.JOB_ENDS,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate on CI media jobs through a running ci-gateway (gRPC).",
        epilog=epilog(code for codes in OUTCOMES.values() for code in codes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    call = common_options(
        CALL_TIMEOUT_S, f"seconds to wait for the answer (default {CALL_TIMEOUT_S:g})"
    )
    waits = common_options(
        WAIT_TIMEOUT_S, f"longest wait for the job, s (default {WAIT_TIMEOUT_S:g})"
    )

    def add(
        name: str, handler: Handler, about: str, parent: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        return add_command(commands, name, handler, about, parent, OUTCOMES.get(name, ()))

    submit = add("submit", _submit, "submit a job (MediaInfo by flags, any kind by JSON)", call)
    submit.add_argument("--object", help="input object key, e.g. input/demo.mp4")
    submit.add_argument("--tag", help="job kind (default MediaInfo)")
    submit.add_argument("--user-data", help="Operation.UserData, returned with the job")
    submit.add_argument("--queue-id", help="queue to submit to (default: the bucket's)")
    submit.add_argument("--request-id", help="idempotency key: a retried submit gets the same job")
    submit.add_argument(
        "--request-json",
        metavar="FILE|-",
        help="the whole CI Request as JSON (proto field names); the flags above override it",
    )

    multi = add(
        "submit-multi", _submit_multi, "submit one input's 1-6 operations (SubmitMediaJobs)", call
    )
    multi.add_argument(
        "--request-json",
        metavar="FILE|-",
        required=True,
        help="CI's multi-operation Request as JSON: input, operation[] each with its tag, ...",
    )
    multi.add_argument("--request-id", help="idempotency key: a retry gets the same jobs")

    describe = add("describe", _describe, f"show jobs by id (up to {MAX_DESCRIBE_IDS})", call)
    describe.add_argument("job_ids", nargs="+", metavar="JOB_ID")

    listing = add("list", _list, "list jobs, newest first", call)
    listing.add_argument("--tag", help="job kind (default MediaInfo)")
    listing.add_argument("--queue-id", help="only this queue")
    listing.add_argument(
        "--state", action="append", choices=sorted(STATES), help="only this state (repeatable)"
    )
    listing.add_argument("--object", help="only jobs for this input object")
    listing.add_argument("--since", help="created at or after, e.g. 2026-01-01T00:00:00+0800")
    listing.add_argument("--until", help="created at or before")
    listing.add_argument("--size", type=int, help="page size 1..100 (default 10)")
    listing.add_argument("--order", choices=("desc", "asc"), default="desc", help="by creation")
    listing.add_argument("--next-token", help="continue from a previous page")
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.add_argument(
        "--max-pages",
        type=_at_least_one,
        default=MAX_PAGES,
        help=f"with --all (default {MAX_PAGES})",
    )

    watch = add("watch", _watch, "follow a job live until it ends; exit code = outcome", waits)
    watch.add_argument("job_id", metavar="JOB_ID")
    wait = add("wait", _wait, "wait for a job to end, then show it; exit code = outcome", waits)
    wait.add_argument("job_id", metavar="JOB_ID")
    cancel = add("cancel", _cancel, "cancel a job that has not started", call)
    cancel.add_argument("job_id", metavar="JOB_ID")
    media_info = add("media-info", _media_info, "probe an object now (GetMediaInfo)", call)
    media_info.add_argument("object", metavar="OBJECT", help="object key, e.g. input/demo.mp4")
    media_info.add_argument("--version-id", help="a version of the object")
    return parser


async def run(
    argv: Sequence[str],
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """The whole command; returns its exit code. Failures are one message on `err`."""
    streams = Streams(out or sys.stdout, err or sys.stderr, stdin or sys.stdin)
    return await execute(build_parser(), PROG, argv, streams, environ)


def main(argv: Sequence[str] | None = None) -> int:
    return main_with(run, argv)


async def execute(
    parser: argparse.ArgumentParser,
    prog: str,
    argv: Sequence[str],
    streams: Streams,
    environ: Mapping[str, str] | None,
) -> int:
    """Parse `argv`, connect to the gateway and run the chosen subcommand's handler: the exit
    code. `--help` and usage errors are argparse's own text, on `streams`; any other failure
    is one line on `err`. Every console command (`jobs`, `templates`) runs through this."""
    try:
        with redirect_stdout(streams.out), redirect_stderr(streams.err):
            args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2), already printed
        return done.code if isinstance(done.code, int) else ExitCode.USAGE
    try:
        target = connection.from_args(args, os.environ if environ is None else environ)
        async with Session(target) as gateway:
            handler: Handler = args.handler
            return int(await handler(args, gateway, streams))
    except CommandFailed as failure:
        print(f"{prog} {args.command}: {failure.message}", file=streams.err)
        return int(failure.code)


def main_with(
    run: Callable[[list[str]], Coroutine[Any, Any, int]], argv: Sequence[str] | None
) -> int:
    """A console command's entry point: `run` under asyncio; Ctrl-C and a closed output are
    exit codes, never a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `ci-gateway jobs list | head`: the reader has what it wanted. Point stdout at
        # /dev/null, so the interpreter's own flush at exit does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return ExitCode.OUTPUT_CLOSED
