"""The Kubernetes manifests: schema-valid (kubernetes-validate --strict, offline) and safe.

Beyond the schema, the properties that make the gateway behave: restricted Pod Security,
probes that can reach it (gRPC probes with integer ports on the plaintext health port: the shared
API port speaks TLS, the sidecar's listens on loopback), a drain that fits in the termination
grace period, Secrets that can rotate (directory mounts, never subPath,
no Tencent keys in the environment), secret settings read from files (no secretKeyRef variable
in the shared layout), an authenticated shared gateway (an access file, never --insecure), a
callback port that the Service and the NetworkPolicy open, and a loopback-only API for the
sidecar. The ConfigMaps' TOML files are loaded with the gateway's own loaders (the secret
settings' files resolved from the rendered Secrets), so the examples cannot drift from the
code."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
import trustme
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.access.config_file import load_access_file
from gateway.access.interceptor import ClientAccess
from gateway.access.tls import is_loopback
from gateway.api.health import API_SERVICE, OVERALL, SERVING
from gateway.api.server import start_gateway
from gateway.cli import build_parser
from gateway.config.load import load_settings
from gateway.config.settings import OPTIONS, Callbacks, Settings, Shared
from gateway.credentials import ENV_SECRET_ID, ENV_SECRET_KEY, ENV_SESSION_TOKEN
from gateway.credentials.config_file import open_credentials
from gateway.credentials.mounted import DirectoryCredentialsProvider
from gateway.jobs.runtime import _check as check_tracking_settings
from tests.api.conftest import WAIT_S, health_status, next_status
from tests.deploy.test_dockerfile import DOCKERFILE, final_stage, instructions

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
LAYOUTS = ("shared", "sidecar")
# The oldest Kubernetes these manifests target (native sidecars, the preStop sleep action) and
# the newest schema the validator bundles.
VERSIONS = ("1.30.0", None)
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
# Manifests use the settings' canonical names (`CI_GATEWAY_<SECTION>_<NAME>`), never an alias.
GATEWAY_ENV = {option.env for option in OPTIONS} | {ENV_SECRET_ID, ENV_SECRET_KEY}
TENCENT_KEY_ENV = {ENV_SECRET_ID, ENV_SECRET_KEY, ENV_SESSION_TOKEN}
# Stands in for the deliberately invalid placeholder of the shared callback token.
CALLBACK_TOKEN = "k8s-test-callback-token-0123456789abcdef"
SETTINGS_SECRET = "ci-gateway-settings"
STAND_INS = {(SETTINGS_SECRET, "callback_token"): CALLBACK_TOKEN}

Doc = dict[str, Any]


def resources(layout: str) -> list[Path]:
    kustomization = yaml.safe_load((K8S / layout / "kustomization.yaml").read_text())
    return [K8S / layout / name for name in kustomization["resources"]]


def documents(layout: str) -> list[Doc]:
    return [doc for path in resources(layout) for doc in yaml.safe_load_all(path.read_text())]


def one(layout: str, kind: str, name: str | None = None) -> Doc:
    (found,) = [
        doc
        for doc in documents(layout)
        if doc["kind"] == kind and name in (None, doc["metadata"]["name"])
    ]
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


def gateway_pod(layout: str) -> Doc:
    pod: Doc = one(layout, "Deployment")["spec"]["template"]["spec"]
    return pod


def container_ports(container: Doc) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", [])}


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def volume_source(volume: Doc) -> tuple[str, str] | None:
    """("ConfigMap" | "Secret", its name) for a volume backed by one, else None."""
    if "configMap" in volume:
        return "ConfigMap", volume["configMap"]["name"]
    if "secret" in volume:
        return "Secret", volume["secret"]["secretName"]
    return None


@dataclass
class Layout:
    """A layout's gateway as it would start: its files rendered under tmp_path, its settings
    loaded from its arguments, environment and config file with the gateway's own loaders."""

    settings: Settings
    environ: dict[str, str]
    local: Callable[[str], str]  # an in-pod path -> where the test rendered it


def image_environment() -> dict[str, str]:
    """The `CI_GATEWAY_*` variables the image's ENV sets (Dockerfile, final stage): every pod
    starts with them, and they win over the --config file as any variable does."""
    steps = final_stage(instructions(DOCKERFILE.read_text()))
    env = " ".join(args for keyword, args in steps if keyword == "ENV")
    return dict(re.findall(r"\b(CI_GATEWAY_[A-Z_]+)=(\S+)", env))


