"""Every typed job kind end to end: a real gRPC channel -> the in-process gateway -> signed HTTP
-> the emulator, which really runs the job with PyAV. The files the job reports are then opened
here and probed with PyAV, independently of the emulator's own MediaInfo.

Why this exists beside its neighbours: `test_job_kinds.py` proves the gateway keeps a kind's
nodes, against a stand-in that only echoes; the emulator's media tests prove it runs XML a test
wrote by hand. Neither shows that what the gateway *encodes* from the typed Protobuf fields is
what CI (here its emulator) accepts and runs, nor that CI's answer decodes into the typed results
a caller reads (`MediaResult`, the output's `MediaInfo`, `DigitalWatermark.State`).

One table, `CASES`, holds per kind the typed request (Protobuf fields only, never XML) and what
its outputs must be. The input is a 1 s 160x128 clip with a key frame every 10 frames (cheap to
process, and cuttable by Segment). Untyped kinds are not run by the emulator: their submit must
come back as UNIMPLEMENTED carrying CI's own Code, Message and RequestId. The same path from
JSON, as grpcurl takes it, is `test_kinds_json.py`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import av
import grpc
import pytest

from ci_emulator.server import RunningEmulator
from ci_emulator.submit import KNOWN_TAGS
from gateway._proto import job_kinds_pb2, media_pb2, outputs_pb2, service_pb2, xml_pb2
from gateway.config.settings import Settings
from gateway.kinds import KINDS
from gateway.upstream.xml_codec import typed_field_for
from tests.conftest import BUCKET, REGION, settings_for
from tests.integration.helpers import rich_error
from tests.integration.kinds_support import (
    CLIP,
    CLIP_FRAMES,
    CLIP_HEIGHT,
    CLIP_SECONDS,
    CLIP_WIDTH,
    FAST,
    Done,
    make_clip,
    outputs,
    run,
    submit_and_wait,
)

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

K, M, S = job_kinds_pb2, media_pb2, service_pb2


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("kinds"))


@pytest.fixture
def bucket_dir(bucket_dir: Path, clip: Path) -> Path:
    """The shared bucket folder, plus the small clip every job here reads."""
    shutil.copyfile(clip, bucket_dir / CLIP)
    return bucket_dir


@pytest.fixture
def settings(emulator: RunningEmulator) -> Settings:
    return settings_for(emulator, tracking=FAST)


# ---- the typed requests ----------------------------------------------------------------------


def request(tag: str, operation: M.Operation, key: str | None = CLIP) -> M.Request:
    built = M.Request(tag=tag, operation=operation)
    if key is not None:
        built.input.object = key
    return built


def output(
    key: str = "",
    *,
    sprite_object: str = "",
    au_object: str = "",
    stream_extract: tuple[K.StreamExtract, ...] = (),
) -> K.Output:
    return K.Output(
        region=REGION,
        bucket=BUCKET,
        object=key,
        sprite_object=sprite_object,
        au_object=au_object,
        stream_extract=stream_extract,
    )


def cos_url(key: str) -> str:
    return f"https://{BUCKET}.cos.{REGION}.myqcloud.com/{key}"


def mp4_transcode(preset: str = "") -> K.Transcode:
    return K.Transcode(
        container=K.Container(format="mp4"),
        video=K.TranscodeVideo(codec="H.264", preset=preset),
        audio=K.TranscodeAudio(codec="aac"),
    )


MESSAGE = "tenant_42-*"


def digital_watermark() -> M.Request:
    return request(
        "DigitalWatermark",
        M.Operation(
            digital_watermark=K.DigitalWatermark(message=MESSAGE, type="Text", version="V1"),
            output=output("dwm/marked.mp4"),
        ),
    )


def first_pixel(path: Path, x: int, y: int) -> tuple[int, ...]:
    """The RGB pixel at (x, y) of the first frame."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    plane = frame.planes[0]
    offset = y * int(plane.line_size) + 3 * x
    return tuple(bytes(plane)[offset : offset + 3])


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(video=0) if packet.size]


# ---- what each kind's outputs must be --------------------------------------------------------


