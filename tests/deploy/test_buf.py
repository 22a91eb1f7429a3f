"""The protos: `buf lint` clean, and no breaking change against the released API image.

The baseline is `api/released.binpb`, a buf image committed with the repository (no release tag
exists yet, and a clone need not carry tags). README "Protos and API compatibility" tells how to
replace it when a version is released."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "node_modules" / ".bin" / "buf"
BASELINE = ROOT / "api" / "released.binpb"


def buf(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    assert BUF.exists(), "buf is installed by `make test` (npm ci of the root package.json)"
    return subprocess.run(
        [str(BUF), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "HOME": str(cache), "BUF_CACHE_DIR": str(cache)},
    )


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    path = tmp_path / "buf-cache"
    path.mkdir()
    return path


def copy_module(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "protos", work / "protos")
    shutil.copy(ROOT / "buf.yaml", work / "buf.yaml")
    return work


def test_buf_lint_is_clean(cache: Path) -> None:
    done = buf("lint", cwd=ROOT, cache=cache)
    assert done.returncode == 0, done.stdout + done.stderr


def test_lint_exceptions_are_only_the_deliberate_ones(tmp_path: Path, cache: Path) -> None:
    work = copy_module(tmp_path)
    proto = work / "protos" / "ci" / "media" / "v1" / "service.proto"
    proto.write_text(proto.read_text() + "\nmessage badly_named {}\n")
    done = buf("lint", cwd=work, cache=cache)
    assert done.returncode != 0 and "badly_named" in done.stdout


def test_no_breaking_change_against_the_released_api(cache: Path) -> None:
    done = buf("breaking", "--against", str(BASELINE), cwd=ROOT, cache=cache)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_breaking_change_is_caught(tmp_path: Path, cache: Path) -> None:
    work = copy_module(tmp_path)
    proto = work / "protos" / "ci" / "media" / "v1" / "service.proto"
    text = proto.read_text()
    # Renumber the first field of SubmitMediaJobRequest: the wire format would change.
    changed = re.sub(
        r"(message SubmitMediaJobRequest \{[^}]*?string bucket = )1;", r"\g<1>99;", text
    )
    assert changed != text
    proto.write_text(changed)
    done = buf("breaking", "--against", str(BASELINE), cwd=work, cache=cache)
    assert done.returncode != 0
    assert "SubmitMediaJobRequest" in done.stdout
