"""No secret reaches a log line, an error a client sees, a repr or the command line.

Every secret in play is recognisable: the upstream SecretKeys before and after a rotation, the
temporary keys and tokens STS issues (through Tencent's SDK, whose own DEBUG logging quotes
them), the STS caller's keys, and the clients' bearer tokens (a wrong one too). The scenarios
cover every RPC, the error paths (invalid input, CI errors, CI refusing the keys, access
refusals), a Secret rotation and an STS refresh. Two runs: in process with every logger at
DEBUG (caplog, records rendered as the gateway writes them), and `ci-gateway serve` as a real
process at DEBUG, its stderr and command line read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.config.settings import Settings
from gateway.credentials import Credentials
from gateway.credentials.config_file import load_credentials_file
from gateway.credentials.refreshing import RefreshingCredentialsProvider
from tests.access.helpers import (
    CANARY,
    RecordingCredentials,
    SecretVolume,
    canary_credentials,
    log_text,
    sha256_hex,
)
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.fixtures.accounts import OTHER_BUCKET, ROLE, Serve, StsEndpoint
from tests.fixtures.serve_process import ServeProcess, StartServe
from tests.integration.helpers import rich_error

M, S = media_pb2, service_pb2
TOKEN = f"tok-{CANARY}-right"
WRONG_TOKEN = f"tok-{CANARY}-wrong"


@dataclass
class Scenario:
    """The files a gateway is configured with, and every secret among them."""

    root: Path
    sts: StsEndpoint
    seen: RecordingCredentials
    old: Credentials = field(default_factory=lambda: canary_credentials("old"))
    new: Credentials = field(default_factory=lambda: canary_credentials("new"))
    unknown: Credentials = field(default_factory=lambda: canary_credentials("unknown"))

    def __post_init__(self) -> None:
        self.seen.add(self.old)
        self.seen.add(self.new)
        self.volume = SecretVolume(self.root / "secret")
        self.volume.publish_credentials(self.old)
        self.credentials_file = self.root / "credentials.toml"
        self.credentials_file.write_text(
            f"""
default = "main"
[accounts.main]
source = "directory"
path = "{self.volume.root}"
poll_interval_s = 0.1
[accounts.partner]
source = "sts"
role_arn = "{ROLE}"
region = "{REGION}"
base = "main"
endpoint = "{self.sts.url_host}"
scheme = "http"
[buckets]
"{OTHER_BUCKET}" = "partner"
"""
        )
        self.access_file = self.root / "access.toml"
        self.access_file.write_text(
            f"""