def check_transcode(done: Done) -> None:
    (key,) = done.keys
    assert key == "out/transcoded.mp4"
    probed = done.probe(key)
    assert (probed.format_name, probed.video_codec) == ("mov,mp4,m4a,3gp,3g2,mj2", "h264")
    assert (probed.width, probed.height) == (144, 128)
    assert probed.frames == 6  # TimeInterval 0.6 s at Fps 10
    assert (probed.audio_codec, probed.sample_rate, probed.channels) == ("aac", 22050, 1)
    assert probed.duration == pytest.approx(0.6, abs=0.1)


def check_snapshot(done: Done) -> None:
    assert done.keys == ["snap/clip-0.jpg", "snap/clip-1.jpg", "snap/clip-2.jpg"]
    for key in done.keys:
        probed = done.probe(key)
        assert (probed.video_codec, probed.width, probed.height) == ("mjpeg", 128, 102)
    # Three cells of 64x48, two per sheet: two sheets.
    assert done.sprites == ["snap/sprite-0.jpg", "snap/sprite-1.jpg"]
    sheet = done.probe(done.sprites[0])
    assert (sheet.video_codec, sheet.width, sheet.height) == ("mjpeg", 128, 48)


def check_animation(done: Done) -> None:
    assert done.keys == ["anim/clip.gif"]
    probed = done.probe("anim/clip.gif")
    assert (probed.video_codec, probed.frames) == ("gif", 5)  # 1 s at 5 frames a second
    assert probed.height == 102


def check_concat(done: Done) -> None:
    assert done.keys == ["cat/spliced.mp4"]
    probed = done.probe("cat/spliced.mp4")
    assert (probed.video_codec, probed.width, probed.height) == ("h264", 128, 102)
    assert probed.frames == 10 + 10  # 0 - 0.4 s, then 0.6 - 1.0 s
    assert probed.audio_codec == "aac"


def check_segment(done: Done) -> None:
    assert done.keys == ["seg/clip-0.mp4", "seg/clip-1.mp4", "seg/clip-2.mp4"]
    pieces = [done.probe(key) for key in done.keys]
    assert [piece.frames for piece in pieces] == [10, 10, 5]  # cut at the key frames
    assert {(p.video_codec, p.width, p.audio_codec) for p in pieces} == {("h264", 160, "aac")}


def check_smart_cover(done: Done) -> None:
    assert done.keys == ["cover/c-0.png", "cover/c-1.png"]
    for key in done.keys:
        probed = done.probe(key)
        assert (probed.video_codec, probed.width, probed.height) == ("png", 128, 102)


def check_voice_separate(done: Done) -> None:
    assert done.keys == ["voice/voice.m4a", "voice/background.m4a"]
    for key in done.keys:
        probed = done.probe(key)
        assert (probed.video_codec, probed.audio_codec) == (None, "aac")
        assert (probed.sample_rate, probed.channels) == (22050, 1)
        assert probed.duration == pytest.approx(CLIP_SECONDS, abs=0.15)


def check_video_montage(done: Done) -> None:
    assert done.keys == ["reel/reel.mp4"]
    probed = done.probe("reel/reel.mp4")
    assert (probed.video_codec, probed.width, probed.frames) == ("h264", 128, 12)  # 4 x 3
    assert probed.audio_codec == "aac"


def check_watermark(done: Done) -> None:
    assert done.keys == ["wm/marked.mp4"]
    probed = done.probe("wm/marked.mp4")
    assert (probed.video_codec, probed.width, probed.height) == ("h264", CLIP_WIDTH, CLIP_HEIGHT)
    assert probed.frames == CLIP_FRAMES
    # Green text at the top left: a glyph's stroke covers (4..7, 4..7) after a 4 px border.
    red, green, _ = first_pixel(done.root / "wm/marked.mp4", 5, 5)
    assert green > 180 and red < 100


def check_digital_watermark(done: Done) -> None:
    assert done.keys == ["dwm/marked.mp4"]
    mark = done.job.operation.digital_watermark
    assert (mark.message, mark.state) == (MESSAGE, "Success")
    # An invisible mark on a stream copy: the video packets are the input's.
    assert video_packets(done.root / "dwm/marked.mp4") == video_packets(done.root / CLIP)


