"""Snapshot and Animation jobs: pictures at the times each Mode picks, sprite sheets, `${Number}`
naming, GIF and WebP animations; outputs checked with PyAV, not with the emulator's probe."""

from __future__ import annotations

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


def snapshot(inner: str, key: str | None = "snap/${InputName}-${Number}.jpg", **out: str) -> str:
    return f"<Snapshot>{inner}</Snapshot>{output_xml(key, **out)}"


@pytest.mark.parametrize(
    ("inner", "count"),
    [
        ("<Mode>Interval</Mode><Start>0</Start><TimeInterval>0.3</TimeInterval>", 4),
        ("<Mode>Interval</Mode><TimeInterval>0.3</TimeInterval><Count>2</Count>", 2),
        ("<Mode>Average</Mode><Count>5</Count>", 5),
        ("<Mode>KeyFrame</Mode>", 1),  # the sample clip has one key frame
    ],
    ids=["interval", "interval-count", "average", "keyframe"],
)
async def test_snapshot_modes(
    client: SignedClient, emu: RunningEmulator, inner: str, count: int
) -> None:
    body = media_body("Snapshot", snapshot(inner + "<Width>160</Width>"))
    detail = succeeded(await run_job(client, emu, body))
    keys = output_keys(detail)
    assert keys == [f"snap/a-{number}.jpg" for number in range(count)]
    assert detail.findtext("Operation/MediaResult/OutputFile/ObjectPrefix") == "snap/"
    root = emu.state.config.buckets[0].root
    for key in keys:
        probed = probe_file(root / key)
        assert (probed.video_codec, probed.width, probed.height) == ("mjpeg", 160, 120)


async def test_sprite_sheets_tile_the_snapshots(client: SignedClient, emu: RunningEmulator) -> None:
    inner = (
        "<Mode>Average</Mode><Count>5</Count><SnapshotOutMode>SnapshotAndSprite</SnapshotOutMode>"
        "<SpriteSnapshotConfig><CellWidth>64</CellWidth><CellHeight>48</CellHeight>"
        "<Columns>2</Columns><Lines>2</Lines><Margin>4</Margin><Padding>2</Padding>"
        "<Color>Black</Color></SpriteSnapshotConfig>"
    )
    body = media_body("Snapshot", snapshot(inner, SpriteObject="sprite/s-${Number}.jpg"))
    detail = succeeded(await run_job(client, emu, body))
    assert len(output_keys(detail)) == 5
    sheets = output_keys(detail, "SpriteOutputFile")
    assert sheets == ["sprite/s-0.jpg", "sprite/s-1.jpg"]  # 5 cells, 4 per sheet
    probed = probe_file(emu.state.config.buckets[0].root / sheets[0])
    # 2 cells of 64 + padding 2 between + margin 4 each side.
    assert (probed.width, probed.height) == (2 * 64 + 2 + 2 * 4, 2 * 48 + 2 + 2 * 4)


async def test_only_sprite_needs_no_object(client: SignedClient, emu: RunningEmulator) -> None:
    inner = (
        "<Mode>Interval</Mode><TimeInterval>0.5</TimeInterval>"
        "<SnapshotOutMode>OnlySprite</SnapshotOutMode><SpriteSnapshotConfig><Columns>3</Columns>"
        "<Lines>1</Lines><ScaleMethod>MaxWHScaleAndPad</ScaleMethod><CellWidth>100</CellWidth>"
        "<CellHeight>100</CellHeight></SpriteSnapshotConfig>"
    )
    body = media_body("Snapshot", snapshot(inner, None, SpriteObject="sp-${Number}.jpg"))
    detail = succeeded(await run_job(client, emu, body))
    assert output_keys(detail, "SpriteOutputFile") == ["sp-0.jpg"]
    probed = probe_file(emu.state.config.buckets[0].root / "sp-0.jpg")
    assert (probed.width, probed.height) == (300, 100)


async def test_is_check_count_fails_a_short_job(client: SignedClient, emu: RunningEmulator) -> None:
    inner = "<Mode>Interval</Mode><TimeInterval>0.5</TimeInterval><Count>9</Count>"
    detail = await run_job(
        client, emu, media_body("Snapshot", snapshot(inner + "<IsCheckCount>true</IsCheckCount>"))
    )
    assert (detail.findtext("State"), detail.findtext("Code")) == ("Failed", "InvalidArgument")
    assert not (emu.state.config.buckets[0].root / "snap").exists()


