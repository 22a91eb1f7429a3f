"""MediaTemplateService end to end through the emulator: every typed kind goes out in CI's
request shape and comes back decoded into its typed container; the rest stays lossless."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from lxml import etree

from ci_emulator.server import RunningEmulator
from gateway._proto import job_kinds_pb2 as kinds
from gateway._proto import media_pb2, service_pb2, templates_pb2, xml_pb2
from gateway.api.server import start_gateway
from gateway.config.settings import Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.resources import template_wire
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.integration.helpers import rich_error
from tests.integration.kinds_support import FAST, outputs, run
from tests.resources.conftest import Stubs, platform_access, stubs_on

T = templates_pb2.MediaTemplate

# One valid template of each typed kind, as a caller writes it (no tag: the container says it).
TYPED: dict[str, T] = {
    "Transcode": T(
        name="mp4-720p",
        trans_tpl=kinds.Transcode(
            container=kinds.Container(format="mp4"),
            video=kinds.TranscodeVideo(codec="H.264", width="1280", fps="30"),
            audio=kinds.TranscodeAudio(codec="aac", samplerate="44100"),
            trans_config=kinds.TransConfig(adj_dar_method="scale"),
        ),
    ),
    "TranscodePro": T(
        name="xavc",
        trans_pro_tpl=templates_pb2.TranscodePro(
            container=kinds.Container(format="mxf"),
            video=templates_pb2.TranscodeProVideo(
                codec="xavc",
                profile="XAVC-HD_422_10bit",
                width="1920",
                height="1080",
                interlaced="true",
                fps="30000/1001",
            ),
            audio=templates_pb2.TranscodeProAudio(codec="pcm_s24le"),
        ),
    ),
    "Snapshot": T(name="thumbs", snapshot=kinds.Snapshot(mode="Interval", count="5")),
    "Animation": T(
        name="gif",
        animation=kinds.Animation(
            container=kinds.Container(format="gif"), video=kinds.AnimationVideo(codec="gif")
        ),
    ),
    "Concat": T(
        name="concat",
        concat_template=kinds.ConcatTemplate(container=kinds.Container(format="mp4")),
    ),
    "Watermark": T(
        name="logo",
        watermark=kinds.Watermark(
            type="Text",
            pos="TopLeft",
            loc_mode="Absolute",
            dx="10",
            text=kinds.WatermarkText(text="hi"),
        ),
    ),
    "VideoProcess": T(
        name="vivid",
        video_process=kinds.VideoProcess(color_enhance=kinds.ColorEnhance(enable="true")),
    ),
    "VideoMontage": T(name="montage", video_montage=kinds.VideoMontage(duration="10")),
    "VoiceSeparate": T(name="voice", voice_separate=kinds.VoiceSeparate(audio_mode="IsAudio")),
    "SuperResolution": T(
        name="sr", super_resolution=kinds.SuperResolution(resolution="sdtohd", version="Enhance")
    ),
    "SmartCover": T(name="cover", smart_cover=kinds.SmartCover(format="jpg", count="3")),
    "VideoEnhance": T(
        name="enhance",
        video_enhance=kinds.VideoEnhance(
            super_resolution=kinds.SuperResolution(resolution="sdtohd")
        ),
    ),
}


def test_every_typed_kind_has_an_example() -> None:
    assert set(TYPED) == set(template_wire.containers())


@pytest.mark.parametrize("tag", sorted(TYPED))
async def test_each_typed_kind_round_trips_through_ci(
    stubs: Stubs, emulator: RunningEmulator, tag: str
) -> None:
    sent = TYPED[tag]
    (container,) = template_wire.containers_set(sent)
    created = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(template=sent)
    )
    template = created.template
    assert (template.tag, template.name, template.category) == (tag, sent.name, "Custom")
    assert template.template_id.startswith("t1") and template.bucket_id == BUCKET
    assert getattr(template, container.field) == getattr(sent, container.field)
    assert not template.extra_nodes  # nothing CI answered was left untyped
    assert created.request_id

    described = await stubs.templates.DescribeMediaTemplates(
        templates_pb2.DescribeMediaTemplatesRequest(template_ids=[template.template_id])
    )
    assert [t.template_id for t in described.template_list] == [template.template_id]
    assert getattr(described.template_list[0], container.field) == getattr(sent, container.field)


async def test_unknown_template_ids_are_named(stubs: Stubs) -> None:
    """DescribeMediaTemplates' samples answer the ids CI does not know in
    `<NonExistTIDs><TemplateId>…</TemplateId></NonExistTIDs>`: the caller gets them typed."""
    created = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(template=TYPED["Snapshot"])
    )
    known = created.template.template_id
    unknown = ["t1" + "0" * 32, "t1" + "f" * 32]
    described = await stubs.templates.DescribeMediaTemplates(
        templates_pb2.DescribeMediaTemplatesRequest(template_ids=[unknown[0], known, unknown[1]])
    )
    assert [t.template_id for t in described.template_list] == [known]
    assert list(described.non_exist_tids.template_id) == unknown
    assert not described.extra_nodes
    every_one_known = await stubs.templates.DescribeMediaTemplates(
        templates_pb2.DescribeMediaTemplatesRequest(template_ids=[known])
    )
    assert not every_one_known.HasField("non_exist_tids")


async def test_the_request_puts_parameters_where_ci_wants_them(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """Transcode's parameters go straight under <Request>; Snapshot's in <Snapshot>: the
    emulator, which reads CI's request shape on its own, stores both whole."""
    for tag in ("Transcode", "Snapshot"):
        created = await stubs.templates.CreateMediaTemplate(
            templates_pb2.CreateMediaTemplateRequest(template=TYPED[tag])
        )
        stored = emulator.state.resources.templates.get(BUCKET, created.template.template_id)
        assert stored is not None and stored.tag == tag
        names = [name for name, _ in stored.params]
        expected = ["Container", "Video", "Audio", "TransConfig"] if tag == "Transcode" else None
        assert names == (expected or ["Mode", "Count"])