mode = "shared"
[[clients]]
name = "media"
token_sha256 = ["{sha256_hex(TOKEN)}"]
buckets = ["{BUCKET}", "{OTHER_BUCKET}"]
operations = ["submit", "describe", "list", "cancel", "media_info"]
"""
        )

    def secrets(self) -> list[str]:
        values = [TOKEN, WRONG_TOKEN]
        for credentials in (self.old, self.new, self.unknown, *self.sts.issued):
            values.append(credentials.secret_key)
            if credentials.token:
                values.append(credentials.token)
        return values


@pytest.fixture
def scenario(tmp_path: Path, sts: StsEndpoint, seen: RecordingCredentials) -> Scenario:
    return Scenario(tmp_path, sts, seen)


async def run_scenarios(address: str, scenario: Scenario, rotated: asyncio.Event) -> list[str]:
    """Every RPC, success and failure; returns what clients saw of the failures."""
    seen_by_clients: list[str] = []
    right = (("authorization", f"Bearer {TOKEN}"),)

    async def expect_error(call: object) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call  # type: ignore[misc]
        error = rich_error(caught.value)
        trailing = caught.value.trailing_metadata()
        seen_by_clients.append(f"{error} {trailing!r} {caught.value.debug_error_string()}")

    async with grpc.aio.insecure_channel(address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        for bucket in (BUCKET, OTHER_BUCKET):
            job = (
                await stub.SubmitMediaJob(
                    S.SubmitMediaJobRequest(
                        bucket=bucket, request=M.Request(input=M.Input(object=SAMPLE_KEY))
                    ),
                    metadata=right,
                    timeout=10,
                )
            ).jobs_detail
            await stub.DescribeMediaJobs(
                S.DescribeMediaJobsRequest(bucket=bucket, job_ids=[job.job_id]),
                metadata=right,
                timeout=10,
            )
            await stub.ListMediaJobs(
                S.ListMediaJobsRequest(bucket=bucket), metadata=right, timeout=10
            )
            with contextlib.suppress(grpc.aio.AioRpcError):  # may have run already
                await stub.CancelMediaJob(
                    S.CancelMediaJobRequest(bucket=bucket, job_id=job.job_id),
                    metadata=right,
                    timeout=10,
                )
            await stub.GetMediaInfo(
                S.GetMediaInfoRequest(bucket=bucket, object=SAMPLE_KEY), metadata=right
            )
            await stub.GenerateMediaInfo(
                S.GenerateMediaInfoRequest(bucket=bucket, input=M.Input(object=SAMPLE_KEY)),
                metadata=right,
            )
        await expect_error(stub.SubmitMediaJob(S.SubmitMediaJobRequest(), metadata=right))
        await expect_error(
            stub.GetMediaInfo(S.GetMediaInfoRequest(object="input/none.mp4"), metadata=right)
        )
        await expect_error(
            stub.CancelMediaJob(S.CancelMediaJobRequest(job_id="jdoesnotexist"), metadata=right)
        )
        await expect_error(
            stub.ListMediaJobs(
                S.ListMediaJobsRequest(bucket="elsewhere-1250000009"), metadata=right
            )
        )
        await expect_error(
            stub.ListMediaJobs(
                S.ListMediaJobsRequest(), metadata=(("authorization", f"Bearer {WRONG_TOKEN}"),)
            )
        )
        await expect_error(stub.ListMediaJobs(S.ListMediaJobsRequest()))

        scenario.volume.publish_credentials(scenario.unknown)  # keys CI does not know
        await asyncio.wait_for(rotated.wait(), 10)
        rotated.clear()
        await expect_error(stub.ListMediaJobs(S.ListMediaJobsRequest(), metadata=right))
        scenario.volume.publish_credentials(scenario.new)
        await asyncio.wait_for(rotated.wait(), 10)
        await stub.ListMediaJobs(S.ListMediaJobsRequest(), metadata=right, timeout=10)
    return seen_by_clients


async def test_no_secret_in_logs_errors_or_reprs_in_process(
    scenario: Scenario, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = load_credentials_file(scenario.credentials_file)
    main = provider.for_bucket(BUCKET)
    partner = provider.for_bucket(OTHER_BUCKET)
    assert isinstance(partner, RefreshingCredentialsProvider)
    await provider.start()
    rotated = asyncio.Event()

    async def watch_rotations() -> None:
        generation = main.statuses()[0].generation
        while True:  # ends by cancellation; each wait is for one rotation
            await main.wait_for_generation(generation + 1)  # type: ignore[attr-defined]
            generation += 1
            rotated.set()

    watcher = asyncio.create_task(watch_rotations())
    try:
        access = ClientAccess.from_file(scenario.access_file)
        gateway = await serve(access, credentials=provider)
        errors = await run_scenarios(gateway.address, scenario, rotated)
        assert await partner.refresh()  # an STS refresh, through the SDK, at DEBUG
        reprs = [repr(x) for x in (provider, main, partner, access, access.config, gateway)]
        reprs += [repr(await main.get()), str(await partner.get()), repr(Settings())]
    finally:
        watcher.cancel()
        await provider.close()

    assert len(scenario.sts.issued) == 2 and len(errors) == 7
    logged = log_text(caplog)
    assert "CI GET" in logged and "temporary credentials refreshed" in logged  # DEBUG ran
    assert "mounted credentials loaded" in logged
    for secret in scenario.secrets():
        assert secret not in logged, "a secret is in a log line"
        assert secret not in "\n".join(errors), "a secret is in an error a client saw"
        assert secret not in "\n".join(reprs), "a secret is in a repr"


@pytest.fixture
async def process(
    scenario: Scenario, emulator2: RunningEmulator, serve_processes: StartServe
) -> ServeProcess:
    """`ci-gateway serve` with the scenario's files; no key in its environment."""
    return await serve_processes(
        "--listen", "127.0.0.1:0",
        "--endpoint-url", emulator2.url,
        "--default-bucket", BUCKET,
        "--default-region", REGION,
        "--credentials-file", str(scenario.credentials_file),
        "--access-file", str(scenario.access_file),
        "--log-level", "DEBUG",
    )  # fmt: skip


def command_line(pid: int) -> str:
    """What `ps` shows every user of the machine."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode()


async def test_no_secret_in_the_gateway_process_output_or_command_line(
    scenario: Scenario, process: ServeProcess
) -> None:
    listening = await process.line("gateway listening")
    address = str(listening["address"])
    cmdline = command_line(process.process.pid)

    rotated = asyncio.Event()
    generation = 1

    async def watch_rotations() -> None:
        nonlocal generation
        while True:  # ends by cancellation; each wait is for one logged rotation
            await process.line("mounted credentials loaded", 60, generation=generation + 1)
            generation += 1
            rotated.set()

    watcher = asyncio.create_task(watch_rotations())
    try:
        errors = await asyncio.wait_for(run_scenarios(address, scenario, rotated), 60)
    finally:
        watcher.cancel()
    assert await process.terminate() == 0
    output = process.log + "".join(process.stdout)

    assert len(errors) == 7 and scenario.sts.issued  # STS was called by the process
    assert '"level":"DEBUG"' in output and "temporary credentials refreshed" in output
    for secret in scenario.secrets():
        assert secret not in output, "a secret is in the process's output"
        assert secret not in cmdline, "a secret is on the command line"
        assert secret not in "\n".join(errors), "a secret is in an error a client saw"
