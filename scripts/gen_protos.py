"""Regenerate the Python code for protos/ into gateway/_proto/ (or under --out, for the
staleness test).

The generated modules are checked in so that an installed gateway needs no protoc, and the
test suite regenerates them into a temporary folder and compares byte for byte: a proto edited
without regenerating, or a generated file edited by hand, fails the build.

protoc writes a package tree that mirrors the proto paths (`ci/media/v1/...`) and imports it as
`ci.media.v1`; a two-letter top-level package named `ci` is shadowed by any `ci/` folder on
`sys.path`, so the modules are flattened into the private `gateway._proto` package and their
imports rewritten to match. The wire names (`ci.media.v1.*`) are in the descriptors and do not
change.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE = "gateway/_proto"
PROTO_PACKAGE_DIR = "ci/media/v1"
_PROTOC_IMPORT = "from ci.media.v1 import "
_OUR_IMPORT = "from gateway._proto import "


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def _plugin(name: str) -> str:
    """mypy-protobuf's plugin, installed beside this interpreter."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"{name} not found: install the dev extras (pip install -e '.[dev]')")
    return str(path)


def generate(out: Path) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        _protoc(Path(scratch))
        target = out / PACKAGE
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted((Path(scratch) / PROTO_PACKAGE_DIR).iterdir()):
            text = source.read_text().replace(_PROTOC_IMPORT, _OUR_IMPORT)
            (target / source.name).write_text(text)
    marker = out / PACKAGE / "__init__.py"
    marker.write_text('"""Generated from protos/ by scripts/gen_protos.py; do not edit."""\n')


def _protoc(out: Path) -> None:
    from grpc_tools import protoc

    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        # Typed stubs for the gRPC modules (protoc's --pyi_out covers only the messages).
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--mypy_grpc_out={out}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    # protoc resolves the relative proto paths against the include path.
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT, help="output root (default: repo root)")
    generate(parser.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