def load_layout(
    layout: str, tmp_path: Path, stand_ins: Mapping[tuple[str, str], str] = STAND_INS
) -> Layout:
    """Write each ConfigMap or Secret mounted into the gateway container to tmp_path (in-pod
    paths inside the files rewritten to match; a Secret's key replaced by `stand_ins[(secret,
    key)]` when given), take its environment (the image's ENV, then the container's: plain
    values only, no layout passes a secret as a variable), parse its arguments with the real
    CLI parser and load the settings as `ci-gateway serve` does, secret `*_file` settings read
    from the rendered Secrets."""
    pod = gateway_pod(layout)
    gateway = gateway_container(pod)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = [
        (mount, source)
        for mount in gateway.get("volumeMounts", [])
        if (source := volume_source(volumes[mount["name"]])) is not None
    ]
    moved = {mount["mountPath"]: tmp_path / mount["name"] for mount, _ in mounts}
    in_pod = re.compile("|".join(map(re.escape, sorted(moved, key=len, reverse=True))))

    def local(text: str) -> str:
        return in_pod.sub(lambda match: str(moved[match.group()]), text)

    for mount, (kind, name) in mounts:
        doc = one(layout, kind, name)
        directory = moved[mount["mountPath"]]
        directory.mkdir()
        for key, value in {**doc.get("data", {}), **doc.get("stringData", {})}.items():
            if kind == "Secret":
                value = stand_ins.get((name, key), value)
            (directory / key).write_text(local(value))
    # The image's ENV first: the container's env adds to it and wins for the same name.
    environ = image_environment()
    for entry in gateway.get("env", []):
        assert "value" in entry, f"{entry['name']}: a secret belongs in a mounted file"
        environ[entry["name"]] = local(entry["value"])
    args = build_parser().parse_args(["serve", *map(local, gateway.get("args", []))])
    settings = load_settings(
        config_file=args.config,
        environ=environ,
        overrides={option.key: getattr(args, option.key) for option in OPTIONS if option.flag},
    )
    return Layout(settings, environ, local)


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


