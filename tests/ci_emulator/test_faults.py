"""Fault injection: each fault as a real client sees it, seeded determinism, and the counters
that let a resilience test prove "exactly N jobs, no duplicates"."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import time
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from ci_emulator.cli import build_config, build_parser, main
from ci_emulator.config import EmulatorConfig
from ci_emulator.faults import FaultDecision, FaultKind, FaultPlan, FaultSpec
from ci_emulator.server import SHUTDOWN_TIMEOUT_S, RunningEmulator, start_emulator
from tests.ci_emulator.conftest import BUCKET, VIDEO_KEY, SignedClient, submit_body

CREATE = "CreateMediaJobs"


async def admin(
    session: aiohttp.ClientSession, emu: RunningEmulator, method: str, path: str, **kw: Any
) -> tuple[int, Any]:
    async with session.request(method, f"{emu.url}/_emulator{path}", **kw) as response:
        return response.status, await response.json()


# ---- each fault, as the client sees it --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "status", "code"),
    [
        ("error_500", 500, "InternalError"),
        ("error_503", 503, "ServiceUnavailable"),
        ("slowdown_429", 429, "SlowDown"),
    ],
)
async def test_error_faults_answer_ci_error_xml_and_process_nothing(
    emu: RunningEmulator, client: SignedClient, field: str, status: int, code: str
) -> None:
    emu.state.faults.set(CREATE, FaultSpec(**{field: 1.0}))
    reply = await client.submit()
    assert (reply.status, reply.code) == (status, code)
    assert reply.headers["Content-Type"] == "application/xml"
    assert reply.xml().findtext("RequestId")
    assert emu.state.jobs_created == 0
    assert emu.state.faults.injected == {f"{CREATE}:{field}": 1}
    # Other operations are untouched by a CreateMediaJobs spec.
    (await client.list_jobs()).ok()


async def test_reset_before_is_a_tcp_reset_and_creates_nothing(
    emu: RunningEmulator, client: SignedClient
) -> None:
    emu.state.faults.set(CREATE, FaultSpec(reset_before=1.0))
    with pytest.raises(aiohttp.ClientOSError) as failure:
        await client.submit()
    assert failure.value.errno == errno.ECONNRESET
    assert emu.state.jobs_created == 0
    assert emu.state.faults.injected[f"{CREATE}:reset_before"] == 1
    emu.state.faults.clear()
    await client.submit_ok()  # the emulator itself is fine


async def test_commit_then_drop_creates_the_job_but_never_answers(
    emu: RunningEmulator, client: SignedClient
) -> None:
    emu.state.faults.set(CREATE, FaultSpec(commit_then_drop=1.0))
    emu.state.pause_scheduling()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.submit(UserData="lost-answer")
    assert emu.state.faults.injected[f"{CREATE}:commit_then_drop"] == 1
    # The job exists: the client can find it by its input and describe it.
    listed = (await client.list_jobs({"inputObject": VIDEO_KEY})).ok().xml()
    job_ids = [node.text for node in listed.findall("JobsDetail/JobId")]
    assert len(job_ids) == 1 and job_ids[0]
    described = (await client.describe(job_ids[0])).ok().xml()
    assert described.findtext("JobsDetail/Operation/UserData") == "lost-answer"
    assert described.findtext("JobsDetail/State") == "Submitted"
    assert emu.state.jobs_by_input[(BUCKET, VIDEO_KEY, "lost-answer")] == 1


async def test_commit_then_drop_of_a_refused_request_also_goes_unanswered(
    emu: RunningEmulator, client: SignedClient
) -> None:
    emu.state.faults.set(CREATE, FaultSpec(commit_then_drop=1.0))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.send("POST", "/jobs", body=b"<Request><Tag>Nope</Tag></Request>")
    assert emu.state.jobs_created == 0
    assert emu.state.errors["InvalidArgument"] == 1


async def test_latency_delays_by_at_least_latency_s(
    emu: RunningEmulator, client: SignedClient
) -> None:
    emu.state.faults.set("DescribeMediaJobs", FaultSpec(latency_s=0.3))
    started = time.monotonic()
    (await client.list_jobs()).ok()
    assert time.monotonic() - started >= 0.3
    assert emu.state.faults.injected == {"DescribeMediaJobs:latency": 1}


async def test_latency_p_zero_never_delays(emu: RunningEmulator, client: SignedClient) -> None:
    emu.state.faults.set("DescribeMediaJobs", FaultSpec(latency_s=30.0, latency_p=0.0))
    async with asyncio.timeout(10):  # 30 s would trip the bound
        for _ in range(5):
            (await client.list_jobs()).ok()
    assert emu.state.faults.injected == {}


async def test_faults_never_hide_a_signature_refusal(
    emu: RunningEmulator, client: SignedClient
) -> None:
    emu.state.faults.set("*", FaultSpec(error_500=1.0))
    unsigned = await client.send("POST", "/jobs", body=submit_body(), sign=False)
    assert (unsigned.status, unsigned.code) == (401, "MissingAuthorization")
    wrong = await client.send("GET", "/jobs", params={"tag": "MediaInfo"}, signed_path="/other")
    assert (wrong.status, wrong.code) == (403, "SignatureDoesNotMatch")
    unknown_path = await client.send("GET", "/nothing")
    assert (unknown_path.status, unknown_path.code) == (404, "InvalidUrl")
    assert emu.state.faults.injected == {}
    assert (await client.submit()).status == 500


async def test_an_operation_spec_overrides_the_wildcard(
    emu: RunningEmulator, client: SignedClient
) -> None:
    emu.state.faults.set("*", FaultSpec(error_503=1.0))
    emu.state.faults.set("DescribeMediaJobs", FaultSpec())
    (await client.list_jobs()).ok()
    assert (await client.submit()).status == 503
    assert (await client.describe("jnothere")).status == 503
    assert emu.state.faults.injected == {f"{CREATE}:error_503": 1, "DescribeMediaJob:error_503": 1}


# ---- determinism ----------------------------------------------------------------------------


def _outcomes(plan: FaultPlan, operation: str, count: int) -> list[FaultDecision]:
    return [plan.draw(operation) for _ in range(count)]


def test_the_same_seed_draws_the_same_faults() -> None:
    spec = FaultSpec(error_500=0.3, reset_before=0.2, latency_s=0.01, latency_p=0.5)
    first, second, other = FaultPlan(seed=7), FaultPlan(seed=7), FaultPlan(seed=8)
    for plan in (first, second, other):
        plan.set(CREATE, spec)
    a, b, c = (_outcomes(plan, CREATE, 200) for plan in (first, second, other))
    assert a == b
    assert a != c
    kinds = {decision.kind for decision in a}
    assert kinds == {None, FaultKind.ERROR_500, FaultKind.RESET_BEFORE}
    # Roughly the asked-for rates (200 draws: generous bounds, deterministic for seed 7 anyway).
    assert 30 <= sum(d.kind is FaultKind.ERROR_500 for d in a) <= 90
    assert first.injected == second.injected


def test_other_operations_do_not_shift_an_operations_sequence() -> None:
    quiet, busy = FaultPlan(seed=3), FaultPlan(seed=3)
    for plan in (quiet, busy):
        plan.set("*", FaultSpec(error_503=0.5))
    expected = _outcomes(quiet, CREATE, 50)
    interleaved = []
    for _ in range(50):
        busy.draw("DescribeMediaJob")
        interleaved.append(busy.draw(CREATE))
    assert interleaved == expected


def test_reseed_restarts_the_sequence() -> None:
    plan = FaultPlan(seed=1)
    plan.set(CREATE, FaultSpec(error_500=0.5))
    first = _outcomes(plan, CREATE, 30)
    plan.reseed(1)
    assert _outcomes(plan, CREATE, 30) == first


async def test_close_releases_a_request_held_by_latency_and_drops_it_unanswered(
    emulator_config: EmulatorConfig,
) -> None:
    """A held request must not keep `close()` waiting for aiohttp's whole shutdown grace."""
    config = replace(emulator_config, faults={CREATE: FaultSpec(latency_s=3600)})
    async with await start_emulator(config) as emu, aiohttp.ClientSession() as session:
        # A POST: aiohttp would resend an idempotent request on a dropped connection.
        held = asyncio.create_task(SignedClient(session, emu.url).submit())
        await asyncio.wait_for(emu.state.faults.wait_until_holding(1), 5)
        # Without the release, close() would wait SHUTDOWN_TIMEOUT_S and then cancel the handler.
        async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
            await emu.close()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await asyncio.wait_for(held, 5)
    # The sleep was ended by the shutdown, not by cancelling the handler after the grace period.
    assert (emu.state.faults.holding, emu.state.faults.cut_short) == (0, 1)
    assert emu.state.faults.injected == {f"{CREATE}:latency": 1}
    assert emu.state.jobs_created == 0  # dropped before it was processed


