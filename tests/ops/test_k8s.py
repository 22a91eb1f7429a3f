"""The Kubernetes manifests: schema-valid (kubernetes-validate --strict, offline) and safe.

Beyond the schema, the properties that make the gateway behave: restricted Pod Security,
probes that can reach it, a drain that fits in the termination grace period, a Secret that can
rotate (a directory mount, never subPath), loopback-only API for the sidecar."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import ENVIRONMENT, load_settings
from gateway.credentials import ENV_SECRET_ID, ENV_SECRET_KEY
from gateway.health import API_SERVICE

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
LAYOUTS = ("shared", "sidecar")
# The oldest Kubernetes these manifests target (native sidecars, the preStop sleep action) and
# the newest schema the validator bundles.
VERSIONS = ("1.30.0", None)
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
GATEWAY_ENV = set(ENVIRONMENT) | {ENV_SECRET_ID, ENV_SECRET_KEY}

Doc = dict[str, Any]


def resources(layout: str) -> list[Path]:
    kustomization = yaml.safe_load((K8S / layout / "kustomization.yaml").read_text())
    return [K8S / layout / name for name in kustomization["resources"]]


def documents(layout: str) -> list[Doc]:
    return [doc for path in resources(layout) for doc in yaml.safe_load_all(path.read_text())]


def one(layout: str, kind: str) -> Doc:
    (found,) = [doc for doc in documents(layout) if doc["kind"] == kind]
    return found


def validate(paths: list[Path], version: str | None) -> subprocess.CompletedProcess[str]:
    assert VALIDATE.is_file(), "kubernetes-validate is a dev dependency: run `make test`"
    args = [str(VALIDATE), "--strict", "--no-warn"]
    if version:
        args += ["-k", version]
    return subprocess.run([*args, *map(str, paths)], capture_output=True, text=True, timeout=120)


def containers(pod: Doc) -> Iterator[Doc]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def gateway_container(pod: Doc) -> Doc:
    (found,) = [c for c in containers(pod) if c["name"] == "ci-gateway"]
    return found


@pytest.mark.parametrize("layout", LAYOUTS)
def test_kustomization_lists_every_manifest(layout: str) -> None:
    on_disk = {p.name for p in (K8S / layout).glob("*.yaml")} - {"kustomization.yaml"}
    assert {p.name for p in resources(layout)} == on_disk


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_are_schema_valid(version: str | None) -> None:
    paths = [path for layout in LAYOUTS for path in resources(layout)]
    done = validate(paths, version)
    assert done.returncode == 0, done.stdout + done.stderr


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    deployment = yaml.safe_load((K8S / "shared" / "deployment.yaml").read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    bad = tmp_path / "deployment.yaml"
    bad.write_text(yaml.safe_dump(deployment))
    done = validate([bad], None)
    assert done.returncode != 0 and "securityContxt" in done.stdout + done.stderr


@pytest.mark.parametrize("layout", LAYOUTS)
def test_restricted_pod_security(layout: str) -> None:
    pod = one(layout, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in containers(pod):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]
        assert context.get("runAsUser", 1) != 0


@pytest.mark.parametrize("layout", LAYOUTS)
def test_probe_ports_are_integers_and_prestop_fits_the_grace_period(layout: str) -> None:
    pod = one(layout, "Deployment")["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    gateway = gateway_container(pod)
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(gateway)
    for container in containers(pod):
        for name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(name)
            if probe is None:
                continue
            (action,) = [probe[k] for k in ("grpc", "httpGet", "tcpSocket") if k in probe]
            assert type(action["port"]) is int, (container["name"], name)
        pre_stop = container.get("lifecycle", {}).get("preStop")
        if pre_stop is not None:
            assert pre_stop["sleep"]["seconds"] < grace


def test_shared_probes_are_grpc_health_and_the_drain_fits() -> None:
    pod = one("shared", "Deployment")["spec"]["template"]["spec"]
    gateway = gateway_container(pod)
    assert gateway["readinessProbe"]["grpc"] == {"port": 50051, "service": API_SERVICE}
    assert gateway["livenessProbe"]["grpc"] == {"port": 50051}  # "" = the whole server
    config = one("shared", "ConfigMap")["data"]["gateway.toml"]
    settings = load_settings(overrides=_flatten(tomllib.loads(config)))
    assert settings.listen == "0.0.0.0:50051" and settings.metrics_listen.endswith(":9090")
    pre_stop = gateway["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop + settings.shutdown_grace_s < pod["terminationGracePeriodSeconds"]


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat


def test_sidecar_api_is_loopback_only_and_probed_on_the_ops_port() -> None:
    pod = one("sidecar", "Deployment")["spec"]["template"]["spec"]
    gateway = gateway_container(pod)
    assert gateway["restartPolicy"] == "Always"  # a native sidecar: up before, down after the app
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert env["CI_GATEWAY_LISTEN"] == "127.0.0.1:50051"
    ops_port = int(env["CI_GATEWAY_METRICS_LISTEN"].rsplit(":", 1)[1])
    for name, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        assert gateway[name]["httpGet"] == {"path": path, "port": ops_port}
    assert [p["containerPort"] for p in gateway["ports"]] == [ops_port]  # no gRPC port exposed


@pytest.mark.parametrize("layout", LAYOUTS)
def test_secret_is_mounted_as_a_directory_and_env_names_are_real(layout: str) -> None:
    pod = one(layout, "Deployment")["spec"]["template"]["spec"]
    secret_volumes = {v["name"] for v in pod["volumes"] if "secret" in v}
    assert secret_volumes
    secret = one(layout, "Secret")
    assert {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} == {
        secret["metadata"]["name"]
    }
    assert set(secret["stringData"]) == {"secret_id", "secret_key"}
    for container in containers(pod):
        for mount in container.get("volumeMounts", []):
            if mount["name"] in secret_volumes:
                assert "subPath" not in mount and "subPathExpr" not in mount
                assert mount["readOnly"] is True
    gateway = gateway_container(pod)
    assert {e["name"] for e in gateway.get("env", [])} <= GATEWAY_ENV


def test_shared_service_pdb_hpa_and_policy_point_at_the_deployment() -> None:
    deployment = one("shared", "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one("shared", "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    grpc_port = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert grpc_port["appProtocol"] == "grpc" and grpc_port["port"] == 50051
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        selector = one("shared", kind)["spec"]
        selector = selector.get("selector", selector.get("podSelector"))
        assert selector["matchLabels"].items() <= labels.items(), kind
    hpa = one("shared", "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["minReplicas"] >= 2  # the PDB can then always allow one disruption
    ingress_ports = {
        port["port"]
        for rule in one("shared", "NetworkPolicy")["spec"]["ingress"]
        for port in rule["ports"]
    }
    assert ingress_ports == {50051, 9090}
