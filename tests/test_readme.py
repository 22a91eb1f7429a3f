"""The README's promises that code can check: the error table and the two commands."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.errors import CI_ERRORS

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
