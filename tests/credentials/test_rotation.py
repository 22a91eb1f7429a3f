"""Rotating the mounted Secret while calls stream through the gateway fails none of them.

30 s of continuous calls from several concurrent clients, as the issue asks: the Secret volume
is rotated the way kubelet does it halfway through, the gateway's watcher (a 50 ms poll) swaps
the keys in memory, and the emulator, which accepts both key pairs, sees the new SecretId from
then on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.credentials.mounted import DirectoryCredentialsProvider
from tests.access.helpers import RecordingCredentials, SecretVolume, canary_credentials
from tests.conftest import SAMPLE_KEY
from tests.fixtures.accounts import Serve

M, S = media_pb2, service_pb2
WORKERS = 6
HALF_S = 15.0


async def test_rotation_during_a_stream_of_calls_fails_none(
    tmp_path: Path, serve: Serve, seen: RecordingCredentials
) -> None:
    old, new = canary_credentials("old"), canary_credentials("new")
    seen.add(old)
    seen.add(new)
    volume = SecretVolume(tmp_path / "secret")
    volume.publish_credentials(old)
    provider = DirectoryCredentialsProvider(volume.root, poll_interval_s=0.05)
    await provider.start()
    gateway = await serve(credentials=provider)
    loop = asyncio.get_running_loop()
    started = loop.time()
    halfway, end = started + HALF_S, started + 2 * HALF_S
    reached_halfway = asyncio.Event()
    failures: list[grpc.aio.AioRpcError] = []
    done = 0

    async def worker(stub: service_pb2_grpc.MediaJobServiceAsyncStub, index: int) -> None:
        nonlocal done
        job_id = ""
        round_ = 0
        while loop.time() < end:  # bounded by the clock: 30 s of calls
            round_ += 1
            try:
                if not job_id or round_ % 8 == 0:
                    submitted = await stub.SubmitMediaJob(
                        S.SubmitMediaJobRequest(
                            request=M.Request(input=M.Input(object=SAMPLE_KEY))
                        ),
                        timeout=10,
                    )
                    job_id = submitted.jobs_detail.job_id
                elif round_ % 3 == 0:
                    await stub.ListMediaJobs(S.ListMediaJobsRequest(size=1), timeout=10)
                elif round_ % 5 == 0 and index == 0:
                    await stub.GetMediaInfo(S.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=10)
                else:
                    await stub.DescribeMediaJobs(
                        S.DescribeMediaJobsRequest(job_ids=[job_id]), timeout=10
                    )
            except grpc.aio.AioRpcError as error:
                failures.append(error)
            done += 1
            if loop.time() >= halfway:
                reached_halfway.set()

    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            workers = [asyncio.create_task(worker(stub, i)) for i in range(WORKERS)]
            await asyncio.wait_for(reached_halfway.wait(), HALF_S + 10)
            calls_before = done
            volume.publish_credentials(new)
            await asyncio.wait_for(provider.wait_for_generation(2), 5)
            swapped_at = len(seen.ids)
            await asyncio.wait_for(asyncio.gather(*workers), HALF_S + 20)
    finally:
        await provider.close()

    assert failures == []
    assert calls_before > 50 and done - calls_before > 50, (calls_before, done)
    before, after = seen.ids[:swapped_at], seen.ids[swapped_at:]
    assert set(before) == {old.secret_id}
    assert new.secret_id in after
    # Only calls already signed when the keys were swapped (at most one per worker) may still
    # arrive with the old SecretId; every later one carries the new.
    assert old.secret_id not in after[WORKERS:]
