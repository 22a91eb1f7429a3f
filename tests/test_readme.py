"""The README's promises that code can check: the error table, the two commands, the files
and settings it shows, and the operator CLI's commands and flags."""

from __future__ import annotations

import argparse
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2

from gateway import errors
from gateway._proto import queues_pb2, service_pb2, templates_pb2, workflows_pb2
from gateway.access.config_file import build_access
from gateway.api.server import RunningGateway
from gateway.config.load import load_settings
from gateway.console import commands, templates
from gateway.console.connection import ENVIRONMENT
from gateway.console.template_plan import desired_from
from gateway.credentials.config_file import build_credentials
from gateway.errors import CI_ERRORS, GatewayError, Reason

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_error_table_matches_the_mapping_in_code() -> None:
    table = README.split("<!-- error-table:start")[1].split("<!-- error-table:end")[0]
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| `(\w+)` \| (\w+) \|$", table, re.MULTILINE)
    documented = {code: (status, reason, retry) for code, status, reason, retry in rows}
    in_code = {
        code: (rule.status.name, rule.reason.value, rule.retry.value)
        for code, rule in CI_ERRORS.items()
    }
    assert documented == in_code


def _subclasses(cls: type[GatewayError]) -> list[type[GatewayError]]:
    found, todo = [], [cls]
    while todo:  # bounded: a finite class tree, each class visited once
        current = todo.pop()
        found.append(current)
        todo.extend(current.__subclasses__())
    return found


def test_reason_table_lists_every_reason_with_its_code() -> None:
    """Every `Reason` is documented (in one of the two tables), and a reason a class declares
    is documented with that class's gRPC code."""
    ci_table = README.split("<!-- error-table:start")[1].split("<!-- error-table:end")[0]
    ci_reasons = set(re.findall(r"^\| `\w+` \| \w+ \| `(\w+)` \|", ci_table, re.MULTILINE))
    table = README.split("<!-- reason-table:start")[1].split("<!-- reason-table:end")[0]
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([A-Z_]+) \| [^|]+ \|$", table, re.MULTILINE))
    assert ci_reasons | set(rows) == {reason.value for reason in Reason}
    for cls in _subclasses(GatewayError):
        declares = cls.__module__ == errors.__name__ and "reason" in vars(cls)
        if declares and cls.reason.value in rows:
            assert rows[cls.reason.value] == cls.status.name, cls.__name__


def test_ci_runs_the_readme_test_command() -> None:
    quick_start = README.split("## Quick start")[1].split("##")[0]
    assert "make demo" in quick_start and "make test" in quick_start
    ci_lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    *setup, last = ci_lines
    assert last == "make test"
    for line in setup:  # only installs of system packages the quick start names
        tool = re.fullmatch(r"command -v (\S+) >/dev/null \|\| \(.*apt-get install -y \1\)", line)
        assert tool is not None and f"`{tool.group(1)}`" in quick_start, line


def test_every_repository_path_the_readme_names_exists() -> None:
    """A reader follows `gateway/jobs/tracking.py` to the code: a path left behind by a move
    sends them nowhere."""
    top = "gateway|ci_emulator|tests|protos|k8s|bench|examples|scripts|api"
    named = set(re.findall(rf"`((?:{top})/[\w./-]*)`", README))
    assert named, "the pattern found no path at all"
    assert sorted(path for path in named if not (ROOT / path).exists()) == []


def _toml_blocks() -> list[str]:
    """Every ```toml block of the README, indented ones (in a list item) dedented."""
    blocks = re.findall(r"^( *)```toml\n(.*?)^\1```$", README, re.MULTILINE | re.DOTALL)
    return [
        "".join(line[len(indent) :] for line in text.splitlines(True)) for indent, text in blocks
    ]


def test_every_toml_block_loads_with_the_loader_of_its_file(tmp_path: Path) -> None:
    """A reader copies `gateway.toml`, `credentials.toml`, `access.toml` or `templates.toml`
    from the README: each must load as the gateway loads that file (a key renamed in the code
    and not in the README would stop the start); a block that names no file is settings."""
    blocks = _toml_blocks()
    assert len(blocks) >= 6, "the pattern missed the README's TOML blocks"
    for text in blocks:
        first = text.splitlines()[0]
        data = tomllib.loads(text)
        if first.startswith("# credentials.toml"):
            build_credentials(data, environ={})
        elif first.startswith("# access.toml"):
            build_access(data, base=tmp_path)
        elif first.startswith("# templates.toml"):
            assert desired_from(data, source="README").templates
        else:
            settings_file = tmp_path / "gateway.toml"
            settings_file.write_text(text)
            load_settings(config_file=settings_file, environ={})


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (found,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found.choices)


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_the_operator_cli_tables_name_real_commands_flags_and_variables() -> None:
    """The tables of "Operator CLI": each command with the flags its row shows, and each
    connection flag with its environment variables."""
    section = README.split("## Operator CLI")[1].split("\n## ")[0]
    jobs = _subcommands(commands.build_parser())
    rows = re.findall(r"^\| `([a-z][^`]*)` \| `[A-Z]", section, re.MULTILINE)
    assert {row.split()[0] for row in rows} == set(jobs)
    for row in rows:
        command = row.split()[0]
        unknown = set(re.findall(r"--[a-z-]+", row)) - _flags(jobs[command])
        assert not unknown, (command, unknown)
    connection = re.findall(r"^\| (`--[^|]+) \| ([^|]+) \|", section, re.MULTILINE)
    assert connection, "the pattern found no connection row"
    for flags, variables in connection:
        assert set(re.findall(r"`(--[a-z-]+)`", flags)) <= _flags(jobs["list"]), flags
        assert set(re.findall(r"`(CI_GATEWAY_\w+)`", variables)) <= set(ENVIRONMENT), variables


