"""Concat, Segment, StreamExtract, Watermark and SmartCover jobs, outputs checked with PyAV.

Inputs: the session's 1 s 320x240 clip (`input/a.mp4`, 25 frames, one key frame), plus
clips made here: a 2 s clip with a key frame every 10 frames (for cutting), a silent 0.5 s
clip of another size (for Concat), and a red PNG (for the image watermark)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from ci_emulator.media.cover import DUPLICATE_BITS, average_hash
from ci_emulator.samples import make_h264_aac_mp4
from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET, REGION, SignedClient
from tests.ci_emulator.media_support import (
    media_body,
    output_keys,
    output_xml,
    probe_file,
    refusal,
    run_job,
    succeeded,
)

GOP_KEY, SILENT_KEY, RED_KEY = "input/gop.mp4", "input/silent.mp4", "marks/red.png"


def url(key: str) -> str:
    return f"https://{BUCKET}.cos.{REGION}.myqcloud.com/{key}"


@pytest.fixture(scope="module")
def extra_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("compose")
    red = folder / "red.png"
    frame = av.VideoFrame(32, 32, "rgb24")
    frame.planes[0].update(bytes([255, 0, 0]) * (int(frame.planes[0].line_size) // 3) * 32)
    ctx: Any = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 32, 32, "rgb24", Fraction(1, 25)
    red.write_bytes(b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)]))
    return {
        GOP_KEY: make_h264_aac_mp4(folder / "gop.mp4", seconds=2.0, width=160, height=128, gop=10),
        SILENT_KEY: make_h264_aac_mp4(
            folder / "silent.mp4", seconds=0.5, width=160, height=128, audio=False
        ),
        RED_KEY: red,
    }


@pytest.fixture
def root(emu: RunningEmulator, extra_media: dict[str, Path]) -> Path:
    bucket_root = emu.state.config.buckets[0].root
    for key, path in extra_media.items():
        (bucket_root / key).parent.mkdir(parents=True, exist_ok=True)
        (bucket_root / key).write_bytes(path.read_bytes())
    return bucket_root


def first_and_last_rgb(path: Path, x: int, y: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The RGB pixel at (x, y) of the first and the last frame."""
    with av.open(str(path)) as container:
        frames = [frame.reformat(format="rgb24") for frame in container.decode(video=0)]
    pixels = []
    for frame in (frames[0], frames[-1]):
        plane = frame.planes[0]
        offset = y * int(plane.line_size) + 3 * x
        pixels.append(tuple(bytes(plane)[offset : offset + 3]))
    return pixels[0], pixels[1]


# ---- Concat ----------------------------------------------------------------------------------


