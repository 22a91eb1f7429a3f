"""Rotating the mounted Secret while calls stream through the gateway fails none of them.

Several concurrent clients keep calling a real gateway in front of the emulator while the
Secret volume is rotated the way kubelet does it, several times over. Rotations are driven by
events, not by the wall clock: the next key is published once a given number of calls have
completed on the current one, and the directory provider's watcher runs one poll round when the
test releases its (injected) sleep. So the test proves in about a second what a long soak would:
every call succeeds across every rotation, each new key is picked up, and after a swap no new
call is signed with a retired key. The emulator accepts every key, so a call signed with an old
one would still succeed: only its record of the SecretId each request presented tells.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.credentials import Credentials
from gateway.credentials.mounted import DirectoryCredentialsProvider
from tests.access.helpers import FakeSleep, RecordingCredentials, SecretVolume, canary_credentials
from tests.conftest import SAMPLE_KEY
from tests.fixtures.accounts import Serve

M, S = media_pb2, service_pb2
WORKERS = 6
ROTATIONS = 4
CALLS_PER_KEY = 60
"""Calls completed on each key before the next is published (and after the last one)."""
MAX_ROUNDS = 4 * (ROTATIONS + 1) * CALLS_PER_KEY // WORKERS
"""Per worker, a bound far above what the rotations need: the loop ends by count, never by time."""
STEP_TIMEOUT_S = 20.0


class CallCount:
    """Completed calls, and a way to wait until there are at least n of them."""

    def __init__(self) -> None:
        self.value = 0
        self._changed = asyncio.Condition()

    async def add(self) -> None:
        async with self._changed:
            self.value += 1
            self._changed.notify_all()

    async def reach(self, n: int) -> None:
        async with asyncio.timeout(STEP_TIMEOUT_S), self._changed:
            await self._changed.wait_for(lambda: self.value >= n)


async def test_rotations_during_a_stream_of_calls_fail_none_and_retire_every_old_key(
    tmp_path: Path, serve: Serve, seen: RecordingCredentials
) -> None:
    keys: list[Credentials] = [canary_credentials(f"gen{g}") for g in range(ROTATIONS + 1)]
    for key in keys:
        seen.add(key)
    volume = SecretVolume(tmp_path / "secret")
    volume.publish_credentials(keys[0])
    watcher_sleep = FakeSleep()  # one poll round per release: the rotation's only trigger
    provider = DirectoryCredentialsProvider(volume.root, poll_interval_s=5.0, sleep=watcher_sleep)
    await provider.start()
    gateway = await serve(credentials=provider)
    failures: list[grpc.aio.AioRpcError] = []
    calls = CallCount()
    finished = asyncio.Event()
    swapped_at: list[int] = []  # per rotation: how many requests the emulator had seen by then

    async def worker(stub: service_pb2_grpc.MediaJobServiceAsyncStub, index: int) -> int:
        job_id = ""
        for round_ in range(1, MAX_ROUNDS + 1):  # bounded by count
            if finished.is_set():
                return round_ - 1
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
            await calls.add()
        return MAX_ROUNDS

    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            workers = [asyncio.create_task(worker(stub, i)) for i in range(WORKERS)]
            try:
                for generation, key in enumerate(keys[1:], start=2):
                    await calls.reach(calls.value + CALLS_PER_KEY)
                    await asyncio.wait_for(watcher_sleep.next_delay(), STEP_TIMEOUT_S)
                    volume.publish_credentials(key)  # while the workers keep calling
                    watcher_sleep.release()
                    await asyncio.wait_for(provider.wait_for_generation(generation), 5)
                    swapped_at.append(len(seen.ids))
                await calls.reach(calls.value + CALLS_PER_KEY)
            finally:
                finished.set()
                rounds = await asyncio.wait_for(asyncio.gather(*workers), STEP_TIMEOUT_S)
    finally:
        await provider.close()

    assert failures == []
    assert all(r < MAX_ROUNDS for r in rounds), "the workers ran out of rounds before the end"
    ids = seen.ids
    bounds = [0, *swapped_at, len(ids)]
    for generation, key in enumerate(keys):
        start, end = bounds[generation], bounds[generation + 1]
        # Only calls already signed when the keys were swapped (at most one per worker) may
        # still arrive with an older SecretId; every later one carries the current key.
        settled = start + WORKERS if generation else start
        assert set(ids[settled:end]) == {key.secret_id}, f"a retired key in generation {generation}"
        # Calls kept streaming on each key: the driver waited for CALLS_PER_KEY of them, of
        # which at most one per worker was signed (and recorded) before the swap.
        assert end - settled >= CALLS_PER_KEY - 2 * WORKERS, (generation, end - settled)
