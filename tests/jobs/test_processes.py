"""Two real `ci-gateway serve` processes sharing a real Redis (issue 6): a watcher on A is woken
by CI's callback delivered to B, and a submit repeated on B with A's request_id returns A's job;
and the same for workflow runs: a WatchWorkflowExecution on A ends as soon as CI's WorkflowFinish
reaches B.

Both processes read a TOML `--config` (written here) and their keys from the environment; the
emulator runs in the test's loop. Both hand CI the same CallBack URL, B's receiver, as replicas
behind one load balancer would (and must: the exactly-once fingerprint includes it). The poll
interval is a minute, far beyond this test: after its first look, A can only learn the job's
(or the run's) end from B, through Redis.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from ci_emulator.resource_api import DESCRIBE_EXECUTION
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2_grpc, workflows_pb2
from gateway.credentials import Credentials
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.fixtures.serve_process import (
    ServeProcess,
    StartServe,
    wait_until_serving,
    write_config,
)
from tests.integration.test_jobs import assert_matches_sample
from tests.jobs.helpers import EOF, TOKEN, assert_ended, next_detail, submit, watch
from tests.resources.conftest import stubs_on
from tests.resources.test_workflows import create, queue_of, workflow

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M = media_pb2
W = workflows_pb2
DESCRIBE_RUN = DESCRIBE_EXECUTION.name
RECEIVER_PREFIX = "callback receiver listening on "


async def serve(
    start_serve: StartServe,
    tmp_path: Path,
    name: str,
    *,
    emulator: RunningEmulator,
    credentials: Credentials,
    redis_url: str,
    public_url: str,
    access_file: Path | None = None,
) -> tuple[ServeProcess, str, str]:
    """Start one replica; its gRPC address and its callback receiver's URL, once it listens."""
    access = {} if access_file is None else {"access_file": str(access_file)}
    config = write_config(
        tmp_path / f"{name}.toml",
        {
            "listen": "127.0.0.1:0",  # the bound port is in the "gateway listening" line
            "default_bucket": BUCKET,
            "default_region": REGION,
            "endpoint_url": emulator.url,
            "log_format": "json",
            "shutdown_grace_s": 5.0,
            **access,
        },
        tracking={"poll_initial_s": 60.0, "poll_max_s": 60.0},
        callbacks={"listen": "127.0.0.1:0", "public_url": public_url, "token": TOKEN},
        shared={"redis_url": redis_url, "fanout": "redis", "submit_store": "redis"},
    )
    process = await start_serve("--config", str(config), credentials=credentials)
    listening = await process.line("gateway listening")
    receiver = await process.line(lambda line: str(line.get("msg")).startswith(RECEIVER_PREFIX))
    return process, str(listening["address"]), str(receiver["msg"])[len(RECEIVER_PREFIX) :]


Replica = tuple[ServeProcess, str, str]


async def two_replicas(
    start_serve: StartServe,
    tmp_path: Path,
    *,
    emulator: RunningEmulator,
    credentials: Credentials,
    redis_url: str,
    access_file: Path | None = None,
) -> tuple[Replica, Replica]:
    """Replicas A and B, both serving. B's receiver takes a free port; its URL is then the
    public one for both, so CI calls B back whichever replica a job or run came through."""

    async def replica(name: str, public_url: str) -> Replica:
        return await serve(
            start_serve,
            tmp_path,
            name,
            emulator=emulator,
            credentials=credentials,
            redis_url=redis_url,
            public_url=public_url,
            access_file=access_file,
        )

    b = await replica("b", "auto")
    a = await replica("a", b[2])
    await wait_until_serving(a[1])
    await wait_until_serving(b[1])
    return a, b