def check_extract_digital_watermark(done: Done) -> None:
    assert done.keys == [] and not done.job.operation.HasField("media_result")
    mark = done.job.operation.digital_watermark
    assert (mark.message, mark.state) == (MESSAGE, "Success")


def check_stream_extract(done: Done) -> None:
    assert done.keys == ["ext/video.mp4", "ext/audio.aac"]
    video, audio = done.probe("ext/video.mp4"), done.probe("ext/audio.aac")
    assert (video.video_codec, video.frames, video.audio_codec) == ("h264", CLIP_FRAMES, None)
    assert (audio.video_codec, audio.audio_codec) == (None, "aac")


ARIB_STD_B67 = 18  # FFmpeg's AVCOL_TRC_ARIB_STD_B67: HLG


def check_sdr_to_hdr(done: Done) -> None:
    assert done.keys == ["hdr/hlg.mp4"]
    probed = done.probe("hdr/hlg.mp4")
    assert (probed.frames, probed.colour_transfer) == (CLIP_FRAMES, ARIB_STD_B67)
    video = done.job.operation.media_info.stream.video[0]
    assert (video.color_primaries, video.color_transfer) == ("bt2020", "arib-std-b67")
    assert video.pix_format == "yuv420p10le"


def check_video_process(done: Done) -> None:
    assert done.keys == ["vp/processed.mkv"]
    probed = done.probe("vp/processed.mkv")
    assert probed.format_name == "matroska,webm"
    assert (probed.video_codec, probed.frames, probed.audio_codec) == ("h264", CLIP_FRAMES, "aac")


def check_super_resolution(done: Done) -> None:
    assert done.keys == ["sr/hd.mp4"]
    probed = done.probe("sr/hd.mp4")
    # sdtohd: the short side becomes 720, the aspect ratio is kept (160x128 -> 900x720).
    assert (probed.video_codec, probed.width, probed.height) == ("h264", 900, 720)
    assert probed.frames == CLIP_FRAMES


def check_video_enhance(done: Done) -> None:
    assert done.keys == ["ve/enhanced.mp4"]
    probed = done.probe("ve/enhanced.mp4")
    assert (probed.video_codec, probed.frames) == ("h264", 2 * CLIP_FRAMES)  # FrameDoubling


@dataclass(frozen=True)
class Case:
    kind: str
    build: Callable[[], M.Request]
    check: Callable[[Done], None]
    # Jobs that must have succeeded first (they make this job's input).
    before: tuple[Callable[[], M.Request], ...] = ()