async def test_concat_splices_fragments_around_the_input(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    operation = (
        "<ConcatTemplate>"
        f"<ConcatFragment><Url>{url(SILENT_KEY)}</Url><Mode>Start</Mode></ConcatFragment>"
        f"<ConcatFragment><Url>{url(GOP_KEY)}</Url><Mode>End</Mode><StartTime>0.2</StartTime>"
        "<EndTime>0.6</EndTime></ConcatFragment>"
        "<Container><Format>mp4</Format></Container><Video><Codec>H.264</Codec>"
        "<Width>192</Width><Fps>25</Fps></Video></ConcatTemplate>" + output_xml("cat/out.mp4")
    )
    detail = succeeded(await run_job(client, emu, media_body("Concat", operation)))
    assert output_keys(detail) == ["cat/out.mp4"]
    probed = probe_file(root / "cat/out.mp4")
    assert (probed.video_codec, probed.width, probed.height) == ("h264", 192, 154)
    assert probed.frames == 12 + 25 + 10  # 0.5 s + 1 s + 0.4 s at 25 fps
    assert probed.audio_codec == "aac"  # the silent clip got silence, the others their sound
    assert abs(probed.duration - 1.9) < 0.15


async def test_concat_without_input_and_a_missing_fragment(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    fragments = "".join(
        f"<ConcatFragment><Url>{url(key)}</Url><Mode>Start</Mode></ConcatFragment>"
        for key in (SILENT_KEY, SILENT_KEY)
    )
    template = f"<ConcatTemplate>{fragments}<Container><Format>mkv</Format></Container>"
    body = media_body(
        "Concat", template + "</ConcatTemplate>" + output_xml("cat/two.mkv"), key=None
    )
    succeeded(await run_job(client, emu, body))
    assert probe_file(root / "cat/two.mkv").frames == 24
    missing = template.replace(SILENT_KEY, "input/nothing.mp4", 1)
    body = media_body("Concat", missing + "</ConcatTemplate>" + output_xml("cat/x.mkv"), key=None)
    detail = await run_job(client, emu, body)
    assert (detail.findtext("State"), detail.findtext("Code")) == ("Failed", "ResourceNotFound")
    assert not (root / "cat/x.mkv").exists()


@pytest.mark.parametrize(
    "fragment",
    [
        "<ConcatFragment><Url>https://nobucket-1250000000.cos.ap-guangzhou.myqcloud.com/a.mp4"
        "</Url></ConcatFragment>",
        "<ConcatFragment><Url>http://example.com/a.mp4</Url></ConcatFragment>",
        f"<ConcatFragment><Url>{url(SILENT_KEY)}</Url><Mode>Middle</Mode></ConcatFragment>",
        f"<ConcatFragment><Url>{url(SILENT_KEY)}</Url><StartTime>2</StartTime><EndTime>1"
        "</EndTime></ConcatFragment>",
    ],
    ids=["unbound bucket", "not a COS URL", "bad Mode", "end before start"],
)
async def test_concat_refusals(client: SignedClient, fragment: str) -> None:
    operation = (
        f"<ConcatTemplate>{fragment}<Container><Format>mp4</Format></Container></ConcatTemplate>"
        + output_xml("o.mp4")
    )
    assert await refusal(client, media_body("Concat", operation)) == (400, "InvalidArgument")


# ---- Segment ---------------------------------------------------------------------------------


async def test_segment_cuts_mp4_pieces_at_key_frames(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    operation = "<Segment><Format>mp4</Format><Duration>0.8</Duration></Segment>" + output_xml(
        "seg/${InputName}-${Number}.mp4"
    )
    detail = succeeded(await run_job(client, emu, media_body("Segment", operation, key=GOP_KEY)))
    keys = output_keys(detail)
    assert keys == ["seg/gop-0.mp4", "seg/gop-1.mp4", "seg/gop-2.mp4"]  # 20 + 20 + 10 frames
    pieces = [probe_file(root / key) for key in keys]
    assert [piece.frames for piece in pieces] == [20, 20, 10]
    assert all(piece.audio_codec == "aac" for piece in pieces)
    for key in keys:  # each piece starts with a key frame
        with av.open(str(root / key)) as container:
            assert next(container.demux(video=0)).is_keyframe


async def test_segment_hls_and_a_plain_remux(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    operation = "<Segment><Format>hls</Format><Duration>0.8</Duration></Segment>" + output_xml(
        "seg/live.m3u8"
    )
    detail = succeeded(await run_job(client, emu, media_body("Segment", operation, key=GOP_KEY)))
    keys = output_keys(detail)
    assert keys[0] == "seg/live.m3u8" and len(keys) >= 3
    assert sum(probe_file(root / key).frames for key in keys[1:]) == 50
    operation = (
        "<Segment><Format>ts</Format><StartTime>0.4</StartTime><EndTime>1.2</EndTime></Segment>"
        + output_xml("seg/cut.ts")
    )
    succeeded(await run_job(client, emu, media_body("Segment", operation, key=GOP_KEY)))
    probed = probe_file(root / "seg/cut.ts")
    assert probed.format_name == "mpegts" and probed.frames == 20


async def test_segment_into_a_container_that_cannot_hold_the_codec_fails(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    operation = "<Segment><Format>mp3</Format></Segment>" + output_xml("seg/a.mp3")
    detail = await run_job(client, emu, media_body("Segment", operation))
    assert (detail.findtext("State"), detail.findtext("Code")) == ("Failed", "InvalidArgument")
    assert not (root / "seg").exists()


@pytest.mark.parametrize(
    ("operation", "status"),
    [
        ("<Segment><Format>mp4</Format><Duration>5</Duration></Segment>" + output_xml("s.mp4"),
         400),
        ("<Segment><Duration>5</Duration></Segment>" + output_xml("s-${Number}.mp4"), 400),
        ("<Segment><Format>hls</Format><HlsEncrypt><IsHlsEncrypt>true</IsHlsEncrypt>"
         "<UriKey>http://127.0.0.1/key</UriKey></HlsEncrypt></Segment>" + output_xml("s.m3u8"),
         501),
    ],
    ids=["pieces without ${Number}", "no Format", "HLS encryption"],
)  # fmt: skip
async def test_segment_refusals(client: SignedClient, operation: str, status: int) -> None:
    assert (await refusal(client, media_body("Segment", operation)))[0] == status


# ---- StreamExtract ---------------------------------------------------------------------------


async def test_stream_extract_writes_one_file_per_stream(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    operation = (
        f"<Output><Region>{REGION}</Region><Bucket>{BUCKET}</Bucket>"
        "<StreamExtract><Index>0</Index><Object>ext/video.mp4</Object></StreamExtract>"
        "<StreamExtract><Index>1</Index><Object>ext/audio.aac</Object></StreamExtract></Output>"
    )
    detail = succeeded(await run_job(client, emu, media_body("StreamExtract", operation)))
    assert output_keys(detail) == ["ext/video.mp4", "ext/audio.aac"]
    video, audio = probe_file(root / "ext/video.mp4"), probe_file(root / "ext/audio.aac")
    assert (video.video_codec, video.frames, video.audio_codec) == ("h264", 25, None)
    assert (audio.video_codec, audio.audio_codec) == (None, "aac")


async def test_stream_extract_of_a_stream_the_input_lacks_fails(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    operation = (
        f"<Output><Region>{REGION}</Region><Bucket>{BUCKET}</Bucket>"
        "<StreamExtract><Index>5</Index><Object>ext/x.mp4</Object></StreamExtract></Output>"
    )
    detail = await run_job(client, emu, media_body("StreamExtract", operation))
    assert (detail.findtext("State"), detail.findtext("Code")) == ("Failed", "InvalidArgument")
    assert not (root / "ext").exists()


# ---- Watermark -------------------------------------------------------------------------------


def watermark(inner: str, pos: str = "BottomRight", loc: str = "Absolute", extra: str = "") -> str:
    return (
        f"<Watermark><Pos>{pos}</Pos><LocMode>{loc}</LocMode><Dx>8</Dx><Dy>8</Dy>{extra}"
        f"{inner}</Watermark>"
    )


async def test_image_watermark_sits_where_pos_says_until_end_time(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    image = f"<Type>Image</Type><Image><Url>{url(RED_KEY)}</Url><Mode>Original</Mode></Image>"
    operation = watermark(image, extra="<EndTime>0.5</EndTime>") + output_xml("wm/image.mp4")
    succeeded(await run_job(client, emu, media_body("Watermark", operation)))
    # 320x240 video, 32x32 mark, 8 px from the bottom-right corner: its centre is (296, 216).
    first, last = first_and_last_rgb(root / "wm/image.mp4", 296, 216)
    assert first[0] > 180 and first[1] < 80 and first[2] < 80, first
    _, plain_last = first_and_last_rgb(root / "input/a.mp4", 296, 216)
    assert all(abs(a - b) < 40 for a, b in zip(last, plain_last, strict=True)), (last, plain_last)
    probed = probe_file(root / "wm/image.mp4")
    assert (probed.width, probed.frames, probed.audio_codec) == (320, 25, "aac")


async def test_text_watermark_in_a_transcode(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    text = (
        "<Type>Text</Type><Text><Text>HI</Text><FontSize>20</FontSize>"
        "<FontColor>0x00FF00</FontColor></Text>"
    )
    operation = (
        "<Transcode><Container><Format>mp4</Format></Container><Video><Codec>H.264</Codec>"
        "</Video></Transcode>"
        + watermark(text, pos="TopLeft", loc="Relativity").replace(
            "<Dx>8</Dx><Dy>8</Dy>", "<Dx>0</Dx>"
        )
        + output_xml("wm/text.mp4")
    )
    succeeded(await run_job(client, emu, media_body("Transcode", operation)))
    # Glyph pixels are 4x4 blocks after a 4 px border; H's top-left stroke covers (4..7, 4..7).
    first, _ = first_and_last_rgb(root / "wm/text.mp4", 5, 5)
    assert first[1] > 180 and first[0] < 100, first


@pytest.mark.parametrize(
    "mark",
    [
        watermark("<Type>Image</Type>"),
        watermark("<Type>Text</Type><Text><FontSize>20</FontSize></Text>"),
        watermark("<Type>Video</Type>"),
        watermark("<Type>Image</Type><Image><Url>ftp://x/a.png</Url></Image>"),
        watermark("<Type>Text</Type><Text><Text>x</Text><FontColor>red</FontColor></Text>"),
        watermark("<Type>Text</Type><Text><Text>x</Text></Text>", pos="Middle"),
        watermark("<Type>Text</Type><Text><Text>x</Text></Text>", loc="Relative"),
        "<Watermark><Type>Text</Type><Pos>TopLeft</Pos><LocMode>Absolute</LocMode>"
        "<Text><Text>x</Text></Text></Watermark>",
    ],
    ids=["image without Image", "text without Text", "unknown Type", "image URL not COS",
         "colour not 0xRRGGBB", "unknown Pos", "unknown LocMode", "no Dx"],
)  # fmt: skip
async def test_watermark_refusals(client: SignedClient, mark: str) -> None:
    body = media_body("Watermark", mark + output_xml("wm/x.mp4"))
    assert await refusal(client, body) == (400, "InvalidArgument")


# ---- SmartCover ------------------------------------------------------------------------------


async def test_smart_cover_picks_count_pictures(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    operation = (
        "<SmartCover><Format>png</Format><Width>160</Width><Count>3</Count></SmartCover>"
        + output_xml("cover/c-${Number}.png")
    )
    detail = succeeded(await run_job(client, emu, media_body("SmartCover", operation, key=GOP_KEY)))
    keys = output_keys(detail)
    assert keys == ["cover/c-0.png", "cover/c-1.png", "cover/c-2.png"]
    for key in keys:
        probed = probe_file(root / key)
        assert (probed.video_codec, probed.width, probed.height) == ("png", 160, 128)


@pytest.mark.parametrize("node", ["<SmartCover><Format>jpg</Format></SmartCover>", ""])
async def test_smart_cover_writes_three_pictures_without_a_count(
    client: SignedClient, emu: RunningEmulator, root: Path, node: str
) -> None:
    """Count's default is 3 in CI's SmartCover job doc; the emulator wrote 1."""
    operation = node + output_xml("cover/n-${Number}.jpg")
    detail = succeeded(await run_job(client, emu, media_body("SmartCover", operation, key=GOP_KEY)))
    assert output_keys(detail) == ["cover/n-0.jpg", "cover/n-1.jpg", "cover/n-2.jpg"]


async def test_smart_cover_drops_duplicates(
    client: SignedClient, emu: RunningEmulator, root: Path
) -> None:
    operation = (
        "<SmartCover><Count>10</Count><DeleteDuplicates>true</DeleteDuplicates></SmartCover>"
        + output_xml("cover/d-${Number}.jpg")
    )
    detail = succeeded(await run_job(client, emu, media_body("SmartCover", operation, key=GOP_KEY)))
    keys = output_keys(detail)
    assert 1 <= len(keys) <= 10
    hashes = []
    for key in keys:
        with av.open(str(root / key)) as container:
            hashes.append(average_hash(next(container.decode(video=0))))
    for i, first in enumerate(hashes):
        for second in hashes[i + 1 :]:
            # Re-encoding as JPEG moves a hash by a bit or two; chosen ones were > 6 apart.
            assert bin(first ^ second).count("1") > DUPLICATE_BITS - 3


@pytest.mark.parametrize(
    "operation",
    [
        "<SmartCover><Count>11</Count></SmartCover>" + output_xml("c-${Number}.jpg"),
        "<SmartCover><Format>gif</Format></SmartCover>" + output_xml("c-${Number}.jpg"),
        "<SmartCover/>" + output_xml("c.jpg"),
    ],
    ids=["count above 10", "bad format", "no ${Number}"],
)
async def test_smart_cover_refusals(client: SignedClient, operation: str) -> None:
    assert await refusal(client, media_body("SmartCover", operation)) == (400, "InvalidArgument")
