"""The README's promises that code can check: the error table and the two commands."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import errors
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
