"""The gateway's bounds fit the memory limits of the pods it ships in.

A flood (many clients' watches, many calls held by a slow CI, connections left open) must end
in RESOURCE_EXHAUSTED refusals at a bound, not in an OOM kill that loses every call in flight
on the replica. So the worst case (what the gateway holds at rest, plus each bound times what
one unit of it costs, every bound full at once) must fit under the container's memory limit,
for the defaults and for each layout in k8s/, whose settings are loaded as `ci-gateway serve`
would load them (`load_layout`: the ConfigMap's gateway.toml, the image's and the container's
environment, its arguments). Raise a bound there without the limit, or lower the limit without
the bounds, and this fails. README: "Memory at the bounds", whose figures are checked here too.

The per-unit costs are this module's constants, each with the measurement it comes from: RSS
of a real gateway process (`ci-gateway serve`, or `bench.serve`'s gateway, on uvloop) against
the emulator, the load opened at once and held, over the RSS just before (warmed up by one call
of the same kind). Reproduce them with `bench` (item 4 for held calls, item 5 for watches) or
a script like them; bench/README.md, "Memory", has the runs.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gateway.access.interceptor import ClientAccess
from gateway.api.ops_reads import read_places
from gateway.api.server import max_concurrent_rpcs
from gateway.config.settings import Settings
from tests.deploy.test_k8s import LAYOUTS, gateway_container, gateway_pod, load_layout, one

ROOT = Path(__file__).resolve().parents[2]

# --- What one unit of each bound costs (RSS; measured 2026-12-07 on this tree, Python 3.11) ---

# `ci-gateway serve` with a TLS access file, metrics, health and callback ports open and one
# client connection: 82.0-82.1 MiB (80.1 in sidecar mode; bench item 4's gateway, 74-80).
REST_MIB = 82.0
# An idle API connection after one health Check on it: 500 plaintext, +21.8 KiB each; 500 and
# 1,000 over TLS, +57.6 and +57.4 KiB each.
CONNECTION_KIB = 22.0
CONNECTION_TLS_KIB = 58.0
# An admitted job or resource call, charged as the costliest state measured: held by a slow CI
# (the emulator delaying every request past the call's deadline, `max_in_flight_upstream`
# raised): 1,990 submits started at once, ~1,790 reached the gateway, RSS 76.2 -> 150.7 MiB
# once they had all ended DEADLINE_EXCEEDED (the peak, 140.6, came while they were held):
# 42.7 KiB each; bench item 4 (1,000 held): 43 KiB. A call waiting for credentials, Redis or
# a backoff holds less (no exchange with CI), and is charged this too.
CALL_KIB = 43.0
# WatchMediaJob on distinct jobs kept Submitted, 50 streams a connection (the connections'
# own cost included): 34.2 KiB each for 1,000, 34.5 for 2,720, 35.2 for 1,817 (bench item 5:
# +34 MiB for 1,000). On one job, 29.3 KiB: each tracked job adds ~5 KiB.
JOB_WATCH_KIB = 35.0
# WatchWorkflowExecution on distinct runs (one-node workflows) held Running, 50 a connection:
# 42.1 KiB each for 1,000, 42.4 for 1,787.
RUN_WATCH_KIB = 43.0
# A call whose request never comes (headers only, held open): 19.4 KiB each for 2,000 on two
# connections; 21 KiB in the earlier measurement the README quotes.
OPEN_CALL_KIB = 21.0
# A health or reflection call held open (a health Watch): taken as a call whose request never
# comes, which it is until its request is read (not measured apart).
OPS_CALL_KIB = 21.0
# The worst case must stay within this share of the limit. The estimate leaves out what no
# setting bounds per unit (answers buffered for a client that stops reading, what a call not
# being read may hold: 8 KiB, `gateway.api.server.REQUEST_WINDOW_OPTIONS`, connections to the
# health and metrics ports), and the measurements above vary by a few % between runs and builds.
LIMIT_SHARE = 0.9

# The limit the defaults are sized for, in the costliest layout (TLS, the embedded store).
DEFAULTS_SIZED_FOR_MIB = 256


@dataclass(frozen=True)
class WorstCase:
    """What a gateway with these settings may hold at once, part by part (MiB)."""

    parts: dict[str, float]

    @property
    def total_mib(self) -> float:
        return sum(self.parts.values())

    def fits(self, limit_mib: float) -> bool:
        return self.total_mib <= LIMIT_SHARE * limit_mib

    def explain(self, limit_mib: float) -> str:
        listed = ", ".join(f"{name} {mib:.1f}" for name, mib in self.parts.items())
        return (
            f"worst case {self.total_mib:.1f} MiB ({listed}) against {LIMIT_SHARE:.0%} of a "
            f"{limit_mib:g} MiB limit: lower a bound or raise the limit, together "
            '(README: "Memory at the bounds")'
        )


def _calls_kib(settings: Settings) -> float:
    """API calls in progress: at most `max_concurrent_rpcs` in all, each kind at most its own
    gate's bound, the costliest kinds first; any place left is a call whose request never
    comes (none when the cap is derived: it is then the gates' sum)."""
    admitted = 2 * settings.retry.max_in_flight_rpcs  # job calls; resource calls
    watchers = settings.tracking.max_watchers  # job watches and run watches, each
    kinds = sorted([(CALL_KIB, admitted), (RUN_WATCH_KIB, watchers), (JOB_WATCH_KIB, watchers)])
    places = max_concurrent_rpcs(settings)
    total = 0.0
    for cost, bound in reversed(kinds):
        taken = min(bound, places)
        total += taken * cost
        places -= taken
    return total + places * OPEN_CALL_KIB


def _requests_mib(settings: Settings) -> float:
    """The requests of the calls in progress: what `server.max_request_memory_mb` lets them
    hold, as `gateway.api.request_memory` counts it (a request still coming for
    `server.max_request_bytes`, what grpc buffers for it: 20 calls each sending all but the last
    byte of 8 MiB held 162 MiB; one that has come for `REQUEST_HELD_FACTOR` times its size, the
    most a held one was measured to cost). With the defaults (RSS of `serve`, the load opened at
    once): 1,000 calls each sending all but the last byte of 128 KiB, 128 taken, +31 MiB with
    the calls' own cost; 200 submits of 120 KiB held by a slow CI, 3 taken, +10 MiB (200 of
    195 KiB before the bound: +268 MiB); 200 of 2,000 empty unknown nodes, 34 taken, +21 MiB.
    Counted whole on top of the calls, though the calls' costs above include their own small
    requests (a submit of ~200 bytes counts for ~8 KiB)."""
    return float(settings.server.max_request_memory_mb)


def _ops_reads_mib(settings: Settings) -> float:
    """The requests of health and reflection calls being read on the API port, where grpc may
    buffer `server.max_request_bytes` for each: the reads at once (`gateway.api.ops_reads`,
    1 MiB of them, at least one) times that. Measured (RSS of `serve`): every place of these
    calls on both ports opened with the largest request each port takes, never finished,
    +9.5-11.7 MiB with the calls' own cost, those refused included; +47.5 MiB before the reads
    were bounded (tests/api/test_request_floods.py). On the health port grpc refuses a request
    over 4 KiB from its length prefix, so a read there holds no more than a call's window,
    which is left out (LIMIT_SHARE)."""
    request = settings.server.max_request_bytes
    return read_places(request) * request / 2**20


def worst_case(settings: Settings, *, tls: bool) -> WorstCase:
    """Every bound full at once: `tls` when the API port serves TLS (a connection costs more)."""
    limits = settings.server
    per_connection = CONNECTION_TLS_KIB if tls else CONNECTION_KIB
    # `max_connections = 0` is no bound: as good as infinite here.
    connections = limits.max_connections * per_connection if limits.max_connections else 1e12
    store = settings.shared.submit_store_max_mb if settings.shared.submit_store == "memory" else 0
    return WorstCase(
        {
            "at rest": REST_MIB,
            "submit store": store,
            "connections": connections / 1024,
            "calls and watches": _calls_kib(settings) / 1024,
            "requests": _requests_mib(settings),
            "health and reflection": 2 * limits.max_ops_calls * OPS_CALL_KIB / 1024,  # 2 ports
            "health and reflection requests": _ops_reads_mib(settings),
        }
    )


_QUANTITY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|k|M|G)?$")
_SCALE = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def mib(quantity: str) -> float:
    """A Kubernetes memory quantity ("256Mi", "1G", "268435456") in MiB."""
    match = _QUANTITY.fullmatch(str(quantity))
    assert match, f"unexpected memory quantity {quantity!r}"
    return float(match[1]) * _SCALE[match[2]] / 2**20


