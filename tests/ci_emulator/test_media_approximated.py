"""The approximated kinds write real files of the right shape: VoiceSeparate (mid/side tracks),
SDRtoHDR (10-bit, BT.2020 + HLG/PQ tags), SuperResolution (lanczos upscaling), VideoProcess and
VideoEnhance (FFmpeg filters, frame doubling), DigitalWatermark + ExtractDigitalWatermark (a
message that comes back). Outputs are checked with PyAV."""

from __future__ import annotations

import av
import pytest

from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import SignedClient
from tests.ci_emulator.media_support import (
    media_body,
    output_keys,
    output_xml,
    probe_file,
    refusal,
    run_job,
    succeeded,
)

TRANSCODE = (
    "<Transcode><Container><Format>mp4</Format></Container><Video><Codec>H.264</Codec></Video>"
    "<Audio><Codec>aac</Codec></Audio></Transcode>"
)


async def test_voice_separate_writes_voice_and_background(
    client: SignedClient, emu: RunningEmulator
) -> None:
    operation = (
        "<VoiceSeparate><AudioMode>AudioAndBackground</AudioMode><AudioConfig><Codec>aac</Codec>"
        "<Samplerate>22050</Samplerate><Channels>1</Channels></AudioConfig></VoiceSeparate>"
        + output_xml("voice/v.m4a", AuObject="voice/bg.m4a", BassObject="voice/bass.m4a")
    )
    detail = succeeded(await run_job(client, emu, media_body("VoiceSeparate", operation)))
    assert output_keys(detail) == ["voice/v.m4a", "voice/bg.m4a", "voice/bass.m4a"]
    root = emu.state.config.buckets[0].root
    for key in output_keys(detail):
        probed = probe_file(root / key)
        assert (probed.video_codec, probed.audio_codec) == (None, "aac")
        assert (probed.sample_rate, probed.channels) == (22050, 1)
        assert abs(probed.duration - 1.0) < 0.15
    info = detail.find("Operation/MediaInfo/Stream/Audio")
    assert info is not None and info.findtext("SampleRate") == "22050"


@pytest.mark.parametrize(
    ("outputs", "written"),
    [
        ({"key": "voice/v.mp3", "AuObject": "voice/bg.mp3"}, ["voice/v.mp3", "voice/bg.mp3"]),
        ({"key": "voice/v.mp3"}, ["voice/v.mp3"]),
        ({"AuObject": "voice/bg.mp3"}, ["voice/bg.mp3"]),
    ],
    ids=["both", "voice", "background"],
)
async def test_voice_separate_without_audio_mode_writes_the_tracks_its_output_names(
    client: SignedClient, emu: RunningEmulator, outputs: dict[str, str], written: list[str]
) -> None:
    """AudioMode is optional in CI's VoiceSeparate job doc (required only in its template
    doc); the emulator required it, refusing a job CI accepts."""
    key = outputs.pop("key", None)
    operation = "<VoiceSeparate><AudioConfig><Codec>mp3</Codec></AudioConfig></VoiceSeparate>"
    body = media_body("VoiceSeparate", operation + output_xml(key, **outputs))
    detail = succeeded(await run_job(client, emu, body))
    assert output_keys(detail) == written
    assert detail.find("Operation/VoiceSeparate/AudioMode") is None  # echoed as sent


async def test_sdr_to_hdr_tags_the_output(client: SignedClient, emu: RunningEmulator) -> None:
    operation = "<SDRtoHDR><HdrMode>HLG</HdrMode></SDRtoHDR>" + TRANSCODE + output_xml("hdr.mp4")
    detail = succeeded(await run_job(client, emu, media_body("SDRtoHDR", operation)))
    video = detail.find("Operation/MediaInfo/Stream/Video")
    assert video is not None
    assert (video.findtext("ColorPrimaries"), video.findtext("ColorTransfer")) == (
        "bt2020",
        "arib-std-b67",
    )
    assert video.findtext("PixFormat") == "yuv420p10le"
    assert probe_file(emu.state.config.buckets[0].root / "hdr.mp4").frames == 25


async def test_super_resolution_upscales_with_lanczos(
    client: SignedClient, emu: RunningEmulator
) -> None:
    operation = (
        "<SuperResolution><Resolution>sdtohd</Resolution></SuperResolution>"
        + TRANSCODE.replace(
            "<Codec>H.264</Codec>", "<Codec>H.264</Codec><Preset>ultrafast</Preset>"
        )
        + output_xml("sr.mp4")
    )
    succeeded(await run_job(client, emu, media_body("SuperResolution", operation)))
    probed = probe_file(emu.state.config.buckets[0].root / "sr.mp4")
    assert (probed.width, probed.height, probed.frames) == (960, 720, 25)


async def test_video_process_and_enhance(client: SignedClient, emu: RunningEmulator) -> None:
    operation = (
        "<VideoProcess><ColorEnhance><Enable>true</Enable><Contrast>50</Contrast>"
        "<Saturation>40</Saturation><Correction>20</Correction></ColorEnhance><MsSharpen>"
        "<Enable>true</Enable><SharpenLevel>6</SharpenLevel></MsSharpen></VideoProcess>"
        + output_xml("vp.mkv")
    )
    succeeded(await run_job(client, emu, media_body("VideoProcess", operation)))
    processed = probe_file(emu.state.config.buckets[0].root / "vp.mkv")
    assert (processed.video_codec, processed.frames, processed.audio_codec) == ("h264", 25, "aac")

    operation = (
        "<VideoEnhance><FrameEnhance><FrameDoubling>true</FrameDoubling></FrameEnhance>"
        "<MsSharpen><SharpenLevel>3</SharpenLevel></MsSharpen></VideoEnhance>"
        + output_xml("ve.mp4")
    )
    succeeded(await run_job(client, emu, media_body("VideoEnhance", operation)))
    assert probe_file(emu.state.config.buckets[0].root / "ve.mp4").frames == 50