async def test_two_emulators_with_one_seed_fail_the_same_requests(
    emulator_config: EmulatorConfig,
) -> None:
    config = replace(
        emulator_config, faults={CREATE: FaultSpec(error_500=0.4, slowdown_429=0.2)}, fault_seed=11
    )
    runs: list[list[int]] = []
    for _ in range(2):
        async with await start_emulator(config) as emu, aiohttp.ClientSession() as session:
            emu.state.pause_scheduling()
            client = SignedClient(session, emu.url)
            runs.append([(await client.submit()).status for _ in range(20)])
    assert runs[0] == runs[1]
    assert {200, 500, 429} == set(runs[0])


# ---- spec validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"error_500": 1.5},
        {"error_503": -0.1},
        {"latency_p": 2},
        {"latency_s": -1},
        {"latency_s": float("inf")},
        {"listing_lag_s": -0.5},
        {"listing_lag_s": float("nan")},
        {"listing_lag_s": float("inf")},
        {"error_500": 0.6, "commit_then_drop": 0.5},
    ],
)
def test_impossible_specs_are_refused(values: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FaultSpec(**values)


def test_specs_from_mappings_refuse_typos_and_non_numbers() -> None:
    assert FaultSpec.from_mapping({"error_500": "0.25"}) == FaultSpec(error_500=0.25)
    with pytest.raises(ValueError, match="error_5000"):
        FaultSpec.from_mapping({"error_5000": 0.1})
    with pytest.raises(ValueError):
        FaultSpec.from_mapping({"error_500": True})
    with pytest.raises(ValueError):
        FaultSpec.from_mapping({"error_500": "lots"})


def test_a_listing_lag_is_refused_on_an_operation_that_lists_nothing() -> None:
    with pytest.raises(ValueError, match="DescribeMediaJobs"):
        FaultPlan().set(CREATE, FaultSpec(listing_lag_s=1.0))
    plan = FaultPlan()
    plan.set("*", FaultSpec(listing_lag_s=1.0))
    assert plan.listed_until(10.0) == 9.0
    plan.set("DescribeMediaJobs", FaultSpec(listing_lag_s=0.25))
    assert plan.listed_until(10.0) == 9.75


def test_unknown_operations_are_refused(emulator_config: EmulatorConfig) -> None:
    with pytest.raises(ValueError, match="CreateMediaJob"):
        FaultPlan().set("CreateMediaJob", FaultSpec())
    with pytest.raises(ValueError):
        replace(emulator_config, faults={"Nope": FaultSpec()})


# ---- configuration surfaces -----------------------------------------------------------------


async def test_admin_endpoint_replaces_reports_and_clears_the_plan(
    emu: RunningEmulator, client: SignedClient
) -> None:
    async with aiohttp.ClientSession() as session:
        status, plan = await admin(
            session,
            emu,
            "PUT",
            "/faults",
            json={"seed": 5, "faults": {CREATE: {"error_503": 1}, "*": {"latency_s": 0.01}}},
        )
        assert status == 200
        assert plan["seed"] == 5
        assert plan["faults"][CREATE]["error_503"] == 1.0
        assert (await client.submit()).status == 503
        status, plan = await admin(session, emu, "GET", "/faults")
        assert plan["injected"] == {f"{CREATE}:error_503": 1}
        assert emu.state.faults.seed == 5

        for bad in (b"{", b"[]", b'{"faults": {"Nope": {}}}', b'{"faults": {"*": {"x": 1}}}'):
            status, answer = await admin(session, emu, "PUT", "/faults", data=bad)
            assert status == 400 and answer["error"]
        assert set(emu.state.faults.specs) == {CREATE, "*"}  # a bad PUT changes nothing

        status, plan = await admin(session, emu, "DELETE", "/faults")
        assert plan["faults"] == {}
        (await client.submit()).ok()


def test_cli_fault_flags(tmp_path: Any) -> None:
    args = build_parser().parse_args(
        [
            "--bucket",
            f"b-1:ap-beijing:{tmp_path}",
            "--credential",
            "AKID:key",
            "--fault",
            "CreateMediaJobs:error_500=0.2,commit_then_drop=0.05",
            "--fault",
            "*:latency_s=0.5,latency_p=0.1",
            "--fault",
            "DescribeMediaJobs:listing_lag_s=0.75",
            "--fault-seed",
            "7",
        ]
    )
    config = build_config(args, environ={})
    assert config.faults == {
        CREATE: FaultSpec(error_500=0.2, commit_then_drop=0.05),
        "*": FaultSpec(latency_s=0.5, latency_p=0.1),
        "DescribeMediaJobs": FaultSpec(listing_lag_s=0.75),
    }
    assert config.fault_seed == 7


@pytest.mark.parametrize(
    "fault",
    ["CreateMediaJobs", "Nope:error_500=1", "CreateMediaJobs:error_500", "CreateMediaJobs:x=1"],
)
def test_cli_refuses_bad_fault_flags(tmp_path: Any, fault: str) -> None:
    argv = ["--bucket", f"b-1:ap-beijing:{tmp_path}", "--credential", "A:k", "--fault", fault]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


# ---- counters: exactly N jobs, no duplicates -------------------------------------------------


async def test_counters_expose_jobs_per_input_and_per_body(
    emu: RunningEmulator, client: SignedClient
) -> None:
    emu.state.pause_scheduling()
    emu.state.faults.set(CREATE, FaultSpec(commit_then_drop=1.0))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.submit(UserData="retry-me")
    emu.state.faults.clear()
    await client.submit_ok(UserData="retry-me")  # a naive retry of the same body
    await client.submit_ok(UserData="other")
    async with aiohttp.ClientSession() as session:
        status, counters = await admin(session, emu, "GET", "/counters")
    assert status == 200
    assert counters["jobs_created"] == 3
    assert counters["duplicate_jobs"] == 1
    assert sorted(counters["jobs_by_body"].values()) == [1, 2]
    assert {
        (entry["object"], entry["user_data"], entry["jobs"]) for entry in counters["jobs_by_input"]
    } == {(VIDEO_KEY, "retry-me", 2), (VIDEO_KEY, "other", 1)}
    assert counters["faults_injected"] == {f"{CREATE}:commit_then_drop": 1}
    digest = hashlib.sha256(submit_body(UserData="retry-me")).hexdigest()
    assert emu.state.jobs_by_body[digest] == 2