def grpc_probes(gateway: Doc) -> dict[str, Doc]:
    """Probe name -> its `grpc` action; every probe of the gateway must be one."""
    probes = {}
    for name in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert set(gateway[name]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, name
        probes[name] = gateway[name]["grpc"]
    return probes


def test_shared_probes_are_grpc_on_the_health_port_and_the_drain_fits(tmp_path: Path) -> None:
    # The API port speaks TLS (mTLS optionally), which the kubelet's gRPC probe cannot: the
    # probes ask the plaintext health port, which serves grpc.health.v1 and nothing else.
    pod = one("shared", "Deployment")["spec"]["template"]["spec"]
    gateway = gateway_container(pod)
    settings = load_layout("shared", tmp_path).settings
    assert settings.listen == "0.0.0.0:50051" and settings.metrics_listen.endswith(":9090")
    health_port = port_of(settings.health_listen)
    assert health_port not in (port_of(settings.listen), port_of(settings.metrics_listen))
    assert grpc_probes(gateway) == {
        "startupProbe": {"port": health_port, "service": OVERALL},
        "livenessProbe": {"port": health_port, "service": OVERALL},
        "readinessProbe": {"port": health_port, "service": API_SERVICE},
    }
    ports = container_ports(gateway)
    assert ports["grpc-health"] == health_port
    assert ports["metrics"] == port_of(settings.metrics_listen)  # still scraped
    pre_stop = gateway["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop + settings.shutdown_grace_s < pod["terminationGracePeriodSeconds"]


def test_sidecar_api_is_loopback_only_and_probed_on_the_health_port() -> None:
    pod = one("sidecar", "Deployment")["spec"]["template"]["spec"]
    gateway = gateway_container(pod)
    assert gateway["restartPolicy"] == "Always"  # a native sidecar: up before, down after the app
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert env["CI_GATEWAY_LISTEN"] == "127.0.0.1:50051"
    health_port = port_of(env["CI_GATEWAY_HEALTH_LISTEN"])
    ops_port = port_of(env["CI_GATEWAY_METRICS_LISTEN"])
    # The app starts once the sidecar is ready, not merely alive.
    assert grpc_probes(gateway) == {
        "startupProbe": {"port": health_port, "service": API_SERVICE},
        "livenessProbe": {"port": health_port, "service": OVERALL},
        "readinessProbe": {"port": health_port, "service": API_SERVICE},
    }
    # Health and metrics only: the API port is not exposed.
    assert container_ports(gateway) == {"grpc-health": health_port, "metrics": ops_port}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_secret_is_mounted_as_a_directory_and_env_names_are_real(layout: str) -> None:
    pod = gateway_pod(layout)
    secret_volumes = {v["name"] for v in pod["volumes"] if "secret" in v}
    assert secret_volumes
    secrets = {doc["metadata"]["name"] for doc in documents(layout) if doc["kind"] == "Secret"}
    assert {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} <= secrets
    # The Tencent keys: exactly the files the `directory` credentials source reads.
    assert set(one(layout, "Secret", "ci-gateway-credentials")["stringData"]) == {
        "secret_id",
        "secret_key",
    }
    for container in containers(pod):
        for mount in container.get("volumeMounts", []):
            if mount["name"] in secret_volumes:
                assert "subPath" not in mount and "subPathExpr" not in mount
                assert mount["readOnly"] is True
    gateway = gateway_container(pod)
    assert {e["name"] for e in gateway.get("env", [])} <= GATEWAY_ENV


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tencent_keys_never_reach_the_environment(layout: str) -> None:
    # Files (credentials.toml, source = "directory") rotate without a restart and stay out of
    # the process environment.
    for container in containers(gateway_pod(layout)):
        for entry in container.get("env", []):
            assert entry["name"] not in TENCENT_KEY_ENV, (container["name"], entry["name"])
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] != "ci-gateway-credentials", entry["name"]
        assert not container.get("envFrom"), container["name"]


def test_shared_layout_passes_no_secret_through_the_environment() -> None:
    # The callback token and the Redis URL are files of a Secret mounted as a directory, named
    # by gateway.toml's *_file settings; no container takes anything from a secretKeyRef.
    pod = gateway_pod("shared")
    for container in containers(pod):
        assert not container.get("envFrom"), container["name"]
        for entry in container.get("env", []):
            assert "secretKeyRef" not in entry.get("valueFrom", {}), entry["name"]
    gateway = gateway_container(pod)
    (volume,) = [v for v in pod["volumes"] if volume_source(v) == ("Secret", SETTINGS_SECRET)]
    (mount,) = [m for m in gateway["volumeMounts"] if m["name"] == volume["name"]]
    assert "subPath" not in mount and mount["readOnly"] is True
    keys = set(one("shared", "Secret", SETTINGS_SECRET)["stringData"])
    config = tomllib.loads(one("shared", "ConfigMap")["data"]["gateway.toml"])
    named = {
        "callbacks.token_file": config["callbacks"]["token_file"],
        "shared.redis_url_file": config["shared"]["redis_url_file"],
    }
    for setting, path in named.items():
        directory, key = path.rsplit("/", 1)
        assert directory == mount["mountPath"] and key in keys, (setting, path)
    assert "token" not in config["callbacks"] and "redis_url" not in config["shared"]


def _toml_keys(document: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for name, value in document.items():
        if isinstance(value, dict):
            yield from _toml_keys(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_line_of_a_gateway_toml_is_overridden_by_the_pods_environment(
    layout: str, tmp_path: Path
) -> None:
    """Variables win over --config, and the image's ENV sets some settings: a ConfigMap line
    setting one of them again would be dead (an edit of it would change nothing), so it is not
    there. The pod's environment is what `load_layout` gives: the image's, then the
    container's."""
    environ = load_layout(layout, tmp_path).environ
    assert image_environment()  # the image does set some: the check has something to catch
    by_variable = {name: option.key for option in OPTIONS for name in (option.env, *option.aliases)}
    from_environment = {by_variable[name] for name in environ if name in by_variable}
    for doc in documents(layout):
        if doc["kind"] == "ConfigMap" and "gateway.toml" in doc.get("data", {}):
            keys = set(_toml_keys(tomllib.loads(doc["data"]["gateway.toml"])))
            assert not keys & from_environment, doc["metadata"]["name"]


def test_shared_access_file_is_mounted_and_referenced() -> None:
    pod = gateway_pod("shared")
    gateway = gateway_container(pod)
    args = gateway["args"]
    assert not [arg for arg in args if arg.startswith("--insecure")]
    (access_file,) = [arg.split("=", 1)[1] for arg in args if arg.startswith("--access-file=")]
    directory, name = access_file.rsplit("/", 1)
    (mount,) = [m for m in gateway["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    kind, source = volume_source(volume) or ("", "")
    assert kind == "ConfigMap" and name in one("shared", kind, source)["data"]
    # Server TLS from a kubernetes.io/tls Secret, mounted as a directory.
    tls_volumes = [
        v
        for v in pod["volumes"]
        if "secret" in v
        and one("shared", "Secret", v["secret"]["secretName"])["type"] == "kubernetes.io/tls"
    ]
    assert [v["name"] for v in tls_volumes] == ["tls"]
    assert [m for m in gateway["volumeMounts"] if m["name"] == "tls"]


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
    # gRPC, CI's callbacks, metrics; not the health port: only the kubelet probes it, from the
    # node, which NetworkPolicy does not restrict.
    assert ingress_ports == {50051, 8080, 9090}


def test_shared_ports_agree_across_settings_container_service_and_policy(
    tmp_path: Path,
) -> None:
    settings = load_layout("shared", tmp_path).settings
    gateway = gateway_container(gateway_pod("shared"))
    expected = {
        "grpc": port_of(settings.listen),
        "callback": port_of(settings.callbacks.listen),
        "metrics": port_of(settings.metrics_listen),
    }
    assert expected["callback"] == 8080
    # The health port is declared on the container (probes), but neither offered by the Service
    # nor opened by the policy: the kubelet reaches the pod directly from its node.
    health = {"grpc-health": port_of(settings.health_listen)}
    assert container_ports(gateway) == expected | health
    service_ports = {p["name"]: p for p in one("shared", "Service")["spec"]["ports"]}
    assert set(service_ports) == set(expected)
    for name, port in service_ports.items():
        assert port["targetPort"] == name and port["port"] == expected[name], name
    assert service_ports["callback"]["appProtocol"] == "http"
    policy = one("shared", "NetworkPolicy")["spec"]
    ingress_ports = {port["port"] for rule in policy["ingress"] for port in rule["ports"]}
    assert ingress_ports == set(expected.values())
    # Shared state needs Redis, which the policy must let the pods reach.
    assert "redis" in (settings.shared.fanout, settings.shared.submit_store)
    redis_port = urlsplit(settings.shared.redis_url).port or 6379
    egress_ports = {port["port"] for rule in policy["egress"] for port in rule.get("ports", [])}
    assert {53, 443, redis_port} <= egress_ports


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_configs_load_with_the_gateways_own_loaders(layout: str, tmp_path: Path) -> None:
    """What `ci-gateway serve` would do with the pod's args, environment and files: parse,
    validate, open the credentials (from the rendered Secret) and the client access, and
    decide whether the listen address is allowed, without --insecure."""
    rendered = load_layout(layout, tmp_path)
    settings = rendered.settings
    check_tracking_settings(settings)  # the cross-setting rules start_tracking applies
    credentials = open_credentials(settings.credentials_file, environ=rendered.environ)
    assert isinstance(credentials, DirectoryCredentialsProvider)
    try:
        keys = await credentials.get()
    finally:
        await credentials.close()
    secret = one(layout, "Secret", "ci-gateway-credentials")["stringData"]
    assert (keys.secret_id, keys.secret_key) == (secret["secret_id"], secret["secret_key"])
    access = ClientAccess.from_setting(settings.access_file)
    assert access.listen_refusal(settings.listen, insecure=False) is None
    if layout == "sidecar":
        assert settings.access_file == "" and is_loopback(settings.listen)
        assert not settings.callbacks.listen  # CI cannot reach a loopback pod anyway
        return
    assert access.config.shared and not is_loopback(settings.listen)
    tls = access.config.tls
    assert tls is not None, "bearer tokens must not travel in clear text"
    for path in (tls.cert_file, tls.key_file, tls.client_ca_file):
        assert path is None or path.is_file(), path  # named like the TLS Secret's keys
    assert settings.callbacks.public_url.startswith("https://")
    # Read from the mounted Secret's files (the *_file settings are then resolved and empty).
    settings_secret = one(layout, "Secret", SETTINGS_SECRET)["stringData"]
    assert settings.callbacks.token == CALLBACK_TOKEN
    assert settings.shared.redis_url == settings_secret["redis_url"]
    assert settings.callbacks.token_file == settings.shared.redis_url_file == ""
    secret_env = {name for o in OPTIONS if o.secret for name in (o.env, *o.aliases)}
    assert secret_env == {
        "CI_GATEWAY_CALLBACKS_TOKEN",
        "CI_GATEWAY_CALLBACK_TOKEN",
        "CI_GATEWAY_SHARED_REDIS_URL",
        "CI_GATEWAY_REDIS_URL",
        "CI_GATEWAY_UPSTREAM_PROXY_URL",
    }
    assert not secret_env & set(rendered.environ)


def test_shared_callback_token_placeholder_refuses_to_start(tmp_path: Path) -> None:
    # An unreplaced placeholder must stop the gateway, not run with a token everyone knows. The
    # error names the setting and the file, never what the file holds.
    with pytest.raises(ValueError, match=r"callbacks\.token") as caught:
        load_layout("shared", tmp_path, stand_ins={})
    message = str(caught.value)
    assert "callbacks.token_file" in message
    assert str(tmp_path / "settings" / "callback_token") in message
    placeholder = one("shared", "Secret", SETTINGS_SECRET)["stringData"]["callback_token"]
    assert placeholder not in message


def test_shared_access_file_mtls_variant_loads(tmp_path: Path) -> None:
    # The commented mTLS lines of access.toml, uncommented, are a valid configuration too.
    text = one("shared", "ConfigMap")["data"]["access.toml"]
    mtls = re.sub(r"(?m)^# ((?:client_ca_file|certificate_names) = )", r"\1", text)
    assert mtls != text
    path = tmp_path / "access.toml"
    path.write_text(mtls)
    config = load_access_file(path)
    assert config.shared and config.mtls
    assert config.by_certificate_name and config.by_token  # either one names the client


async def test_shared_example_probes_plaintext_health_while_the_api_requires_tls(
    tmp_path: Path,
) -> None:
    """The shared layout's gateway, started from its own files: what the kubelet's gRPC probe
    asks (plaintext, no credentials, on the health port) is answered; the API port is TLS."""
    rendered = load_layout("shared", tmp_path)
    settings = rendered.settings
    # The TLS Secret holds placeholders: put a real certificate where the access file looks.
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    access = load_access_file(Path(settings.access_file))
    assert access.tls is not None and not access.mtls  # bearer tokens over server TLS
    leaf.private_key_pem.write_to_path(access.tls.key_file)
    access.tls.cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    credentials = open_credentials(settings.credentials_file, environ=rendered.environ)
    # On loopback with OS-chosen ports, and without the parts that need other services
    # (Redis for [shared], a public URL for callbacks); the API port's access is the layout's.
    local = replace(
        settings,
        listen="127.0.0.1:0",
        health_listen="127.0.0.1:0",
        metrics_listen="",
        callbacks=Callbacks(),
        shared=Shared(),
    )
    gateway = await start_gateway(
        local, credentials, access=ClientAccess.from_setting(settings.access_file)
    )
    assert gateway.health_address is not None
    try:
        async with grpc.aio.insecure_channel(gateway.health_address) as probe:
            watch = health_pb2_grpc.HealthStub(probe).Watch(
                health_pb2.HealthCheckRequest(service=API_SERVICE)
            )
            while await next_status(watch) != SERVING:  # bounded: each read waits WAIT_S
                pass
            watch.cancel()
            assert await health_status(probe, OVERALL) == SERVING
        async with grpc.aio.insecure_channel(gateway.address) as plaintext_api:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health_pb2_grpc.HealthStub(plaintext_api).Check(
                    health_pb2.HealthCheckRequest(service=OVERALL), timeout=WAIT_S
                )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # no TLS, no answer
        trusted = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        async with grpc.aio.secure_channel(
            gateway.address, trusted, options=[("grpc.ssl_target_name_override", "localhost")]
        ) as tls_api:
            assert await health_status(tls_api, API_SERVICE) == SERVING
    finally:
        await gateway.stop(grace_s=0)
