"""The package layout is the architecture: these tests keep it true as the code grows.

* Imports point down. Each part of `gateway` has a layer, and a module may import only from
  lower layers (or its own part); a new upward import (say `upstream` reaching into `api`) fails
  here, where a reviewer would otherwise have to spot it.
* No import cycle between any two modules, whatever layer they share.
* The service runs without the emulator: nothing in `gateway` imports `ci_emulator` or PyAV, the
  base install does not depend on PyAV, the container image does not copy the emulator, and the
  commands that need it say which extra to install instead of failing with a traceback.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = ROOT / "gateway"

# Lowest first. A part is a top-level module or a subpackage of `gateway`.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "errors",
            "model",
            "kinds",
            "rpc_context",
            "telemetry",
            "scrub",
            "_files",
            "_toml",
            "_chain",
            "_aiohttp_stop",
            "_log_budget",
            "_proto",
        }
    ),
    frozenset({"logs", "status", "config", "tracing", "_aiohttp_log"}),
    frozenset({"credentials"}),
    frozenset({"upstream", "access"}),
    frozenset({"jobs"}),
    # Queues, templates, workflows: CI's resources beside jobs, reusing their tracking parts.
    frozenset({"resources"}),
    # The operator's CLI beside the server: a client of the API, it may import neither `api`
    # nor anything below but the generated code (test_the_operator_cli_is_only_a_client).
    frozenset({"api", "console"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
LAYER_OF = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _gateway_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted(GATEWAY.rglob("*.py"))
        if "_proto" not in path.parts or path.name == "__init__.py"
    }


def _imports(path: Path) -> Iterator[str]:
    """Every absolute module name the file imports, `from a import b` yielding `a` and `a.b`."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _gateway_modules()
    known = set(modules) | {"gateway._proto"}
    return {
        name: {target for target in _imports(path) if target in known and target != name}
        for name, path in modules.items()
    }


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_part_of_the_gateway_has_a_layer() -> None:
    parts = {_part(name) for name in _gateway_modules()} - {""}
    assert parts <= LAYER_OF.keys(), f"give these a layer in LAYERS: {parts - LAYER_OF.keys()}"


def test_imports_point_down() -> None:
    upward = [
        f"{source} imports {target}"
        for source, targets in _graph().items()
        for target in targets
        if _part(source)
        and _part(target)
        and _part(source) != _part(target)
        and LAYER_OF[_part(target)] >= LAYER_OF[_part(source)]
    ]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_operator_cli_is_only_a_client() -> None:
    """`gateway.console` talks to a gateway over gRPC like any client: the generated code is
    all of the gateway it may import, so it cannot reach around the API to CI or the keys."""
    reached = {
        target
        for source, targets in _graph().items()
        if _part(source) == "console"
        for target in targets
        if _part(target) != "console"
    }
    assert {_part(target) for target in reached} <= {"_proto"}, sorted(reached)


def test_the_gateway_never_imports_the_emulator_or_pyav() -> None:
    offenders = [
        f"{name}: {target}"
        for name, path in _gateway_modules().items()
        for target in _imports(path)
        if target.split(".")[0] in ("ci_emulator", "av")
    ]
    assert not offenders


def test_pyav_is_only_in_the_emulator_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [dep for dep in project["dependencies"] if dep.lower().startswith("av")]
    assert any(dep.startswith("av") for dep in project["optional-dependencies"]["emulator"])


def test_the_container_image_carries_no_emulator() -> None:
    copies = [
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
    ]
    assert "gateway" in copies
    assert not [source for source in copies if "emulator" in source]
    allowed = (ROOT / ".dockerignore").read_text().splitlines()
    assert not [line for line in allowed if line.startswith("!") and "emulator" in line]


# Run with PyAV (and so the emulator) made unimportable, as in a production install.
_WITHOUT_PYAV = """
import sys
sys.modules["av"] = None
from gateway.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["demo", "emulator"])
def test_emulator_commands_name_the_missing_extra(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PYAV, command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'ci-gateway[emulator]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_runs_without_pyav() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PYAV, "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "--listen" in done.stdout


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0]
    for stop in "<>=!~[ ":
        name = name.split(stop)[0]
    return name.strip().lower().replace("_", "-")


def test_every_library_the_gateway_imports_is_a_declared_dependency() -> None:
    """A direct import of what happens to come with another package (multidict with aiohttp,
    say) breaks the day that package stops bringing it; `pip install ci-gateway` must bring
    everything `gateway` imports (the `tracing` extra, what `gateway.tracing` imports)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_requirement_name(dep) for dep in project["dependencies"]}
    tracing = declared | {_requirement_name(d) for d in project["optional-dependencies"]["tracing"]}
    providers = importlib.metadata.packages_distributions()
    missing = []
    for name, path in _gateway_modules().items():
        allowed = tracing if _part(name) == "tracing" else declared
        for target in _imports(path):
            top = target.split(".")[0]
            if top in sys.stdlib_module_names or top == "gateway" or top == "__future__":
                continue
            dists = {d.lower().replace("_", "-") for d in providers.get(top, [])}
            if not dists & allowed:
                missing.append(f"{name}: {top} ({sorted(dists) or 'not installed'})")
    assert not missing, sorted(set(missing))
