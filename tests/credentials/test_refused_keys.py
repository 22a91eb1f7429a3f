"""A call CI refuses for keys the gateway has replaced meanwhile is resent once with the new ones.

A rotation as an operator does it in CAM: issue a new key, publish it (a mounted Secret, or STS
renewing), then disable the old key. A call signed with the old key just before the gateway took
up the new one reaches CI after the old key was disabled and is refused (`SecretidNotExist` on
CI's host, `InvalidAccessKeyId` on COS's). The gateway holds new keys by then, or finds them when
the refusal makes it look at the Secret again, so it resends that attempt once; the caller sees
the call succeed, and a submit still makes one job. Keys that did not change leave the refusal
final, sent once. The emulator refuses disabled keys as CI would (`KeyTable.disable`), and
records every SecretId a request presented.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest
from aiohttp import web

from ci_emulator.config import Credential
from ci_emulator.errors import CiError
from ci_emulator.hosts import Target as EmulatorTarget
from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.credentials.mounted import DirectoryCredentialsProvider
from gateway.credentials.refreshing import RefreshingCredentialsProvider
from gateway.credentials.sts import AssumeRoleSpec, StsFetcher
from gateway.errors import Reason
from tests.access.helpers import (
    FakeSleep,
    RecordingCredentials,
    SecretVolume,
    assert_no_canary,
    canary_credentials,
    log_text,
)
from tests.conftest import REGION, SAMPLE_KEY
from tests.fixtures.accounts import ROLE, Serve, StsEndpoint
from tests.integration.helpers import rich_error

M, S = media_pb2, service_pb2
TIMEOUT_S = 10


def issue(emulator: RunningEmulator, keys: Credentials) -> None:
    """CAM issues `keys`: CI accepts them from now on."""
    emulator.state.keys.issue(keys.secret_id, Credential(keys.secret_key, keys.token))


def disable(emulator: RunningEmulator, keys: Credentials) -> None:
    """CAM disables `keys`: CI refuses every request still signed with them."""
    assert emulator.state.keys.disable(keys.secret_id)


async def mounted_keys(
    tmp_path: Path, emulator: RunningEmulator, generations: int
) -> tuple[list[Credentials], SecretVolume, DirectoryCredentialsProvider]:
    """Keys `gen0`, `gen1`, ...: the first issued by CAM and published in a mounted Secret, and
    a started provider reading it, whose watcher never polls (`FakeSleep`): only a refusal makes
    it look again."""
    keys = [canary_credentials(f"gen{g}") for g in range(generations)]
    volume = SecretVolume(tmp_path / "secret")
    volume.publish_credentials(keys[0])
    issue(emulator, keys[0])
    provider = DirectoryCredentialsProvider(volume.root, sleep=FakeSleep())
    await provider.start()
    return keys, volume, provider


def submit_request() -> service_pb2.SubmitMediaJobRequest:
    return S.SubmitMediaJobRequest(request=M.Request(input=M.Input(object=SAMPLE_KEY)))


async def test_a_refusal_after_the_mounted_secret_changed_rereads_it_and_resends_once(
    tmp_path: Path,
    serve: Serve,
    emulator2: RunningEmulator,
    seen: RecordingCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The Secret changed on disk but its watcher has not polled yet (its sleep never ends
    here): the refusal itself makes the gateway read it, on CI's host (a submit, which makes
    exactly one job) and on COS's (a probe)."""
    caplog.set_level(logging.DEBUG)
    keys, volume, provider = await mounted_keys(tmp_path, emulator2, 3)
    gateway = await serve(credentials=provider)
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            await stub.ListMediaJobs(S.ListMediaJobsRequest(size=1), timeout=TIMEOUT_S)
            # The listing, and the look-up of the queue it names (`upstream.default_queue`).
            assert seen.ids == [keys[0].secret_id] * 2

            # Rotation on CI's host: the submit is signed with gen0, refused, resent with gen1.
            issue(emulator2, keys[1])
            volume.publish_credentials(keys[1])
            disable(emulator2, keys[0])
            jobs_before = emulator2.state.jobs_created
            submitted = await stub.SubmitMediaJob(submit_request(), timeout=TIMEOUT_S)
            assert submitted.jobs_detail.job_id
            assert emulator2.state.jobs_created == jobs_before + 1
            assert emulator2.state.errors["SecretidNotExist"] == 1
            assert seen.ids[2:] == [keys[0].secret_id, keys[1].secret_id]
            assert provider.generation == 2

            # Again on COS's host, whose refusal is InvalidAccessKeyId.
            issue(emulator2, keys[2])
            volume.publish_credentials(keys[2])
            disable(emulator2, keys[1])
            probed = await stub.GetMediaInfo(
                S.GetMediaInfoRequest(object=SAMPLE_KEY), timeout=TIMEOUT_S
            )
            assert probed.media_info.format.duration
            assert emulator2.state.errors["InvalidAccessKeyId"] == 1
            assert seen.ids[4:] == [keys[1].secret_id, keys[2].secret_id]

            # Keys that did not change: the refusal is final, and sent once.
            disable(emulator2, keys[2])
            sent = len(seen.ids)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SubmitMediaJob(submit_request(), timeout=TIMEOUT_S)
            refused = rich_error(caught.value)
            assert refused.code == grpc.StatusCode.INTERNAL
            assert refused.error_info is not None
            assert refused.error_info.reason == Reason.UPSTREAM_AUTH_FAILED.value
            assert refused.error_info.metadata["ci_code"] == "SecretidNotExist"
            assert seen.ids[sent:] == [keys[2].secret_id]
            assert provider.generation == 3
            texts = [refused.message, str(refused.error_info), log_text(caplog)]
    finally:
        await provider.close()
    assert "the gateway holds new ones" in log_text(caplog)
    assert_no_canary(texts, [k.secret_key for k in keys])