async def test_an_untyped_kind_is_sent_and_kept_losslessly(stubs: Stubs) -> None:
    parameters = [
        xml_pb2.XmlNode(name="Mode", text="Asyc"),
        xml_pb2.XmlNode(name="Codec", text="mp3"),
        xml_pb2.XmlNode(name="VoiceType", text="ruxue"),
    ]
    created = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(
            template=T(tag="Tts", name="voice"), parameters=parameters
        )
    )
    (container,) = created.template.extra_nodes
    assert container.name == "TtsTpl"
    assert [(n.name, n.text) for n in container.children] == [
        ("Mode", "Asyc"),
        ("Codec", "mp3"),
        ("VoiceType", "ruxue"),
    ]


async def test_describe_filters_and_pages(stubs: Stubs) -> None:
    ids = []
    for tag in ("Transcode", "Snapshot", "Animation"):
        created = await stubs.templates.CreateMediaTemplate(
            templates_pb2.CreateMediaTemplateRequest(template=TYPED[tag])
        )
        ids.append(created.template.template_id)
    by_tag = await stubs.templates.DescribeMediaTemplates(
        templates_pb2.DescribeMediaTemplatesRequest(tag="Snapshot")
    )
    assert [t.template_id for t in by_tag.template_list] == [ids[1]]
    page = await stubs.templates.DescribeMediaTemplates(
        templates_pb2.DescribeMediaTemplatesRequest(page_number=2, page_size=2)
    )
    assert (page.total_count, [t.template_id for t in page.template_list]) == ("3", [ids[2]])
    by_name = await stubs.templates.DescribeMediaTemplates(
        templates_pb2.DescribeMediaTemplatesRequest(name="thumb")
    )
    assert [t.name for t in by_name.template_list] == ["thumbs"]
    official = await stubs.templates.DescribeMediaTemplates(
        templates_pb2.DescribeMediaTemplatesRequest(
            category=templates_pb2.TEMPLATE_CATEGORY_OFFICIAL, tag="Transcode"
        )
    )
    (preset,) = official.template_list
    assert preset.category == "Official" and preset.trans_tpl.container.format == "mp4"


