"""`JobsDetail.outputs` from CI-shaped answers: the codec's decode vectors (a Snapshot with
sprites, a SuperResolution with Md5Info) and MediaResult samples shaped after the job catalogue
(§1.2, §1.3, appendix A.1/A.2) for the kinds whose `Output` names several roles; and a change
a callback confirmed (`JobTracker.apply`) reaching its watchers with them. Describe, list,
watch and wait show them end to end in tests/integration/test_job_kinds.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway._proto import media_pb2, outputs_pb2, service_pb2
from gateway.config.settings import Settings
from gateway.credentials import Credentials
from gateway.jobs.outputs import fill_outputs, outputs_of
from gateway.jobs.tracking import JobTracker
from gateway.model import Target
from gateway.upstream.xml_codec import decode
from tests.conftest import ci_client
from tests.jobs.helpers import ManualTimer

VECTORS = Path(__file__).parent.parent / "upstream" / "vectors" / "xml" / "decode"
BUCKET, REGION = "examplebucket-1250000000", "ap-guangzhou"
R = outputs_pb2.OutputRole


def _vector(name: str) -> media_pb2.JobsDetail:
    data = (VECTORS / f"{name}.xml").read_bytes()
    (job,) = decode(data, service_pb2.DescribeMediaJobsResponse).jobs_detail
    return job


def _job(operation_xml: str, state: str = "Success") -> media_pb2.JobsDetail:
    xml = (
        f"<Response><JobsDetail><JobId>j1</JobId><State>{state}</State>"
        f"<Operation>{operation_xml}</Operation></JobsDetail></Response>"
    )
    (job,) = decode(xml.encode(), service_pb2.DescribeMediaJobsResponse).jobs_detail
    return job


def _rows(job: media_pb2.JobsDetail) -> list[tuple[str, str, str, str, int, str]]:
    return [(o.bucket, o.region, o.key, o.md5, o.role, o.stream_index) for o in outputs_of(job)]


def test_snapshot_frames_and_sprites_are_prefix_plus_name() -> None:
    # Output.Object `snapshot/demo-${Number}.jpg`: CI's expansion is the ObjectName list.
    assert _rows(_vector("describe_snapshot_sprites")) == [
        (BUCKET, REGION, "snapshot/demo-0.jpg", "1b2f3e", R.OUTPUT_ROLE_MAIN, ""),
        (BUCKET, REGION, "snapshot/demo-1.jpg", "", R.OUTPUT_ROLE_MAIN, ""),
        (BUCKET, REGION, "snapshot/demo,2.jpg", "", R.OUTPUT_ROLE_MAIN, ""),
        (BUCKET, REGION, "sprite/demo-0.jpg", "", R.OUTPUT_ROLE_SPRITE, ""),
    ]


def test_a_transcode_like_result_with_an_empty_prefix_and_its_md5() -> None:
    assert _rows(_vector("describe_superresolution_result")) == [
        (
            BUCKET,
            REGION,
            "output/hd.mp4",
            "852b799cdf9e4d34a2eba3b6ad58dfc0",
            R.OUTPUT_ROLE_MAIN,
            "",
        ),
    ]


VOICE_SEPARATE = f"""
<VoiceSeparate><AudioMode>AudioAndBackground</AudioMode></VoiceSeparate>
<Output><Region>{REGION}</Region><Bucket>{BUCKET}</Bucket>
  <Object>voice/${{InputName}}-vocal.mp3</Object><AuObject>voice/${{InputName}}-bgm.mp3</AuObject>
  <BassObject>voice/bass.mp3</BassObject><DrumObject>voice/drum.mp3</DrumObject></Output>
<MediaResult><OutputFile><Bucket>{BUCKET}</Bucket><Region>{REGION}</Region>
  <ObjectPrefix>voice/</ObjectPrefix>
  <ObjectName>demo-vocal.mp3</ObjectName><ObjectName>demo-bgm.mp3</ObjectName>
  <ObjectName>bass.mp3</ObjectName><ObjectName>drum.mp3</ObjectName><ObjectName>extra.mp3</ObjectName>
  <Md5Info><ObjectName>demo-bgm.mp3</ObjectName><Md5>aa</Md5></Md5Info>
  <Md5Info><ObjectName>voice/drum.mp3</ObjectName><Md5>dd</Md5></Md5Info>