def memory_limit_mib(layout: str) -> float:
    return mib(gateway_container(gateway_pod(layout))["resources"]["limits"]["memory"])


def layout_settings(layout: str, tmp_path: Path) -> tuple[Settings, bool]:
    """The layout's settings as `ci-gateway serve` loads them, and whether its API port serves
    TLS (a connection costs more)."""
    settings = load_layout(layout, tmp_path).settings
    return settings, ClientAccess.from_setting(settings.access_file).config.tls is not None


def layout_worst_case(layout: str, tmp_path: Path) -> WorstCase:
    settings, tls = layout_settings(layout, tmp_path)
    return worst_case(settings, tls=tls)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layouts_bounds_fit_its_pods_memory_limit(layout: str, tmp_path: Path) -> None:
    limit = memory_limit_mib(layout)
    worst = layout_worst_case(layout, tmp_path)
    assert worst.fits(limit), worst.explain(limit)


def test_the_defaults_fit_the_limit_they_are_sized_for_in_the_costliest_layout() -> None:
    defaults = Settings()
    assert defaults.shared.submit_store == "memory"
    worst = worst_case(defaults, tls=True)
    assert worst.fits(DEFAULTS_SIZED_FOR_MIB), worst.explain(DEFAULTS_SIZED_FOR_MIB)