async def test_update_replaces_and_delete_removes(stubs: Stubs, emulator: RunningEmulator) -> None:
    created = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(template=TYPED["Transcode"])
    )
    template_id = created.template.template_id
    changed = T()
    changed.CopyFrom(TYPED["Transcode"])
    changed.trans_tpl.video.width = "1920"
    changed.name = "mp4-1080p"
    updated = await stubs.templates.UpdateMediaTemplate(
        templates_pb2.UpdateMediaTemplateRequest(template_id=template_id, template=changed)
    )
    assert (updated.template.name, updated.template.trans_tpl.video.width) == ("mp4-1080p", "1920")
    assert updated.template.tag == "Transcode"

    deleted = await stubs.templates.DeleteMediaTemplate(
        templates_pb2.DeleteMediaTemplateRequest(template_id=template_id)
    )
    assert deleted.template_id == template_id
    assert emulator.state.resources.templates.get(BUCKET, template_id) is None
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.templates.DeleteMediaTemplate(
            templates_pb2.DeleteMediaTemplateRequest(template_id=template_id)
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # CI's answer, relayed


def _pro(
    change: Callable[[templates_pb2.TranscodePro], object],
) -> templates_pb2.CreateMediaTemplateRequest:
    """A create of the valid TranscodePro template, `change`d."""
    template = T()
    template.CopyFrom(TYPED["TranscodePro"])
    change(template.trans_pro_tpl)
    return templates_pb2.CreateMediaTemplateRequest(template=template)


async def test_bad_templates_are_refused_field_by_field(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    bodies: list[tuple[str, str, bytes]] = []
    emulator.state.bodies = bodies
    two = T()
    two.CopyFrom(TYPED["Transcode"])
    two.snapshot.mode = "Interval"
    cases = {
        "template": templates_pb2.CreateMediaTemplateRequest(template=two),
        "template.name": templates_pb2.CreateMediaTemplateRequest(
            template=T(name="has space", snapshot=kinds.Snapshot(mode="Interval"))
        ),
        "template.trans_tpl": templates_pb2.CreateMediaTemplateRequest(
            template=T(tag="Snapshot", name="x", trans_tpl=TYPED["Transcode"].trans_tpl)
        ),
        "template.tag": templates_pb2.CreateMediaTemplateRequest(template=T(name="x")),
        "parameters": templates_pb2.CreateMediaTemplateRequest(
            template=TYPED["Snapshot"], parameters=[xml_pb2.XmlNode(name="Mode", text="x")]
        ),
        # A kind's own rules, as for its node in a job (kind_rules; catalogue §1.3, A.12).
        "template.trans_tpl.container.format": templates_pb2.CreateMediaTemplateRequest(
            template=T(
                name="x", trans_tpl=kinds.Transcode(video=kinds.TranscodeVideo(codec="H.264"))
            )
        ),
        "template.animation.video.codec": templates_pb2.CreateMediaTemplateRequest(
            template=T(
                name="x",
                animation=kinds.Animation(
                    container=kinds.Container(format="gif"),
                    video=kinds.AnimationVideo(codec="H.264"),
                ),
            )
        ),
        "template.super_resolution.resolution": templates_pb2.CreateMediaTemplateRequest(
            template=T(name="x", super_resolution=kinds.SuperResolution(resolution="4k"))
        ),
        "template.snapshot.mode": templates_pb2.CreateMediaTemplateRequest(
            template=T(name="x", snapshot=kinds.Snapshot(mode="Random"))
        ),
        # Concat's Container { Format } is "是" in CI's Concat template and job docs.
        "template.concat_template.container.format": templates_pb2.CreateMediaTemplateRequest(
            template=T(name="x", concat_template=kinds.ConcatTemplate(index="0"))
        ),
        "template.animation.container.format": templates_pb2.CreateMediaTemplateRequest(
            template=T(
                name="x",
                animation=kinds.Animation(
                    container=kinds.Container(format="mp4"),
                    video=kinds.AnimationVideo(codec="gif"),
                ),
            )
        ),
        # The template-only rules (kind_rules.TEMPLATE_RULES): AudioMode is "是" in the
        # VoiceSeparate template doc; TranscodePro's required nodes and formats (A.12).
        "template.voice_separate.audio_mode": templates_pb2.CreateMediaTemplateRequest(
            template=T(
                name="x",
                voice_separate=kinds.VoiceSeparate(audio_config=kinds.AudioConfig(codec="aac")),
            )
        ),
        "template.trans_pro_tpl.video.profile": _pro(lambda pro: pro.video.ClearField("profile")),
        "template.trans_pro_tpl.container.format": _pro(
            lambda pro: setattr(pro.container, "format", "mp4")
        ),
        "template.trans_pro_tpl.audio.codec": _pro(
            lambda pro: pro.audio.CopyFrom(templates_pb2.TranscodeProAudio(remove="false"))
        ),
    }
    for field, request in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.templates.CreateMediaTemplate(request)
        error = rich_error(caught.value)
        assert error.code is grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in error.violations, (field, error.violations)
    assert bodies == []  # none reached CI


async def test_a_watermark_template_needs_what_a_jobs_watermark_needs(stubs: Stubs) -> None:
    """Type, Pos, LocMode and Dx are required in a watermark template (catalogue §1.3, A.3, from
    the watermark template docs): one without LocMode and Dx never reaches CI, which would refuse
    it (the emulator too, tests/ci_emulator/test_templates.py)."""
    partial = T(
        name="logo",
        watermark=kinds.Watermark(type="Text", pos="TopLeft", text=kinds.WatermarkText(text="hi")),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.templates.CreateMediaTemplate(
            templates_pb2.CreateMediaTemplateRequest(template=partial)
        )
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert {"template.watermark.loc_mode", "template.watermark.dx"} <= set(error.violations)


async def test_a_job_naming_an_unknown_template_is_refused_by_ci(stubs: Stubs) -> None:
    request = media_pb2.Request(
        tag="Transcode",
        input=media_pb2.Input(object=SAMPLE_KEY),
        operation=media_pb2.Operation(
            template_id="t1nothere",
            output=kinds.Output(bucket=BUCKET, region=REGION, object="out.mp4"),
        ),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.jobs.SubmitMediaJob(service_pb2.SubmitMediaJobRequest(request=request))
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "template t1nothere does not exist" in error.message


@pytest.fixture
async def fast_stubs(settings: Settings, credentials: Credentials) -> AsyncIterator[Stubs]:
    """A platform gateway whose WaitMediaJob answers soon after a job ends."""
    running = await start_gateway(
        replace(settings, tracking=FAST), StaticCredentialsProvider(credentials),
        access=platform_access(),
    )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield stubs_on(channel)
    finally:
        await running.stop(grace_s=0)


SMALL_MP4 = T(
    name="mp4-small",
    trans_tpl=kinds.Transcode(
        container=kinds.Container(format="mp4"),
        video=kinds.TranscodeVideo(codec="H.264", width="160"),
        audio=kinds.TranscodeAudio(codec="aac"),
    ),
)


async def test_a_transcode_by_template_id_runs_with_the_templates_parameters(
    fast_stubs: Stubs, emulator: RunningEmulator, bucket_dir: Path
) -> None:
    created = await fast_stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(template=SMALL_MP4)
    )
    request = media_pb2.Request(
        tag="Transcode",
        input=media_pb2.Input(object=SAMPLE_KEY),
        operation=media_pb2.Operation(
            template_id=created.template.template_id,
            # Inline parameters the template also sets lose: the template wins, as in CI.
            transcode=kinds.Transcode(video=kinds.TranscodeVideo(width="640")),
            output=kinds.Output(bucket=BUCKET, region=REGION, object="out/small.mp4"),
        ),
    )
    job = await run(fast_stubs.jobs, request)
    assert job.operation.template_name == "mp4-small"
    # JobsDetail echoes the Operation as sent (CI's echo of the request), the output is the
    # template's.
    assert job.operation.template_id == created.template.template_id
    assert job.operation.transcode.video.width == "640"
    done = outputs(job, bucket_dir)
    assert done.keys == ["out/small.mp4"]
    assert done.probe("out/small.mp4").width == 160


async def test_a_stream_kept_without_parameters_reaches_ci_and_the_output(
    fast_stubs: Stubs, emulator: RunningEmulator, bucket_dir: Path
) -> None:
    """`video {}` / `audio {}`: keep the stream, every parameter CI's default. CI removes a
    stream whose node is absent (catalogue A.3/A.4), so they go out as `<Video/>` and
    `<Audio/>`: the template keeps both, reads back with both, and a job by it writes both."""
    streams = T(
        name="mp4-defaults",
        trans_tpl=kinds.Transcode(
            container=kinds.Container(format="mp4"),
            video=kinds.TranscodeVideo(),
            audio=kinds.TranscodeAudio(),
        ),
    )
    created = await fast_stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(template=streams)
    )
    template_id = created.template.template_id
    stored = emulator.state.resources.templates.get(BUCKET, template_id)
    assert stored is not None
    assert [name for name, _ in stored.params] == ["Container", "Video", "Audio"]
    assert created.template.trans_tpl == streams.trans_tpl
    request = media_pb2.Request(
        tag="Transcode",
        input=media_pb2.Input(object=SAMPLE_KEY),
        operation=media_pb2.Operation(
            template_id=template_id,
            output=kinds.Output(bucket=BUCKET, region=REGION, object="out/kept.mp4"),
        ),
    )
    probed = outputs(await run(fast_stubs.jobs, request), bucket_dir).probe("out/kept.mp4")
    assert probed.video_codec is not None and probed.audio_codec is not None


async def test_a_wrapped_kind_with_every_parameter_defaulted_is_sent(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """`snapshot {}` in a template: a Snapshot template, every parameter CI's default. Its
    parameters travel in a `<Snapshot>` node of their own, sent even empty: without it CI has
    no Snapshot parameters at all to make the template of."""
    created = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(
            template=T(name="defaults", snapshot=kinds.Snapshot())
        )
    )
    assert created.template.tag == "Snapshot"
    assert created.template.HasField("snapshot")
    stored = emulator.state.resources.templates.get(BUCKET, created.template.template_id)
    assert stored is not None and stored.tag == "Snapshot"


# ---- kinds without a container: read back, sent back (templates as code) ---------------------


def node(name: str, text: str = "", *children: xml_pb2.XmlNode) -> xml_pb2.XmlNode:
    return xml_pb2.XmlNode(name=name, text=text, children=children)


# Each untyped kind's create `parameters`, as CI's request has them under <Request> (catalogue
# §2.2, A.12): Tts and HighSpeedHd straight under it, the others in a node named as the kind.
UNTYPED: dict[str, list[xml_pb2.XmlNode]] = {
    "Tts": [node("Mode", "Asyc"), node("Codec", "mp3"), node("VoiceType", "ruxue")],
    "HighSpeedHd": [
        node("Container", "", node("Format", "mp4")),
        node("Video", "", node("Codec", "H.264"), node("Width", "1280")),
    ],
    "PicProcess": [node("PicProcess", "", node("IsPicInfo", "true"), node("ProcessRule", "x"))],
    "SpeechRecognition": [
        node("SpeechRecognition", "", node("EngineModelType", "16k_zh"), node("ChannelNum", "1"))
    ],
    "NoiseReduction": [node("NoiseReduction", "", node("Format", "wav"))],
    "VideoTargetRec": [node("VideoTargetRec", "", node("Body", "true"), node("Pet", "false"))],
    "ImageOCR": [node("ImageOCR", "", node("Type", "general"))],
}


def test_every_untyped_kind_has_an_example() -> None:
    assert set(UNTYPED) == set(template_wire.UNTYPED)


@pytest.mark.parametrize("tag", sorted(UNTYPED))
async def test_an_untyped_template_read_back_and_sent_back_unchanged_round_trips(
    stubs: Stubs, emulator: RunningEmulator, tag: str
) -> None:
    """The templates-as-code flow: describe a template, change what it says, update it with the
    template as read. An untyped kind's parameters come back in `extra_nodes` (`<TtsTpl>`,
    `<PicProcess>`, ...), and were left out of the update: CI then refused a wrapped kind
    (`PicProcess is required`) and emptied Tts's and HighSpeedHd's parameters."""
    created = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(
            template=T(tag=tag, name="as-read"), parameters=UNTYPED[tag]
        )
    )
    described = await stubs.templates.DescribeMediaTemplates(
        templates_pb2.DescribeMediaTemplatesRequest(template_ids=[created.template.template_id])
    )
    (read,) = described.template_list
    (container,) = read.extra_nodes
    assert container.name == template_wire.UNTYPED[tag].answer
    at_root = template_wire.UNTYPED[tag].wrapper is None
    assert list(container.children) == list(UNTYPED[tag] if at_root else UNTYPED[tag][0].children)

    # Sent back exactly as read (output-only fields and all), then with one value changed.
    same = await stubs.templates.UpdateMediaTemplate(
        templates_pb2.UpdateMediaTemplateRequest(template_id=read.template_id, template=read)
    )
    assert list(same.template.extra_nodes) == list(read.extra_nodes)
    changed = T()
    changed.CopyFrom(read)
    leaf = changed.extra_nodes[0].children[0]
    while leaf.children:  # bounded: the example trees are two levels deep
        leaf = leaf.children[0]
    leaf.text = "changed"
    updated = await stubs.templates.UpdateMediaTemplate(
        templates_pb2.UpdateMediaTemplateRequest(template_id=read.template_id, template=changed)
    )
    assert list(updated.template.extra_nodes) == list(changed.extra_nodes)
    again = await stubs.templates.DescribeMediaTemplates(
        templates_pb2.DescribeMediaTemplatesRequest(template_ids=[read.template_id])
    )
    assert list(again.template_list[0].extra_nodes) == list(changed.extra_nodes)

    # And a create from a template as read (a copy into another name) makes the same template.
    copy = T()
    copy.CopyFrom(changed)
    copy.name = "copy"
    made = await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(template=copy)
    )
    assert list(made.template.extra_nodes) == list(changed.extra_nodes)