</OutputFile></MediaResult>
"""


def test_voice_separate_tracks_take_the_role_of_the_output_node_naming_them() -> None:
    assert [(o.key, o.md5, o.role) for o in outputs_of(_job(VOICE_SEPARATE))] == [
        ("voice/demo-vocal.mp3", "", R.OUTPUT_ROLE_MAIN),
        ("voice/demo-bgm.mp3", "aa", R.OUTPUT_ROLE_AUDIO),
        ("voice/bass.mp3", "", R.OUTPUT_ROLE_BASS),
        ("voice/drum.mp3", "dd", R.OUTPUT_ROLE_DRUM),  # Md5Info naming the full key
        ("voice/extra.mp3", "", R.OUTPUT_ROLE_MAIN),  # named by no Output node
    ]


def test_an_exact_key_beats_a_pattern_that_also_matches_it() -> None:
    operation = f"""
    <Output><Region>{REGION}</Region><Bucket>{BUCKET}</Bucket>
      <Object>out/${{Number}}.jpg</Object><SpriteObject>out/9.jpg</SpriteObject></Output>
    <MediaResult><OutputFile><ObjectPrefix>out/</ObjectPrefix>
      <ObjectName>1.jpg</ObjectName><ObjectName>9.jpg</ObjectName></OutputFile></MediaResult>
    """
    assert [(o.key, o.role) for o in outputs_of(_job(operation))] == [
        ("out/1.jpg", R.OUTPUT_ROLE_MAIN),
        ("out/9.jpg", R.OUTPUT_ROLE_SPRITE),
    ]


def test_stream_extract_names_each_stream_and_fills_bucket_and_region_from_output() -> None:
    operation = f"""
    <Output><Region>{REGION}</Region><Bucket>{BUCKET}</Bucket>
      <StreamExtract><Index>0</Index><Object>demux/video.mp4</Object></StreamExtract>
      <StreamExtract><Index>1</Index><Object>demux/audio.m4a</Object></StreamExtract></Output>
    <MediaResult><OutputFile><ObjectPrefix/>
      <ObjectName>demux/audio.m4a</ObjectName><ObjectName>demux/video.mp4</ObjectName>
    </OutputFile></MediaResult>
    """
    assert _rows(_job(operation)) == [
        (BUCKET, REGION, "demux/audio.m4a", "", R.OUTPUT_ROLE_STREAM, "1"),
        (BUCKET, REGION, "demux/video.mp4", "", R.OUTPUT_ROLE_STREAM, "0"),
    ]


def test_a_sprite_set_without_bucket_and_region_shares_its_parents() -> None:
    operation = """
    <MediaResult><OutputFile><Bucket>b-1250000000</Bucket><Region>ap-beijing</Region>
      <ObjectPrefix>a/</ObjectPrefix><ObjectName>1.jpg</ObjectName>
      <SpriteOutputFile><ObjectPrefix>s/</ObjectPrefix><ObjectName>1.jpg</ObjectName>
      </SpriteOutputFile></OutputFile></MediaResult>
    """
    assert _rows(_job(operation)) == [
        ("b-1250000000", "ap-beijing", "a/1.jpg", "", R.OUTPUT_ROLE_MAIN, ""),
        ("b-1250000000", "ap-beijing", "s/1.jpg", "", R.OUTPUT_ROLE_SPRITE, ""),
    ]


@pytest.mark.parametrize("state", ["Submitted", "Running", "Failed", "Cancel"])
def test_only_a_job_that_succeeded_lists_outputs(state: str) -> None:
    assert outputs_of(_job(VOICE_SEPARATE, state=state)) == []


def test_no_media_result_means_no_outputs_not_guessed_keys() -> None:
    operation = (
        f"<Output><Region>{REGION}</Region><Bucket>{BUCKET}</Bucket><Object>o.mp4</Object></Output>"
    )
    assert outputs_of(_job(operation)) == []


def test_fill_outputs_replaces_what_a_job_had() -> None:
    job = _job(VOICE_SEPARATE)
    job.outputs.add(key="stale")
    fill_outputs([job])
    assert [o.key for o in job.outputs] == [o.key for o in outputs_of(job)]
    assert len(job.outputs) == 5


async def test_a_change_a_callback_confirmed_reaches_watchers_with_its_outputs(
    settings: Settings, credentials: Credentials
) -> None:
    # The tracker's clock never moves, so it polls nothing: the change comes by `apply` alone,
    # as a callback's verified describe answer does (gateway.jobs.callbacks).
    client = ci_client(settings, credentials)
    tracker = JobTracker(client, timer=ManualTimer())
    target = Target(BUCKET, REGION)
    finished = _vector("describe_superresolution_result")
    try:
        async with tracker.watch(target, finished.job_id, "client") as watch:
            updates = watch.updates()
            assert tracker.apply(target, finished)
            async with asyncio.timeout(5):
                detail = await anext(updates)
    finally:
        await tracker.close()
        await client.close()
    assert [(o.key, o.role) for o in detail.outputs] == [("output/hd.mp4", R.OUTPUT_ROLE_MAIN)]
