"""`ci-gateway templates plan|apply FILE`: a bucket's custom templates kept equal to a file.

`plan` reads the bucket's custom templates through the gateway (`DescribeMediaTemplates`, every
page) and prints what `apply` would change, as a diff per template (`template_plan`); its exit
code tells a CI pipeline whether the bucket is in sync (0) or has drifted (6, `DRIFT`). `apply`
makes the same plan and carries it out (`CreateMediaTemplate`, `UpdateMediaTemplate`,
`DeleteMediaTemplate`), in the plan's order, stopping at the first refusal; run twice, the second
run finds nothing to do. Both are gRPC clients of a running gateway like `ci-gateway jobs`
(same connection flags and environment), so the gateway's access policy applies: writing
templates needs `templates_write` (a sidecar's `sidecar_operations`, a shared client's
`operations`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from gateway._proto import templates_pb2
from gateway.console.commands import (
    CALL_TIMEOUT_S,
    Streams,
    add_command,
    common_options,
    epilog,
    execute,
    main_with,
)
from gateway.console.connection import Session
from gateway.console.exits import CommandFailed, ExitCode
from gateway.console.template_plan import (
    Desired,
    Plan,
    PlanError,
    desired_from,
    plan,
    render,
    summary,
)

PROG = "ci-gateway templates"
PAGE_SIZE = 100
MAX_PAGES = 100  # 10,000 templates: far beyond any bucket, and a bound on the walk


def load(path: Path) -> Desired:
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise CommandFailed(ExitCode.USAGE, f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CommandFailed(ExitCode.USAGE, f"{path} is not TOML: {exc}") from None
    try:
        return desired_from(document, source=str(path))
    except PlanError as exc:
        raise CommandFailed(ExitCode.USAGE, str(exc)) from None


def _target(args: argparse.Namespace, desired: Desired) -> tuple[str, str]:
    """(bucket, region): the flags win over the file; both empty = the gateway's defaults."""
    return args.bucket or desired.bucket, args.region or desired.region


async def current(
    gateway: Session, bucket: str, region: str, call_timeout_s: float
) -> list[templates_pb2.MediaTemplate]:
    """Every custom template of the bucket, page by page (bounded)."""
    found: list[templates_pb2.MediaTemplate] = []
    for page in range(1, MAX_PAGES + 1):
        request = templates_pb2.DescribeMediaTemplatesRequest(
            category=templates_pb2.TEMPLATE_CATEGORY_CUSTOM,
            page_number=page,
            page_size=PAGE_SIZE,
            bucket=bucket,
            region=region,
        )
        with gateway.errors():
            reply = await gateway.templates.DescribeMediaTemplates(
                request, metadata=gateway.metadata, timeout=call_timeout_s
            )
        found.extend(reply.template_list)
        total = int(reply.total_count) if reply.total_count.isdigit() else len(found)
        if len(reply.template_list) < PAGE_SIZE or len(found) >= total:
            break
    return found


async def _planned(args: argparse.Namespace, gateway: Session) -> tuple[tuple[str, str], Plan]:
    desired = load(args.file)
    if args.prune:
        desired = Desired(desired.bucket, desired.region, True, desired.strict, desired.templates)
    bucket, region = _target(args, desired)
    found = await current(gateway, bucket, region, args.timeout)
    return (bucket, region), plan(desired, found)


def _print_plan(result: Plan, args: argparse.Namespace, streams: Streams) -> None:
    source = str(args.file)
    if args.json:
        document = {
            "in_sync": not result.changes,
            "changes": [change.as_dict(source) for change in result.changes],
        }
        print(json.dumps(document, indent=2, ensure_ascii=False), file=streams.out)
        return
    for line in render(result, source):
        print(line, file=streams.out)
    print(f"plan: {summary(result)}", file=streams.out)


async def _plan(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    _, result = await _planned(args, gateway)
    _print_plan(result, args, streams)
    return ExitCode.DRIFT if result.changes else ExitCode.OK


async def _apply(args: argparse.Namespace, gateway: Session, streams: Streams) -> ExitCode:
    (bucket, region), result = await _planned(args, gateway)
    if not args.json:
        _print_plan(result, args, streams)
    done: list[dict[str, str]] = []
    for change in result.changes:  # in the plan's order; the first refusal stops the rest
        with gateway.errors():
            if change.action == "create":
                assert change.desired is not None
                reply = await gateway.templates.CreateMediaTemplate(
                    templates_pb2.CreateMediaTemplateRequest(
                        bucket=bucket, region=region, template=change.desired
                    ),
                    metadata=gateway.metadata,
                    timeout=args.timeout,
                )
                template_id = reply.template.template_id
            elif change.action == "update":
                assert change.desired is not None
                await gateway.templates.UpdateMediaTemplate(
                    templates_pb2.UpdateMediaTemplateRequest(
                        bucket=bucket,
                        region=region,
                        template_id=change.template_id,
                        template=change.desired,
                    ),
                    metadata=gateway.metadata,
                    timeout=args.timeout,
                )
                template_id = change.template_id
            else:
                await gateway.templates.DeleteMediaTemplate(
                    templates_pb2.DeleteMediaTemplateRequest(
                        bucket=bucket, region=region, template_id=change.template_id
                    ),
                    metadata=gateway.metadata,
                    timeout=args.timeout,
                )
                template_id = change.template_id
        done.append({"action": change.action, "tag": change.tag, "name": change.name,
                     "template_id": template_id})  # fmt: skip
        if not args.json:
            print(f"{change.action}d {change.tag} template {change.name!r} ({template_id})",
                  file=streams.out)  # fmt: skip
    if args.json:
        print(json.dumps({"applied": done}, indent=2, ensure_ascii=False), file=streams.out)
    elif not result.changes:
        print("nothing to do: the bucket's templates match the file", file=streams.out)
    return ExitCode.OK


# The exit codes each command adds to `exits.EVERY_COMMAND` (kept equal to what its handler
# can return by tests/console/test_help.py).
OUTCOMES: dict[str, tuple[ExitCode, ...]] = {"plan": (ExitCode.DRIFT,)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Keep a bucket's custom CI templates equal to a declarative TOML file.",
        epilog=epilog(code for codes in OUTCOMES.values() for code in codes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = common_options(
        CALL_TIMEOUT_S,
        f"seconds for each call (default {CALL_TIMEOUT_S:g})",
        json_help="print the plan (apply: also what was done) as JSON",
    )
    for name, handler, about in (
        ("plan", _plan, "show, as a diff, what apply would change; exit 6 when not in sync"),
        ("apply", _apply, "create, update (and with prune, delete) templates to match the file"),
    ):
        sub = add_command(commands, name, handler, about, common, OUTCOMES.get(name, ()))
        sub.add_argument("file", type=Path, metavar="FILE", help="the templates file (TOML)")
        sub.add_argument(
            "--prune", action="store_true", help="also delete templates the file does not name"
        )
    return parser


async def run(
    argv: Sequence[str],
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """The whole command; returns its exit code. Failures are one message on `err`."""
    streams = Streams(out or sys.stdout, err or sys.stderr, sys.stdin)
    return await execute(build_parser(), PROG, argv, streams, environ)


def main(argv: Sequence[str] | None = None) -> int:
    return main_with(run, argv)