async def test_keys_rotated_while_an_attempt_was_in_flight_are_used_for_its_resend(
    serve: Serve,
    emulator2: RunningEmulator,
    seen: RecordingCredentials,
    sts: StsEndpoint,
    upstream_keys: Credentials,
) -> None:
    """STS renews the temporary keys while a request signed with the old ones is on its way,
    and the old ones are disabled before CI checks it: the refused attempt is resent with the
    keys the provider holds by then, without asking STS again."""
    spec = AssumeRoleSpec(role_arn=ROLE, region=REGION, endpoint=sts.url_host, scheme="http")
    provider = RefreshingCredentialsProvider(
        StsFetcher(spec, StaticCredentialsProvider(upstream_keys, "base")),
        name=f"sts:{ROLE}",
        sleep=FakeSleep(),
    )
    await provider.start()
    gateway = await serve(credentials=provider)
    rotated: list[str] = []

    async def rotate_before_the_check(
        request: web.Request, target: EmulatorTarget
    ) -> web.StreamResponse | None:
        if not rotated:  # the first request only: it carries the old keys
            rotated.append(request.path)
            assert await provider.refresh()  # STS issues new keys (registered with CI) ...
            disable(emulator2, sts.issued[0])  # ... and the old ones are disabled
        return None

    emulator2.state.request_hooks.append(rotate_before_the_check)
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            submitted = await stub.SubmitMediaJob(submit_request(), timeout=TIMEOUT_S)
    finally:
        await provider.close()
    assert submitted.jobs_detail.job_id and rotated == ["/jobs"]
    assert emulator2.state.jobs_created == 1
    assert [c.secret_id for c in sts.issued] == [
        seen.ids[0],
        seen.ids[1],
    ]  # refused with the first, resent with the second
    assert len(sts.requests) == 2  # the refusal did not make the gateway call STS itself


LISTING = S.ListMediaJobsRequest(tag="Transcode", size=1)


async def test_a_refused_queue_lookup_counts_as_a_refusal_of_the_keys(
    tmp_path: Path,
    serve: Serve,
    emulator2: RunningEmulator,
    seen: RecordingCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The look-up of the queue a first listing names (`GET /queue`, `upstream.default_queue`)
    is a call signed with the same keys: CI refusing them there is evidence about the keys as
    on any call, so it makes the gateway read the Secret again, and the look-up is resent once
    with the new keys, before the listing itself is signed."""
    caplog.set_level(logging.DEBUG)
    keys, volume, provider = await mounted_keys(tmp_path, emulator2, 2)
    gateway = await serve(credentials=provider)
    try:
        issue(emulator2, keys[1])
        volume.publish_credentials(keys[1])
        disable(emulator2, keys[0])
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            await stub.ListMediaJobs(LISTING, timeout=TIMEOUT_S)
        # The look-up refused (gen0), resent (gen1), then the listing (gen1): one refusal.
        assert seen.ids == [keys[0].secret_id, keys[1].secret_id, keys[1].secret_id]
        assert emulator2.state.errors["SecretidNotExist"] == 1
        assert emulator2.state.operations["DescribeMediaQueues"] == 1
        assert provider.generation == 2
    finally:
        await provider.close()
    assert "the gateway holds new ones" in log_text(caplog)
    assert_no_canary([log_text(caplog)], [k.secret_key for k in keys])


async def test_a_queue_lookup_refused_for_keys_still_current_leaves_them_and_waits_a_minute(
    tmp_path: Path,
    serve: Serve,
    emulator2: RunningEmulator,
    seen: RecordingCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keys CAM allows to list jobs but not to describe queues (AccessDenied on `GET /queue`
    only): the refusal makes the gateway look at its Secret, which has not changed, so the
    keys stay; the listing goes without `queueId`, and the next listings within
    `default_queue.FAILED_TTL_S` do not ask again."""
    caplog.set_level(logging.DEBUG)
    (keys,), _, provider = await mounted_keys(tmp_path, emulator2, 1)
    listings: list[str] = []
    lookups: list[str] = []

    async def queues_denied(request: web.Request, target: EmulatorTarget) -> None:
        if request.method == "GET" and target.path == "/queue":
            lookups.append(request.headers["Authorization"])
            raise CiError("AccessDenied", "no permission for ci:DescribeMediaQueues")
        if request.method == "GET" and target.path == "/jobs":
            listings.append(request.rel_url.query.get("queueId", ""))

    emulator2.state.request_hooks.append(queues_denied)
    gateway = await serve(credentials=provider)
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            for _ in range(3):
                await stub.ListMediaJobs(LISTING, timeout=TIMEOUT_S)
        assert listings == ["", "", ""]
        assert len(lookups) == 1
        assert f"q-ak={keys.secret_id}" in lookups[0]
        assert seen.ids == [keys.secret_id] * 3  # the listings (the hook refused the look-up)
        assert provider.generation == 1
    finally:
        emulator2.state.request_hooks.remove(queues_denied)
        await provider.close()
    assert "the gateway holds new ones" not in log_text(caplog)