CASES = [
    Case(
        "Transcode",
        lambda: request(
            "Transcode",
            M.Operation(
                transcode=K.Transcode(
                    container=K.Container(format="mp4"),
                    video=K.TranscodeVideo(codec="H.264", width="144", height="128", fps="10"),
                    audio=K.TranscodeAudio(codec="aac", samplerate="22050", channels="1"),
                    time_interval=K.TimeInterval(start="0", duration="0.6"),
                ),
                output=output("out/transcoded.mp4"),
            ),
        ),
        check_transcode,
    ),
    Case(
        "Snapshot",
        lambda: request(
            "Snapshot",
            M.Operation(
                snapshot=K.Snapshot(
                    mode="Interval",
                    start="0",
                    time_interval="0.3",
                    count="3",
                    width="128",
                    snapshot_out_mode="SnapshotAndSprite",
                    sprite_snapshot_config=K.SpriteSnapshotConfig(
                        cell_width="64", cell_height="48", columns="2", lines="1"
                    ),
                ),
                output=output(
                    "snap/${InputName}-${Number}.jpg", sprite_object="snap/sprite-${Number}.jpg"
                ),
            ),
        ),
        check_snapshot,
    ),
    Case(
        "Animation",
        lambda: request(
            "Animation",
            M.Operation(
                animation=K.Animation(
                    container=K.Container(format="gif"),
                    video=K.AnimationVideo(codec="gif", width="128", animate_frames_per_second="5"),
                ),
                output=output("anim/${InputName}.${ext}"),
            ),
        ),
        check_animation,
    ),
    Case(
        # No Input: the clips are fragments only (the Go SDK's example).
        "Concat",
        lambda: request(
            "Concat",
            M.Operation(
                concat_template=K.ConcatTemplate(
                    concat_fragment=[
                        K.ConcatFragment(url=cos_url(CLIP), mode="Start", end_time="0.4"),
                        K.ConcatFragment(url=cos_url(CLIP), mode="End", start_time="0.6"),
                    ],
                    container=K.Container(format="mp4"),
                    video=K.TranscodeVideo(codec="H.264", width="128"),
                    audio=K.TranscodeAudio(codec="aac"),
                ),
                output=output("cat/spliced.mp4"),
            ),
            key=None,
        ),
        check_concat,
    ),
    Case(
        "Segment",
        lambda: request(
            "Segment",
            M.Operation(
                segment=K.Segment(format="mp4", duration="0.4"),
                output=output("seg/${InputName}-${Number}.mp4"),
            ),
        ),
        check_segment,
    ),
    Case(
        "SmartCover",
        lambda: request(
            "SmartCover",
            M.Operation(
                smart_cover=K.SmartCover(format="png", width="128", count="2"),
                output=output("cover/c-${Number}.png"),
            ),
        ),
        check_smart_cover,
    ),
    Case(
        "VoiceSeparate",
        lambda: request(
            "VoiceSeparate",
            M.Operation(
                voice_separate=K.VoiceSeparate(
                    audio_mode="AudioAndBackground",
                    audio_config=K.AudioConfig(codec="aac", samplerate="22050", channels="1"),
                ),
                output=output("voice/voice.m4a", au_object="voice/background.m4a"),
            ),
        ),
        check_voice_separate,
    ),
    Case(
        "VideoMontage",
        lambda: request(
            "VideoMontage",
            M.Operation(
                video_montage=K.VideoMontage(
                    container=K.Container(format="mp4"),
                    video=K.VideoMontageVideo(codec="H.264", width="128"),
                    audio=K.TranscodeAudio(codec="aac"),
                    duration="0.48",
                ),
                output=output("reel/reel.mp4"),
            ),
        ),
        check_video_montage,
    ),
    Case(
        "Watermark",
        lambda: request(
            "Watermark",
            M.Operation(
                watermark=[
                    K.Watermark(
                        type="Text",
                        pos="TopLeft",
                        loc_mode="Absolute",
                        dx="0",
                        dy="0",
                        text=K.WatermarkText(text="HI", font_size="20", font_color="0x00FF00"),
                    )
                ],
                output=output("wm/marked.mp4"),
            ),
        ),
        check_watermark,
    ),
    Case("DigitalWatermark", digital_watermark, check_digital_watermark),
    Case(
        "ExtractDigitalWatermark",
        lambda: request(
            "ExtractDigitalWatermark",
            M.Operation(
                extract_digital_watermark=K.ExtractDigitalWatermark(type="Text", version="V1")
            ),
            key="dwm/marked.mp4",
        ),
        check_extract_digital_watermark,
        before=(digital_watermark,),
    ),
    Case(
        "StreamExtract",
        lambda: request(
            "StreamExtract",
            M.Operation(
                output=output(
                    stream_extract=(
                        K.StreamExtract(index="0", object="ext/video.mp4"),
                        K.StreamExtract(index="1", object="ext/audio.aac"),
                    )
                )
            ),
        ),
        check_stream_extract,
    ),
    Case(
        "SDRtoHDR",
        lambda: request(
            "SDRtoHDR",
            M.Operation(
                sdr_to_hdr=K.SdrToHdr(hdr_mode="HLG"),
                transcode=mp4_transcode(),
                output=output("hdr/hlg.mp4"),
            ),
        ),
        check_sdr_to_hdr,
    ),
    Case(
        "VideoProcess",
        lambda: request(
            "VideoProcess",
            M.Operation(
                video_process=K.VideoProcess(
                    color_enhance=K.ColorEnhance(
                        enable="true", contrast="50", correction="20", saturation="40"
                    ),
                    ms_sharpen=K.MsSharpen(enable="true", sharpen_level="6"),
                ),
                output=output("vp/processed.mkv"),
            ),
        ),
        check_video_process,
    ),
    Case(
        "SuperResolution",
        lambda: request(
            "SuperResolution",
            M.Operation(
                super_resolution=K.SuperResolution(resolution="sdtohd"),
                transcode=mp4_transcode(preset="ultrafast"),
                output=output("sr/hd.mp4"),
            ),
        ),
        check_super_resolution,
    ),
    Case(
        "VideoEnhance",
        lambda: request(
            "VideoEnhance",
            M.Operation(
                video_enhance=K.VideoEnhance(
                    frame_enhance=K.FrameEnhance(frame_doubling="true"),
                    ms_sharpen=K.MsSharpen(sharpen_level="3"),
                ),
                output=output("ve/enhanced.mp4"),
            ),
        ),
        check_video_enhance,
    ),
]