async def test_digital_watermark_round_trip(client: SignedClient, emu: RunningEmulator) -> None:
    operation = (
        "<DigitalWatermark><Message>tenant_42-*</Message><Type>Text</Type><Version>V1</Version>"
        "</DigitalWatermark>" + output_xml("dwm/marked.mp4")
    )
    detail = succeeded(await run_job(client, emu, media_body("DigitalWatermark", operation)))
    assert detail.findtext("Operation/DigitalWatermark/State") == "Success"
    assert detail.findtext("Operation/DigitalWatermark/Message") == "tenant_42-*"
    root = emu.state.config.buckets[0].root
    with av.open(str(root / "dwm/marked.mp4")) as marked, av.open(str(root / "input/a.mp4")) as a:
        # The streams are copied unchanged: same packets.
        assert [bytes(p) for p in marked.demux(video=0)] == [bytes(p) for p in a.demux(video=0)]

    extract = (
        "<ExtractDigitalWatermark><Type>Text</Type><Version>V1</Version></ExtractDigitalWatermark>"
    )
    found = succeeded(
        await run_job(
            client, emu, media_body("ExtractDigitalWatermark", extract, key="dwm/marked.mp4")
        )
    )
    assert found.findtext("Operation/DigitalWatermark/Message") == "tenant_42-*"
    assert found.findtext("Operation/DigitalWatermark/State") == "Success"
    assert found.find("Operation/MediaResult") is None
    plain = succeeded(await run_job(client, emu, media_body("ExtractDigitalWatermark", extract)))
    assert plain.findtext("Operation/DigitalWatermark/State") == "Failed"


@pytest.mark.parametrize(
    ("tag", "operation", "status"),
    [
        ("SDRtoHDR", "<SDRtoHDR><HdrMode>HLG</HdrMode></SDRtoHDR>" + output_xml("o.mp4"), 400),
        ("SDRtoHDR", "<SDRtoHDR><HdrMode>Dolby</HdrMode></SDRtoHDR>" + TRANSCODE
         + output_xml("o.mp4"), 400),
        # A template the bucket does not have (templates are resolved before the kind's checks).
        ("SDRtoHDR", "<SDRtoHDR><HdrMode>HLG</HdrMode></SDRtoHDR><TranscodeTemplateId>t1"
         "</TranscodeTemplateId>" + output_xml("o.mp4"), 400),
        ("SuperResolution", "<SuperResolution/>" + TRANSCODE + output_xml("o.mp4"), 400),
        ("VideoProcess", "<VideoProcess><ColorEnhance><Enable>false</Enable></ColorEnhance>"
         "</VideoProcess>" + output_xml("o.mp4"), 400),
        ("VideoEnhance", "<VideoEnhance/>" + output_xml("o.mp4"), 400),
        ("VoiceSeparate", "<VoiceSeparate><AudioMode>AudioAndBackground</AudioMode>"
         "</VoiceSeparate>" + output_xml("v.mp3"), 400),
        ("VoiceSeparate", "<VoiceSeparate><AudioMode>Karaoke</AudioMode></VoiceSeparate>"
         + output_xml("v.mp3"), 400),
        ("VoiceSeparate", "<VoiceSeparate/>" + output_xml(BassObject="b.mp3"), 400),
        ("DigitalWatermark", "<DigitalWatermark><Message>has space</Message><Type>Text</Type>"
         "<Version>V1</Version></DigitalWatermark>" + output_xml("o.mp4"), 400),
        ("DigitalWatermark", "<DigitalWatermark><Message>m</Message><Type>Text</Type>"
         "</DigitalWatermark>" + output_xml("o.mp4"), 400),
        ("DigitalWatermark", "<DigitalWatermark><Message>" + "m" * 65 + "</Message><Type>Text"
         "</Type><Version>V1</Version></DigitalWatermark>" + output_xml("o.mp4"), 400),
        ("ExtractDigitalWatermark", "<ExtractDigitalWatermark><Version>V2</Version>"
         "</ExtractDigitalWatermark>", 400),
    ],
    ids=["hdr without transcode", "hdr mode", "transcode template", "no Resolution",
         "nothing enabled", "no enhancement", "no AuObject", "bad AudioMode",
         "no voice or background", "message charset", "no Version", "message too long",
         "extract version"],
)  # fmt: skip
async def test_refusals(client: SignedClient, tag: str, operation: str, status: int) -> None:
    assert (await refusal(client, media_body(tag, operation)))[0] == status


async def test_video_montage_splices_a_reel_of_duration(
    client: SignedClient, emu: RunningEmulator
) -> None:
    operation = (
        "<VideoMontage><Container><Format>mp4</Format></Container><Video><Codec>H.264</Codec>"
        "<Width>160</Width></Video><Duration>0.48</Duration><Scene>Auto</Scene></VideoMontage>"
        + output_xml("reel.mp4")
    )
    detail = succeeded(await run_job(client, emu, media_body("VideoMontage", operation)))
    assert output_keys(detail) == ["reel.mp4"]
    probed = probe_file(emu.state.config.buckets[0].root / "reel.mp4")
    assert (probed.width, probed.frames, probed.audio_codec) == (160, 12, "aac")  # 4 x 3 frames