async def test_two_processes_share_callbacks_and_request_ids_through_redis(
    emulator: RunningEmulator,
    credentials: Credentials,
    redis_url: str,
    redis_client: object,  # flushes the database first
    tmp_path: Path,
    serve_processes: StartServe,
) -> None:
    state = emulator.state
    (a, a_address, a_receiver), (b, b_address, b_receiver) = await two_replicas(
        serve_processes, tmp_path, emulator=emulator, credentials=credentials, redis_url=redis_url
    )
    assert a_receiver != b_receiver

    async with (
        grpc.aio.insecure_channel(a_address) as a_channel,
        grpc.aio.insecure_channel(b_address) as b_channel,
    ):
        on_a: Stub = service_pb2_grpc.MediaJobServiceStub(a_channel)
        on_b: Stub = service_pb2_grpc.MediaJobServiceStub(b_channel)

        # (b) the same request_id on B returns A's job; CI holds exactly one.
        state.pause_scheduling()
        request_id = "processes-0001"
        user = M.Operation(user_data="two-processes")
        first = await submit(on_a, request_id=request_id, operation=user)
        again = await submit(on_b, request_id=request_id, operation=user)
        assert again.job_id == first.job_id
        assert state.jobs_created == 1 and list(state.jobs) == [first.job_id]
        callback = state.jobs[first.job_id].spec.callback or ""
        assert callback.startswith(b_receiver + "/"), callback

        # (a) a watcher on A, woken by the callback CI delivers to B.
        call = watch(on_a, first.job_id)
        assert (await next_detail(call)).state == M.JOB_STATE_SUBMITTED
        describes = state.operations["DescribeMediaJob"]
        state.resume_scheduling()
        final = await next_detail(call)
        assert final.state == M.JOB_STATE_SUCCESS, (final.code, final.message)
        assert final.operation.user_data == "two-processes"
        assert_matches_sample(final.operation.media_info)
        await assert_ended(call)
        (delivery,) = await state.wait_for_callbacks(1)
        assert (delivery.url, delivery.status) == (callback, 200)
        # One describe since A's first look: B checking the callback with CI. A never
        # polled again; it learnt the end from B.
        assert state.operations["DescribeMediaJob"] == describes + 1

    assert await a.terminate() == 0, a.log
    assert await b.terminate() == 0, b.log


# Far below the minute between A's looks at the run: if the watch ends within it, A did not poll.
RUN_WATCH_DEADLINE_S = 20.0
MAX_RUN_UPDATES = 10  # Running, maybe a task's change, Success


async def test_a_workflow_finish_delivered_to_b_ends_the_run_watch_on_a(
    emulator: RunningEmulator,
    credentials: Credentials,
    redis_url: str,
    redis_client: object,  # flushes the database first
    tmp_path: Path,
    serve_processes: StartServe,
) -> None:
    state = emulator.state
    access = tmp_path / "access.toml"  # a platform team's sidecar: workflows are writable
    access.write_text('mode = "sidecar"\nsidecar_operations = ["workflows"]\n')

    (a, a_address, _), (b, _, b_receiver) = await two_replicas(
        serve_processes,
        tmp_path,
        emulator=emulator,
        credentials=credentials,
        redis_url=redis_url,
        access_file=access,
    )

    state.hold_running()  # the watch starts before the run can end
    async with grpc.aio.insecure_channel(a_address) as a_channel:
        on_a = stubs_on(a_channel)
        # Created through A, the workflow's Start node tells CI to call B's receiver.
        created = await create(on_a, workflow(queue_of(emulator)))
        stored = state.resources.workflows.workflows[created.workflow_id]
        assert f"{b_receiver}/ci-callback/" in str(stored.fields())
        triggered = await on_a.workflows.TriggerMediaWorkflow(
            W.TriggerMediaWorkflowRequest(workflow_id=created.workflow_id, object=SAMPLE_KEY)
        )
        run_id = triggered.instance_id
        call = on_a.workflows.WatchWorkflowExecution(
            W.WatchWorkflowExecutionRequest(run_id=run_id), timeout=RUN_WATCH_DEADLINE_S
        )
        first = await call.read()
        assert isinstance(first, W.WatchWorkflowExecutionResponse)
        assert first.workflow_execution.state == M.JOB_STATE_RUNNING  # A's one look
        describes = state.operations[DESCRIBE_RUN]

        state.release_running()
        updates = [first.workflow_execution]
        for _ in range(MAX_RUN_UPDATES):  # bounded by count, and by the call's deadline
            reply = await call.read()
            if reply is EOF:
                break
            assert isinstance(reply, W.WatchWorkflowExecutionResponse)
            updates.append(reply.workflow_execution)
        assert await call.code() is grpc.StatusCode.OK, await call.details()
        assert (updates[-1].run_id, updates[-1].state) == (run_id, M.JOB_STATE_SUCCESS)

    (delivery,) = await state.wait_for_callbacks(1)
    assert delivery.url.startswith(b_receiver + "/") and delivery.status == 200
    # One describe since A's first look: B checking the WorkflowFinish with CI. A never
    # looked again; it learnt the end from B.
    assert state.operations[DESCRIBE_RUN] == describes + 1
    assert await a.terminate() == 0, a.log
    assert await b.terminate() == 0, b.log