SNAPSHOT_REFUSALS = [
    ("no ${Number}", snapshot("<Count>2</Count>", "snap/a.jpg")),
    ("unknown mode", snapshot("<Mode>Random</Mode>")),
    ("Average without Count", snapshot("<Mode>Average</Mode>")),
    ("count zero", snapshot("<Count>0</Count>")),
    ("sprite without config", snapshot(
        "<SnapshotOutMode>OnlySprite</SnapshotOutMode>", None, SpriteObject="s-${Number}.jpg")),
    ("sprite without SpriteObject", snapshot(
        "<SnapshotOutMode>SnapshotAndSprite</SnapshotOutMode><SpriteSnapshotConfig>"
        "<Columns>2</Columns><Lines>2</Lines></SpriteSnapshotConfig>")),
    ("bad colour", snapshot(
        "<SnapshotOutMode>OnlySprite</SnapshotOutMode><SpriteSnapshotConfig><Columns>2</Columns>"
        "<Lines>2</Lines><Color>#12</Color></SpriteSnapshotConfig>", None,
        SpriteObject="s-${Number}.jpg")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "operation"), SNAPSHOT_REFUSALS, ids=[r[0] for r in SNAPSHOT_REFUSALS]
)
async def test_snapshot_refusals(client: SignedClient, case: str, operation: str) -> None:
    assert await refusal(client, media_body("Snapshot", operation)) == (400, "InvalidArgument")


@pytest.mark.parametrize(
    ("codec", "inner", "frames"),
    [
        ("gif", "<Width>160</Width><AnimateFramesPerSecond>5</AnimateFramesPerSecond>", 5),
        ("gif", "<Height>128</Height><AnimateTimeIntervalOfFrame>0.5</AnimateTimeIntervalOfFrame>",
         2),
        ("webp", "<Width>160</Width><Fps>10</Fps><Quality>60</Quality>", 10),
        ("gif", "<Width>160</Width><AnimateOnlyKeepKeyFrame>true</AnimateOnlyKeepKeyFrame>", 1),
    ],
    ids=["gif-fps", "gif-interval", "webp", "gif-keyframes"],
)  # fmt: skip
async def test_animation(
    client: SignedClient, emu: RunningEmulator, codec: str, inner: str, frames: int
) -> None:
    operation = (
        f"<Animation><Container><Format>{codec}</Format></Container><Video><Codec>{codec}</Codec>"
        f"{inner}</Video></Animation>{output_xml('anim/${InputName}.${ext}')}"
    )
    detail = succeeded(await run_job(client, emu, media_body("Animation", operation)))
    assert output_keys(detail) == [f"anim/a.{codec}"]
    path = emu.state.config.buckets[0].root / f"anim/a.{codec}"
    if codec == "gif":  # FFmpeg decodes animated GIF; its WebP decoder reads one frame only
        probed = probe_file(path)
        assert probed.video_codec == "gif" and probed.frames == frames
        assert probed.width in (160, 170)
    else:
        assert path.read_bytes()[:4] == b"RIFF" and b"ANIM" in path.read_bytes()[:64]
        assert path.read_bytes().count(b"ANMF") == frames


async def test_animation_time_interval(client: SignedClient, emu: RunningEmulator) -> None:
    operation = (
        "<Animation><Video><Codec>gif</Codec><Width>128</Width><Fps>10</Fps></Video>"
        "<TimeInterval><Start>0.5</Start><Duration>0.3</Duration></TimeInterval></Animation>"
        + output_xml("anim/short.gif")
    )
    succeeded(await run_job(client, emu, media_body("Animation", operation)))
    assert probe_file(emu.state.config.buckets[0].root / "anim/short.gif").frames == 3


@pytest.mark.parametrize(
    "operation",
    [
        "<Animation><Video><Width>160</Width></Video></Animation>" + output_xml("a.gif"),
        "<Animation><Video><Codec>png</Codec></Video></Animation>" + output_xml("a.gif"),
        "<Animation><Container><Format>webp</Format></Container><Video><Codec>gif</Codec></Video>"
        "</Animation>" + output_xml("a.gif"),
        "<Animation><Video><Codec>gif</Codec><Quality>0</Quality></Video></Animation>"
        + output_xml("a.gif"),
    ],
    ids=["no codec", "codec not gif or webp", "format and codec differ", "quality 0"],
)
async def test_animation_refusals(client: SignedClient, operation: str) -> None:
    assert await refusal(client, media_body("Animation", operation)) == (400, "InvalidArgument")
