"""The README's operations reference is checked against the code, so it cannot drift."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from gateway.api.metrics import GatewayMetrics, UpstreamMetrics
from gateway.cli import build_parser
from gateway.config.reference import reference_markdown
from gateway.config.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def between(marker: str) -> str:
    return README.split(f"<!-- {marker}:start")[1].split("-->", 1)[1].split(f"<!-- {marker}:end")[0]


def test_configuration_table_is_generated_from_the_settings() -> None:
    expected = reference_markdown()
    assert between("config-table").strip() == expected.strip(), (
        "README's configuration table is stale; replace it with:\n" + expected
    )


def test_every_documented_flag_is_accepted_by_serve() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    serve = commands.choices["serve"]
    flags = {flag for action in serve._actions for flag in action.option_strings}
    documented = set(re.findall(r"`(--[a-z-]+)`", between("config-table")))
    assert documented == {o.flag for o in OPTIONS if o.flag}
    assert documented <= flags


def test_metrics_table_matches_the_registry() -> None:
    metrics = GatewayMetrics()
    metrics.initialize("unary", "svc", ["M"])
    metrics.grpc_handled.labels("unary", "svc", "M", "OK")
    sink = UpstreamMetrics(metrics)
    sink.attempt_started("GetMediaInfo")
    sink.attempt_finished("GetMediaInfo", "200", 0.1)
    sink.retry_scheduled("GetMediaInfo", "UPSTREAM_UNAVAILABLE", 0.1)
    in_code: dict[str, tuple[str, frozenset[str]]] = {}
    for family in metrics.registry.collect():
        if family.name.startswith(("process_", "python_")):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {key for sample in family.samples for key in sample.labels if key != "le"}
        in_code[name] = (family.type, frozenset(labels))
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \|([^|]*)\|", between("metrics-table"), re.M)
    documented = {
        name: (kind, frozenset(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows
    }
    assert documented == in_code


def test_deploy_sections_name_real_files() -> None:
    for path in re.findall(r"`(k8s/\w+/?)`", README):
        assert (ROOT / path).exists(), path
    shared = README.split("## Deploy shared")[1].split("\n## ")[0]
    for name in re.findall(r"`(\w+\.yaml)`", shared):
        assert (ROOT / "k8s" / "shared" / name).is_file(), name


def test_every_test_file_the_deployment_files_name_exists() -> None:
    """A reader told "tests/... checks this" by the README, a manifest, the Dockerfile, the
    Makefile or buf.yaml finds that file (two comments named a `tests/ops/` that was renamed)."""
    named = [ROOT / "README.md", ROOT / "Dockerfile", ROOT / "Makefile", ROOT / "buf.yaml"]
    named += sorted((ROOT / "k8s").rglob("*.yaml"))
    missing = {
        f"{path.relative_to(ROOT)}: {test}"
        for path in named
        for test in re.findall(r"\btests/[\w/]+\.py\b", path.read_text())
        if not (ROOT / test).is_file()
    }
    assert not missing


def test_every_variable_the_docs_and_manifests_name_is_one_serve_knows() -> None:
    """`serve` warns of `CI_GATEWAY_*` variables that name no setting: none that the README,
    the manifests or the Dockerfile tell an operator to set may be among them."""
    from gateway.cli import KEY_VARIABLES
    from gateway.config.load import unknown_variables
    from gateway.console.connection import ENVIRONMENT as CLIENT_ENVIRONMENT

    texts = [README, (ROOT / "Dockerfile").read_text()]
    texts += [path.read_text() for path in sorted((ROOT / "k8s").rglob("*.yaml"))]
    named = {
        name for text in texts for name in re.findall(r"\bCI_GATEWAY_[A-Z0-9_]*[A-Z0-9]", text)
    }
    assert len(named) > 50
    environ = dict.fromkeys(named, "set")
    assert unknown_variables(environ, also_known=(*CLIENT_ENVIRONMENT, *KEY_VARIABLES)) == []