def test_the_table_covers_every_typed_kind_once() -> None:
    typed = [tag for tag, kind in KINDS.items() if kind.typed and tag != "MediaInfo"]
    assert sorted(case.kind for case in CASES) == sorted(typed)
    assert len(typed) == 16


@pytest.mark.parametrize("case", CASES, ids=[case.kind for case in CASES])
async def test_typed_kind_runs_and_its_outputs_are_real(
    case: Case, stub: Stub, bucket_dir: Path
) -> None:
    for before in case.before:
        await run(stub, before())
    sent = case.build()
    job = await run(stub, sent)
    # What was sent comes back typed: the kind's parameters are echoed into the same fields
    # (beside CI's results, such as the `State` it adds to a DigitalWatermark).
    echoed = M.Operation()
    echoed.CopyFrom(job.operation)
    echoed.digital_watermark.ClearField("state")
    for field, value in sent.operation.ListFields():
        assert getattr(echoed, field.name) == value, field.name
    case.check(outputs(job, bucket_dir))


# ---- requests the gateway must not refuse -----------------------------------------------------


def check_sprites_only(done: Done) -> None:
    assert done.keys == []
    assert done.sprites == ["sprite/only-0.jpg"]  # two cells of 64x48 on one sheet
    sheet = done.probe("sprite/only-0.jpg")
    assert (sheet.video_codec, sheet.width, sheet.height) == ("mjpeg", 128, 48)


def check_background_only(done: Done) -> None:
    assert done.keys == ["voice/background-only.m4a"]
    probed = done.probe("voice/background-only.m4a")
    assert (probed.video_codec, probed.audio_codec) == (None, "aac")


# Valid for CI (the catalogue leaves Output.Object optional for these kinds, and the emulator
# runs them), so a gateway that refuses them is wrong.
WITHOUT_OBJECT = {
    # Catalogue §1.2/A.5: Snapshot's Object is "否" (not required); sprites go to SpriteObject.
    "Snapshot-sprites-only": Case(
        "Snapshot",
        lambda: request(
            "Snapshot",
            M.Operation(
                snapshot=K.Snapshot(
                    mode="Interval",
                    time_interval="0.5",
                    snapshot_out_mode="OnlySprite",
                    sprite_snapshot_config=K.SpriteSnapshotConfig(
                        cell_width="64", cell_height="48", columns="2", lines="1"
                    ),
                ),
                output=output(sprite_object="sprite/only-${Number}.jpg"),
            ),
        ),
        check_sprites_only,
    ),
    # Catalogue A.9: VoiceSeparate's Output is {Region*, Bucket*, Object, AuObject, ...}.
    "VoiceSeparate-background-only": Case(
        "VoiceSeparate",
        lambda: request(
            "VoiceSeparate",
            M.Operation(
                voice_separate=K.VoiceSeparate(audio_mode="IsBackground"),
                output=output(au_object="voice/background-only.m4a"),
            ),
        ),
        check_background_only,
    ),
}


@pytest.mark.parametrize("name", WITHOUT_OBJECT)
async def test_a_kind_without_output_object_runs(name: str, stub: Stub, bucket_dir: Path) -> None:
    case = WITHOUT_OBJECT[name]
    job = await run(stub, case.build())
    case.check(outputs(job, bucket_dir))


