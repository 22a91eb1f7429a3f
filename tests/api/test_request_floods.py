"""Floods of the largest requests against a real `ci-gateway serve` process at its default
settings: refused at the requests' bound (`server.max_request_memory_mb`), with the process's
peak RSS within the memory the defaults are sized for (90% of 256 MiB,
tests/deploy/test_memory_bounds.py), and the largest realistic requests still served.

Before the bound, requests could be 8 MiB and grpc buffers each whole before the gateway sees
it, for as long as its client takes: each flood here took the process past that budget
(measured on the tree before: 1,800 calls each sending all but the last byte of 128 KiB, peak
RSS 349 MiB; 300 submits of 120 KiB held by a slow CI, 337 MiB; with the bound, 127 and 100).
The peak is the process's own high-water mark (VmHWM), read once the flood is fully in.

The first flood comes from clients that speak HTTP/2 themselves (`tests.fixtures.raw_h2`), since
a gRPC client library always finishes its requests; the second from gRPC channels, with the
emulator (in this process) holding every submit until the test lets it go. The third floods the
health and reflection calls anyone may open, on the API and health ports, with requests that
never finish.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from gateway._proto import job_kinds_pb2 as kinds
from gateway._proto import (
    media_pb2,
    service_pb2,
    service_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
    xml_pb2,
)
from gateway.api.malformed import OPS_MAX_REQUEST_BYTES
from gateway.api.ops_calls import check_places
from gateway.api.ops_reads import READ_MEMORY, read_places
from gateway.api.request_memory import REQUEST_HELD_FACTOR
from gateway.api.server import REQUEST_WINDOW_OPTIONS
from gateway.api.validation import MAX_USER_DATA
from gateway.config.settings import ServerLimits
from gateway.credentials import Credentials
from tests.api.test_connection_bounds import rich_status
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.deploy.test_memory_bounds import (
    DEFAULTS_SIZED_FOR_MIB,
    LIMIT_SHARE,
    OPEN_CALL_KIB,
    OPS_CALL_KIB,
    REST_MIB,
)
from tests.fixtures.raw_h2 import RawClient, frame
from tests.fixtures.serve_process import ServeProcess, StartServe
from tests.integration.helpers import rich_error

WAIT_S = 30.0
MIB = 2**20
DEFAULTS = ServerLimits()
MAX_REQUEST = DEFAULTS.max_request_bytes
LIMIT = DEFAULTS.max_request_memory_mb * MIB
BUDGET = LIMIT_SHARE * DEFAULTS_SIZED_FOR_MIB * MIB
SUBMIT = "/ci.media.v1.MediaJobService/SubmitMediaJob"
WATCH = "/grpc.health.v1.Health/Watch"
CHECK = "/grpc.health.v1.Health/Check"
REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
KIB = 1024
WINDOW = dict(REQUEST_WINDOW_OPTIONS)["grpc.http2.lookahead_bytes"]
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


async def serve(
    start: StartServe,
    emulator: RunningEmulator,
    credentials: Credentials,
    tmp_path: Path,
    *extra: str,
) -> tuple[ServeProcess, str]:
    """`serve` at its defaults, but for the sidecar access that allows template and workflow
    writes (the largest requests are theirs), with `extra` arguments."""
    access = tmp_path / "access.toml"
    access.write_text('mode = "sidecar"\nsidecar_operations = ["*"]\n')
    process = await start(
        "--listen", "127.0.0.1:0",
        "--default-bucket", BUCKET,
        "--default-region", REGION,
        "--endpoint-url", emulator.url,
        "--access-file", str(access),
        *extra,
        credentials=credentials,
    )  # fmt: skip
    listening = await process.line("gateway listening")
    return process, str(listening["address"])


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _never_finished(address: str, calls: int) -> tuple[RawClient, dict[int, dict[str, str]]]:
    """One connection, `calls` submits on it, each sending all but the last byte of a request
    of the largest size, as fast as the windows let it: the client (still connected, its calls
    still open) and the answers of the calls refused meanwhile."""
    client = RawClient(address)
    almost = frame(b"\x1a" + b"\x00" * (MAX_REQUEST - 1))[:-1]  # the message says 128 KiB
    streams = [client.open(SUBMIT) for _ in range(calls)]
    client.push(dict.fromkeys(streams, almost), timeout=WAIT_S)
    return client, {stream: client.status(stream) for stream in streams if client.answered(stream)}


async def test_a_flood_of_the_largest_requests_never_finished_stays_within_the_budget(
    emulator: RunningEmulator,
    credentials: Credentials,
    serve_processes: StartServe,
    tmp_path: Path,
) -> None:
    process, address = await serve(serve_processes, emulator, credentials, tmp_path)
    connections, each = 4, 450  # 1,800 calls: within the arrival cap (1,824) and the backlog
    # What grpc buffered for them, unbounded, beside what the process holds at rest.
    assert REST_MIB * MIB + connections * each * MAX_REQUEST > BUDGET
    flood = await asyncio.gather(
        *(asyncio.to_thread(_never_finished, address, each) for _ in range(connections))
    )
    try:
        peak = peak_rss(process.process.pid)
        refused = [answer for _, answers in flood for answer in answers.values()]
        # Those still coming count for the largest request each: 128 fit in 16 MiB.
        assert connections * each - len(refused) == LIMIT // MAX_REQUEST
        for answer in refused:
            status = rich_status(answer)
            assert (status.code, status.reason) == (RESOURCE_EXHAUSTED, "OVERLOADED"), answer
            assert status.metadata["limit"] == str(DEFAULTS.max_request_memory_mb)
            assert status.retry_delay_ns > 0
        assert peak < BUDGET, f"peak RSS {peak / MIB:.0f} MiB"
    finally:
        for client, _ in flood:
            client.close()


def largest_workflow(queue_id: str) -> workflows_pb2.CreateMediaWorkflowRequest:
    """A chain of 1,200 MediaInfo nodes, the longest tests/resources/test_workflows.py sends
    (73 KiB)."""
    names = [f"MediaInfo_{index}" for index in range(1, 1201)]
    topology = workflows_pb2.WorkflowTopology()
    for source, target in zip(["Start", *names], [*names, "End"], strict=True):
        topology.dependencies[source] = target
    start = topology.nodes["Start"]
    start.type = "Start"
    start.input.queue_id, start.input.object_prefix = queue_id, "input/"
    for name in names:
        topology.nodes[name].type = "MediaInfo"
    return workflows_pb2.CreateMediaWorkflowRequest(
        media_workflow=workflows_pb2.MediaWorkflow(name="long", topology=topology)
    )


def largest_template() -> templates_pb2.CreateMediaTemplateRequest:
    """A Transcode template with as many unknown nodes as a request may carry (2,000), each
    with 40 characters of text (102 KiB)."""
    nodes = [xml_pb2.XmlNode(name=f"Zq{index}", text="v" * 40) for index in range(2000)]
    transcode = kinds.Transcode(container=kinds.Container(format="mp4"), extra_nodes=nodes)
    return templates_pb2.CreateMediaTemplateRequest(
        template=templates_pb2.MediaTemplate(name="many-nodes", trans_tpl=transcode)
    )


def largest_submit() -> service_pb2.SubmitMediaJobsRequest:
    """Six jobs (the most one call submits), each with the longest user data."""
    operations = [
        media_pb2.Operation(tag="MediaInfo", user_data=f"{index}" * MAX_USER_DATA)
        for index in range(6)
    ]
    body = media_pb2.MultiOperationRequest(
        input=media_pb2.Input(object=SAMPLE_KEY), operation=operations
    )
    return service_pb2.SubmitMediaJobsRequest(request=body)


def held_submit() -> service_pb2.SubmitMediaJobRequest:
    """A MediaInfo submit with 120,000 characters of text in an unknown node."""
    request = media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object=SAMPLE_KEY))
    request.extra_nodes.append(xml_pb2.XmlNode(name="Note", text="x" * 120_000))
    return service_pb2.SubmitMediaJobRequest(request=request)


async def test_the_largest_requests_pass_and_a_flood_held_by_ci_stays_within_the_budget(
    emulator: RunningEmulator,
    credentials: Credentials,
    serve_processes: StartServe,
    tmp_path: Path,
) -> None:
    process, address = await serve(serve_processes, emulator, credentials, tmp_path)
    async with grpc.aio.insecure_channel(address) as channel:
        # The largest realistic requests of each kind are served whole.
        workflows = workflows_pb2_grpc.MediaWorkflowServiceStub(channel)
        templates = templates_pb2_grpc.MediaTemplateServiceStub(channel)
        jobs = service_pb2_grpc.MediaJobServiceStub(channel)
        workflow = largest_workflow(emulator.state.default_queue[BUCKET])
        template, submits = largest_template(), largest_submit()
        assert max(r.ByteSize() for r in (workflow, template, submits)) > MAX_REQUEST * 3 // 4
        created = await workflows.CreateMediaWorkflow(workflow, timeout=WAIT_S)
        assert len(created.media_workflow.topology.nodes) == 1201
        made = await templates.CreateMediaTemplate(template, timeout=WAIT_S)
        assert len(made.template.trans_tpl.extra_nodes) == 2000
        submitted = await jobs.SubmitMediaJobs(submits, timeout=WAIT_S)
        assert len(submitted.jobs_detail) == 6

        # Then CI stops answering submits, and 300 of 120 KiB come at once.
        release, progress = asyncio.Event(), asyncio.Event()
        reached: list[str] = []

        async def hold(request: web.Request, target: Target) -> web.StreamResponse | None:
            if request.method == "POST" and target.path == "/jobs":
                reached.append(target.path)
                progress.set()
                await release.wait()
            return None

        emulator.state.request_hooks.append(hold)
        flood = held_submit()
        # Held, each took ~7 times its size before the bound (measured: these 300, +253 MiB).
        assert REST_MIB * MIB + 300 * flood.ByteSize() * 7 > BUDGET
        calls = [
            asyncio.ensure_future(jobs.SubmitMediaJob(flood, timeout=WAIT_S)) for _ in range(300)
        ]
        for call in calls:
            call.add_done_callback(lambda _: progress.set())
        try:
            async with asyncio.timeout(WAIT_S):  # until each call is refused or at CI
                while True:
                    progress.clear()
                    if sum(call.done() for call in calls) + len(reached) == len(calls):
                        break
                    await progress.wait()
            peak = peak_rss(process.process.pid)
            # Each counts for 40 times its size once it has come: 3 fit in 16 MiB (fewer when
            # others still coming hold the rest as they come).
            assert 1 <= len(reached) <= LIMIT // (REQUEST_HELD_FACTOR * flood.ByteSize()) == 3
            held = [call for call in calls if not call.done()]
            for call in set(calls) - set(held):
                error = call.exception()
                assert isinstance(error, grpc.aio.AioRpcError), error
                refused = rich_error(error)
                assert refused.error_info is not None
                assert refused.error_info.reason == "OVERLOADED", refused.message
            assert peak < BUDGET, f"peak RSS {peak / MIB:.0f} MiB"
        finally:
            release.set()
        for call in held:  # served once CI answers
            assert (await call).jobs_detail.job_id


def _stalled(address: str, paths: list[str], size: int) -> tuple[RawClient, int]:
    """One connection, a call of each of `paths`, each sending all but the last byte of a
    request of `size` bytes as far as the windows let it: the client (still connected) and how
    many of its calls are still open (read, not refused or ended for a newer read)."""
    client = RawClient(address)
    client.ignore_stream_limit()
    almost = frame(b"\x0a" + b"\x00" * (size - 1))[:-1]  # never complete
    streams = [client.open(path) for path in paths]
    client.push(dict.fromkeys(streams, almost), timeout=WAIT_S)
    return client, sum(not client.answered(stream) for stream in streams)


async def test_health_and_reflection_calls_that_never_finish_stay_within_their_rows(
    emulator: RunningEmulator,
    credentials: Credentials,
    serve_processes: StartServe,
    tmp_path: Path,
) -> None:
    """Every place of health and reflection calls on both ports (`server.max_ops_calls`: 180
    streams, 20 Checks) opened with the largest request each port takes, all but its last byte
    sent. Before their reads were bounded (`gateway.api.ops_reads`), grpc buffered each whole
    and none was ever ended: +47 MiB (measured on the tree before). Now the API port reads a
    few at once, each read beyond ending the oldest, and the health port's limit is below a
    call's window."""
    process, address = await serve(
        serve_processes, emulator, credentials, tmp_path, "--health-listen", "127.0.0.1:0"
    )
    health_address = str((await process.line("gateway listening"))["health_address"])
    calls = DEFAULTS.max_ops_calls
    checks = check_places(calls)
    paths = [WATCH] * ((calls - checks) // 2) + [REFLECTION] * ((calls - checks + 1) // 2)
    paths += [CHECK] * checks
    # The rows of these calls (README, "Memory at the bounds": the calls on both ports, the
    # API port's reads; the health port's windows, left out there), and what the calls
    # ended cost while they were answered: less than grpc buffered for them unbounded.
    rows = 2 * calls * OPS_CALL_KIB * KIB + READ_MEMORY + calls * WINDOW
    refused = (len(paths) - read_places(MAX_REQUEST)) * OPEN_CALL_KIB * KIB
    assert rows + refused < calls * (MAX_REQUEST + OPS_MAX_REQUEST_BYTES)
    rested = peak_rss(process.process.pid)
    (api, held), (port, read) = await asyncio.gather(
        asyncio.to_thread(_stalled, address, paths, MAX_REQUEST),
        asyncio.to_thread(_stalled, health_address, [WATCH] * (calls - checks) + [CHECK] * checks,
                          OPS_MAX_REQUEST_BYTES),
    )  # fmt: skip
    try:
        # The probe is answered meanwhile.
        async with grpc.aio.insecure_channel(health_address) as channel:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=WAIT_S
            )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        grown = peak_rss(process.process.pid) - rested
        # Within the rows, with the share of the limit the sizing keeps for how far the rows'
        # measurements vary (`LIMIT_SHARE`): the growth moves with the machine's load (~+10
        # MiB alone, +14.9 once beside a second whole suite, against 14.7 of rows), where
        # unbounded reads grew it by 47.
        assert grown < (rows + refused) / LIMIT_SHARE, f"+{grown / MIB:.1f} MiB"
        # On the API port only the reads within `READ_MEMORY` hold a request; on the health
        # port none is refused, each holding its window at most.
        assert held == read_places(MAX_REQUEST) and read == calls
    finally:
        api.close()
        port.close()