def test_the_shared_configmap_states_the_bounds_it_is_sized_by(tmp_path: Path) -> None:
    """Each bound is written in k8s/shared's gateway.toml (beside a comment naming the limit),
    so that an operator raising one sees the limit to raise with it, and what this module
    checks is what the ConfigMap says."""
    config = tomllib.loads(one("shared", "ConfigMap")["data"]["gateway.toml"])
    settings = load_layout("shared", tmp_path).settings
    written = {
        "server.max_connections": config["server"]["max_connections"],
        "server.max_ops_calls": config["server"]["max_ops_calls"],
        "server.max_request_memory_mb": config["server"]["max_request_memory_mb"],
        "retry.max_in_flight_rpcs": config["retry"]["max_in_flight_rpcs"],
        "tracking.max_watchers": config["tracking"]["max_watchers"],
    }
    for key, value in written.items():
        section, name = key.split(".")
        assert getattr(getattr(settings, section), name) == value, key
    assert "max_concurrent_rpcs" not in config["server"]  # derived from the bounds above


# What a regression would look like: a bound raised back to what it was before the bounds were
# sized (each one alone an OOM kill under a flood), or an unbounded one.
RAISED = {
    "server.max_connections": 2000,
    "server.max_ops_calls": 1000,
    "retry.max_in_flight_rpcs": 2000,
    "tracking.max_watchers": 10_000,
    "server.max_concurrent_rpcs": 24_000,
    "server.max_request_memory_mb": 64,
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("key", [*RAISED, "server.max_connections=0", "limit"])
def test_raising_a_bound_or_lowering_the_limit_alone_is_caught(
    layout: str, key: str, tmp_path: Path
) -> None:
    settings, tls = layout_settings(layout, tmp_path)
    limit = memory_limit_mib(layout)
    assert worst_case(settings, tls=tls).fits(limit)
    if key == "limit":
        limit = 192.0  # k8s/sidecar's limit before the bounds were sized
    else:
        name, _, value = key.partition("=")
        section, field = name.split(".")
        raised = int(value) if value else RAISED[key]
        group = replace(getattr(settings, section), **{field: raised})
        settings = replace(settings, **{section: group})
    assert not worst_case(settings, tls=tls).fits(limit)


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("### Memory at the bounds\n", 1)[1].split("\n## ", 1)[0].split("\n### ")[0]


def test_the_readme_quotes_these_costs_and_worst_cases(tmp_path: Path) -> None:
    section = readme_section()
    for kib in (CONNECTION_KIB, CONNECTION_TLS_KIB, CALL_KIB, JOB_WATCH_KIB, RUN_WATCH_KIB):
        assert f"{kib:g} KiB" in section, kib
    assert f"{OPEN_CALL_KIB:g} KiB" in section and f"{REST_MIB:g} MiB" in section
    cases = {"defaults": worst_case(Settings(), tls=True)}
    for layout in LAYOUTS:
        (tmp_path / layout).mkdir()
        cases[layout] = layout_worst_case(layout, tmp_path / layout)
    for name, worst in cases.items():
        assert f"**{round(worst.total_mib)} MiB**" in section, (name, worst.total_mib)