async def test_a_lower_case_number_placeholder_is_a_numbered_output(
    stub: Stub, bucket_dir: Path
) -> None:
    """CI's placeholder is also spelled `${number}` (catalogue §1.2 "placeholders seen"; the Go
    SDK's SmartCover example writes `output/mc-${number}.jpg`): a SmartCover or Snapshot output
    spelled so is numbered, and the job runs."""
    sent = request(
        "SmartCover",
        M.Operation(
            smart_cover=K.SmartCover(format="png", width="128", count="2"),
            output=output("cover/lower-${number}.png"),
        ),
    )
    done = outputs(await run(stub, sent), bucket_dir)
    assert done.keys == ["cover/lower-0.png", "cover/lower-1.png"]
    assert {o.role for o in done.job.outputs} == {outputs_pb2.OUTPUT_ROLE_MAIN}


# ---- a job that fails ------------------------------------------------------------------------


async def test_a_failed_job_ends_failed_with_cis_code_and_leaves_no_file(
    stub: Stub, bucket_dir: Path
) -> None:
    """CI accepts the submit (the key is fine) and the job fails when it reads the input: the
    wait ends FAILED with CI's Code and Message on the job, and nothing is written."""
    sent = request(
        "Transcode",
        M.Operation(transcode=mp4_transcode(), output=output("out/never.mp4")),
        key="input/notes.txt",
    )
    job = await submit_and_wait(stub, sent)
    assert (job.state, job.state_text, job.code) == (M.JOB_STATE_FAILED, "Failed", "InvalidMedia")
    assert job.message
    assert not job.operation.HasField("media_result")
    assert not (bucket_dir / "out").exists()


# ---- kinds the emulator does not run ---------------------------------------------------------

UNTYPED = [tag for tag, kind in KINDS.items() if not kind.typed]


def test_the_emulator_knows_every_tag_the_gateway_accepts() -> None:
    """Two readings of the catalogue's 37 tags (the emulator's, to refuse a tag CI lacks with
    InvalidArgument; the gateway's, to refuse it before CI) must agree, or a kind the gateway
    sends would be refused by the emulator as no CI kind at all."""
    assert set(KNOWN_TAGS) == set(KINDS)


async def test_untyped_kinds_are_unimplemented_with_cis_error_in_the_details(
    stub: Stub, emulator: RunningEmulator
) -> None:
    for tag in UNTYPED:  # bounded: the catalogue's 20 pass-through kinds
        operation = M.Operation()
        for node in KINDS[tag].nodes:
            typed = typed_field_for(operation, node)
            if typed is None:
                operation.extra_nodes.append(xml_pb2.XmlNode(name=node, text="x"))
            else:  # GeneratePlayList's Transcode: a node the protos type must be set typed
                getattr(operation, typed).SetInParent()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitMediaJob(
                S.SubmitMediaJobRequest(request=request(tag, operation)), timeout=10
            )
        error = rich_error(caught.value)
        assert error.code == grpc.StatusCode.UNIMPLEMENTED, (tag, error.message)
        assert error.error_info is not None and error.request_info is not None
        assert error.error_info.reason == "UPSTREAM_REJECTED"
        metadata = error.error_info.metadata
        assert metadata["ci_code"] == "NotImplemented", tag
        assert tag in metadata["ci_message"]
        assert metadata["http_status"] == "501"
        assert metadata["ci_request_id"] and (
            metadata["ci_request_id"] == error.request_info.request_id
        )
        assert metadata["ci_request_id"] in error.message
    assert emulator.state.jobs == {}


@pytest.mark.parametrize(
    ("tag", "node"),
    [("Tts", "TtsConfig"), ("FillConcat", "FillConcat"), ("VideoSynthesis", "VideoSynthesis")],
)
async def test_untyped_kinds_whose_input_is_in_their_own_nodes_reach_ci_without_input(
    tag: str, node: str, stub: Stub
) -> None:
    """The Go SDK's examples of these kinds send no `Input` (the text or the clips are in the
    kind's own nodes); CI, not the gateway, judges them: the submit reaches the emulator, which
    answers that it does not run the kind, instead of INVALID_ARGUMENT on request.input.object."""
    operation = M.Operation(extra_nodes=[xml_pb2.XmlNode(name=node, text="x")])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitMediaJob(
            S.SubmitMediaJobRequest(request=request(tag, operation, key=None)), timeout=10
        )
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.UNIMPLEMENTED, error.message
    assert error.error_info is not None
    assert error.error_info.metadata["ci_code"] == "NotImplemented"