def _fenced(language: str) -> list[str]:
    """The README's unindented ```language blocks, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)


def _console_lines() -> list[list[str]]:
    """The `ci-gateway jobs|templates ...` commands of the README's shell blocks, as argv after
    `ci-gateway`, placeholders filled in."""
    found = []
    for block in _fenced("sh"):
        for line in block.splitlines():
            command = re.search(r"ci-gateway ((?:jobs|templates) [^|#)]*)", line)
            if command:
                text = command.group(1).replace("<JOB_ID>", "j0").replace('"$job"', "j0")
                found.append(shlex.split(text))
    return found


@pytest.mark.parametrize("argv", _console_lines(), ids=" ".join)
def test_every_operator_command_the_readme_shows_parses(argv: list[str]) -> None:
    program, *rest = argv
    parser = (commands if program == "jobs" else templates).build_parser()
    parser.parse_args(rest)  # a usage error is SystemExit(2), and fails the test


# What grpcurl finds through reflection: the gateway's services and grpc.health.v1.
SERVED = (service_pb2, queues_pb2, templates_pb2, workflows_pb2, health_pb2)


def _grpcurl_commands() -> list[list[str]]:
    """Each `grpcurl` command of the README's shell blocks as its arguments, up to a pipe, a
    redirection or the end of a `$(...)`; a quoted body may span lines."""
    found = []
    for block in _fenced("sh"):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines(True):
            pending += line
            try:
                shlex.split(pending, comments=True)
            except ValueError:  # an open quote: the command goes on
                continue
            lexer = shlex.shlex(pending, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens, pending = list(lexer), ""
            if "grpcurl" in tokens:
                args = tokens[tokens.index("grpcurl") + 1 :]
                ends = [i for i, arg in enumerate(args) if arg in ("|", ")", "<")]
                found.append(args[: ends[0]] if ends else args)
    return found


def test_every_grpcurl_command_names_a_served_method_and_a_valid_body() -> None:
    """The grpcurl lines (the quick start, day one, watching, health) name services and methods
    the gateway serves, and their `-d` bodies parse as those methods' requests: a field renamed
    in the protos fails here, not in a reader's terminal (grpcurl is not on every machine)."""
    assert all(module.DESCRIPTOR for module in SERVED)  # imported: their services are in the pool
    pool = descriptor_pool.Default()
    commands = _grpcurl_commands()
    assert len(commands) >= 10, "the pattern missed the README's grpcurl commands"
    bodies = 0
    for args in commands:
        if "describe" in args:
            pool.FindServiceByName(args[args.index("describe") + 1])
        methods = [arg for arg in args if re.fullmatch(r"[\w.]+/\w+", arg)]
        if not methods:
            continue
        service, method = methods[0].split("/")
        found = pool.FindServiceByName(service).FindMethodByName(method)
        body = args[args.index("-d") + 1] if "-d" in args else "@"
        if body != "@":  # `-d @`: the body comes from stdin (the job examples, checked apart)
            json_format.Parse(body, message_factory.GetMessageClass(found.input_type)())
            bodies += 1
    assert bodies >= 7


async def test_the_python_examples_run(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "Calling the gateway"'s program submits a job and prints it, run against a gateway as
    written (its address aside); the fragments after it build their messages as written."""
    program, *fragments = _fenced("python")
    body, last = program.rstrip().rsplit("\n", 1)
    assert last == "asyncio.run(main())"  # awaited here instead: the test's loop serves
    namespace: dict[str, Any] = {}
    exec(body.replace("127.0.0.1:50051", gateway.address), namespace)  # noqa: S102
    await namespace["main"]()
    job_id, state = capsys.readouterr().out.split()
    assert (job_id[:1], state) == ("j", "JOB_STATE_SUBMITTED")
    assert len(fragments) == 2
    built: dict[str, Any] = {"media_pb2": namespace["media_pb2"]}
    for fragment in fragments:  # the last line of the second calls a stub the reader has
        exec(fragment.split("\nanswer = ")[0], built)  # noqa: S102
    assert built["video_tag"].operation.extra_nodes[0].children[0].text == "Stream"
    assert [op.tag for op in built["upload"].operation] == ["MediaInfo", "Snapshot"]
