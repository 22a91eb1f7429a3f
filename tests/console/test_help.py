"""Every `ci-gateway` command's `--help` lists the exit codes that command can end with: none
missing (a script branches on them) and none it cannot return (`templates --help` once listed
watch's job outcomes, and `jobs --help` the templates' drift).

What a command can return is read from its code, not from a second list: the `ExitCode`
members its handler reaches (its own body, the console functions it calls, the tables those
read), or the integers its entry point returns (`serve`, the emulator's). The help text comes
from the real CLI (`gateway.cli.main`), as an operator would run it.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ci_emulator import cli as emulator_cli
from ci_emulator import demo
from gateway import cli
from gateway.console import commands, connection, exits, templates
from gateway.console.exits import EVERY_COMMAND, ExitCode

# argparse's own ends, for every command: its --help (0) and a usage error (2).
ARGPARSE_ENDS = {0, 2}


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        code: object = cli.main([*argv, "--help"])
    except SystemExit as done:
        code = done.code
    assert code == 0, argv
    return capsys.readouterr().out


def _listed(help_text: str) -> set[int]:
    section = help_text.split("\nexit codes:\n", 1)[1].split("\n\n", 1)[0]
    return {int(found) for found in re.findall(r"^  (\d+) ", section, re.M)}


def _names(function: Callable[..., Any]) -> Iterator[object]:
    """Whatever each global name or dotted name in `function`'s body stands for (a parameter
    or local of the same name as a global, as `main_with`'s `run`, is not that global)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    local = {a.arg for node in ast.walk(tree) if isinstance(node, ast.arg) for a in [node]}
    local |= {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    names = {name: value for name, value in function.__globals__.items() if name not in local}
    for node in ast.walk(tree):
        found = _resolve(node, names)
        if found is not None:
            yield found


def _resolve(node: ast.AST, names: dict[str, Any]) -> object:
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, names)
        if isinstance(owner, (types.ModuleType, type)):
            return getattr(owner, node.attr, None)
    return None


def _reached_codes(function: Callable[..., Any], seen: set[object] | None = None) -> set[int]:
    """The `ExitCode`s `function` can end with: those it names, and those of the console
    functions and tables it uses (an over-estimate only where a function names a code it
    does not return, which the console's functions do not)."""
    seen = set() if seen is None else seen
    seen.add(function)
    codes: set[int] = set()
    for found in _names(function):
        if isinstance(found, ExitCode):
            codes.add(found)
        elif isinstance(found, dict):
            codes.update(value for value in found.values() if isinstance(value, ExitCode))
        elif (
            inspect.isfunction(found)
            and found not in seen
            and found.__module__.startswith("gateway.console")
        ):
            codes |= _reached_codes(found, seen)
    return codes


def _returned_integers(function: Callable[..., Any], seen: set[object] | None = None) -> set[int]:
    """The integer literals `function` returns, and those of its own module's functions whose
    result it returns (`return asyncio.run(_demo(...))`)."""
    seen = set() if seen is None else seen
    seen.add(function)
    numbers: set[int] = set()
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        for part in ast.walk(node.value):
            if isinstance(part, ast.Constant) and type(part.value) is int:
                numbers.add(part.value)
            called = _resolve(part, function.__globals__)
            if (
                inspect.isfunction(called)
                and called not in seen
                and called.__module__ == function.__module__
            ):
                numbers |= _returned_integers(called, seen)
    return numbers


def _choices(parser: Any) -> dict[str, Any]:
    """A parser's sub-commands by name (argparse keeps them on its one subparsers action)."""
    choices: dict[str, Any] = next(a for a in parser._subparsers._group_actions).choices
    return choices


def _handler(parser: Any, name: str) -> Callable[..., Any]:
    sub = _choices(parser)[name]
    handler: Callable[..., Any] = sub.get_default("handler")
    return handler


def _console_commands() -> Iterator[tuple[str, Any, str]]:
    for group, module in (("jobs", commands), ("templates", templates)):
        parser = module.build_parser()
        for name in _choices(parser):
            yield group, parser, name


CONSOLE = list(_console_commands())


def test_every_command_ends_so_whatever_it_does() -> None:
    """`EVERY_COMMAND` is what the shared path can end with: argparse (0, 2), `execute` and
    the connection (unreachable, refused: `Session.errors` and `failure` are methods, so their
    module is read whole), and `main_with` (Ctrl-C, a closed output)."""
    shared = _reached_codes(commands.execute) | _reached_codes(commands.main_with)
    in_connection = {
        found
        for node in ast.walk(ast.parse(inspect.getsource(connection)))
        if isinstance(found := _resolve(node, vars(connection)), ExitCode)
    }
    assert shared | in_connection | ARGPARSE_ENDS == set(EVERY_COMMAND)


@pytest.mark.parametrize(("group", "name"), [(group, name) for group, _, name in CONSOLE])
def test_a_console_commands_help_lists_the_codes_it_can_end_with(
    group: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = next(parser for g, parser, n in CONSOLE if (g, n) == (group, name))
    can_end = _reached_codes(_handler(parser, name)) | set(EVERY_COMMAND)
    assert _listed(_help([group, name], capsys)) == can_end


@pytest.mark.parametrize("group", ["jobs", "templates"])
def test_a_console_groups_help_lists_what_any_of_its_commands_can_end_with(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    can_end: set[int] = set(EVERY_COMMAND)
    for g, parser, name in CONSOLE:
        if g == group:
            can_end |= _reached_codes(_handler(parser, name))
    assert _listed(_help([group], capsys)) == can_end


def test_the_job_outcomes_and_the_drift_stay_where_they_belong(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The regression itself, spelled out."""
    assert ExitCode.DRIFT not in _listed(_help(["jobs"], capsys))
    assert not _listed(_help(["templates"], capsys)) & set(exits.JOB_ENDS)
    assert _listed(_help(["jobs", "submit"], capsys)) == set(EVERY_COMMAND)
    assert ExitCode.DRIFT not in _listed(_help(["templates", "apply"], capsys))


@pytest.mark.parametrize(
    ("command", "entry"),
    [("serve", cli._serve_command), ("emulator", emulator_cli.main), ("demo", demo.main)],
)
def test_serve_and_the_emulators_help_list_the_codes_they_can_end_with(
    command: str, entry: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _listed(_help([command], capsys)) == _returned_integers(entry) | ARGPARSE_ENDS


def test_every_command_of_the_cli_is_checked() -> None:
    """A new command needs its codes in its --help and a line above."""
    assert set(_choices(cli.build_parser())) == {
        "serve",
        "jobs",
        "templates",
        *cli.EMULATOR_COMMANDS,
    }