async def test_a_typed_templates_unknown_nodes_are_sent_beside_its_tag_and_name(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    """Nodes of `<Template>` no field names (newer than the protos) are written back where the
    codec writes a template's own nodes: under <Request>, beside Tag and Name."""
    bodies: list[tuple[str, str, bytes]] = []
    emulator.state.bodies = bodies
    template = T()
    template.CopyFrom(TYPED["Snapshot"])
    template.extra_nodes.append(node("Description", "thumbnails for the catalogue"))
    await stubs.templates.CreateMediaTemplate(
        templates_pb2.CreateMediaTemplateRequest(template=template)
    )
    ((_, _, body),) = bodies
    sent = etree.fromstring(body)
    assert [child.tag for child in sent] == ["Tag", "Name", "Snapshot", "Description"]
    assert sent.findtext("Description") == "thumbnails for the catalogue"


async def test_an_untyped_kinds_parameters_are_given_once_and_where_they_fit(
    stubs: Stubs, emulator: RunningEmulator
) -> None:
    bodies: list[tuple[str, str, bytes]] = []
    emulator.state.bodies = bodies
    tts = node("TtsTpl", "", node("Mode", "Asyc"))
    cases = {
        # The same parameters twice: in `parameters` and as read back.
        "parameters": templates_pb2.CreateMediaTemplateRequest(
            template=T(tag="Tts", name="x", extra_nodes=[tts]), parameters=UNTYPED["Tts"]
        ),
        "template.extra_nodes[1]": templates_pb2.CreateMediaTemplateRequest(
            template=T(tag="Tts", name="x", extra_nodes=[tts, tts])
        ),
        # Another kind's parameters, which CI would take for nothing of this kind's.
        "template.extra_nodes[0].name": templates_pb2.CreateMediaTemplateRequest(
            template=T(tag="PicProcess", name="x", extra_nodes=[tts])
        ),
        # Tts's go straight under <Request>: one named `Name` would be a second <Name>, and the
        # container's own text would have nowhere to go.
        "template.extra_nodes[0].children[1].name": templates_pb2.CreateMediaTemplateRequest(
            template=T(
                tag="Tts",
                name="x",
                extra_nodes=[node("TtsTpl", "", node("Mode", "Asyc"), node("Name", "y"))],
            )
        ),
        "template.extra_nodes[0].text": templates_pb2.CreateMediaTemplateRequest(
            template=T(tag="Tts", name="x", extra_nodes=[node("TtsTpl", "loose text")])
        ),
    }
    for field, request in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.templates.CreateMediaTemplate(request)
        error = rich_error(caught.value)
        assert error.code is grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in error.violations, (field, error.violations)
    transcode = T()
    transcode.CopyFrom(TYPED["Transcode"])
    transcode.extra_nodes.append(tts)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.templates.CreateMediaTemplate(
            templates_pb2.CreateMediaTemplateRequest(template=transcode)
        )
    assert "template.extra_nodes[0].name" in rich_error(caught.value).violations
    assert bodies == []  # none reached CI
