"""The checked-in generated code in gateway/_proto/ is exactly what protos/ produces today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tree(root: Path) -> dict[str, bytes]:
    base = root / "gateway" / "_proto"
    return {
        str(path.relative_to(base)): path.read_bytes()
        for path in sorted(base.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        timeout=120,
    )
    fresh, checked_in = _tree(tmp_path), _tree(ROOT)
    assert fresh.keys() == checked_in.keys(), "run `make protos` and commit gateway/_proto/"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"stale generated files (run `make protos`): {stale}"


def test_every_proto_has_generated_modules() -> None:
    for proto in (ROOT / "protos").rglob("*.proto"):
        stem = proto.stem
        assert (ROOT / "gateway" / "_proto" / f"{stem}_pb2.py").exists(), stem
        assert (ROOT / "gateway" / "_proto" / f"{stem}_pb2_grpc.py").exists(), stem
