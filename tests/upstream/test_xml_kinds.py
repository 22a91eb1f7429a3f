"""The typed job kinds on the wire: exact node names against the catalogue, and losslessness.

- Golden names: `CATALOGUE` copies, per message, the node names of the job catalogue's
  appendix A (/work/shared/ci-job-catalogue.md, "names exactly as on the wire"); the names the
  codec derives from the descriptors must be exactly those, case included (`SDRtoHDR`,
  `ProduceID`, `CIParam`, `AIGCMetadata`, `IsHdr2Sdr` come from the `(xml).name` option).
- Property tests (hypothesis), over every message CI's XML uses: any message encodes and
  decodes back to itself, unknown nodes included; and unknown nodes injected anywhere into an
  encoded document come back out of decode + encode, node for node.
"""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING, Any

import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from ci_emulator.server import RunningEmulator
from gateway._proto import (
    job_kinds_pb2,
    media_pb2,
    service_pb2,
    templates_pb2,
    workflows_pb2,
    xml_pb2,
)
from gateway.api import kind_rules
from gateway.config.settings import Settings
from gateway.credentials import Credentials
from gateway.model import Target
from gateway.resources import template_wire
from gateway.upstream.retry import Deadline
from tests.conftest import BUCKET, REGION, SAMPLE_KEY, ci_client

if TYPE_CHECKING:  # descriptors reached through DESCRIPTOR are typed as upb's too
    from google._upb import _message as _upb
from gateway.upstream.xml_codec import (
    decode,
    encode,
    enum_wire_name,
    parse_document,
    typed_field_for,
    unknown_nodes_field,
    wire_name,
)

# --- golden node names ---------------------------------------------------------------------

# message -> its nodes, as the catalogue's appendix spells them (A.0-A.11).
CATALOGUE: dict[str, str] = {
    "Request": "Tag Input Operation QueueId QueueType CallBackFormat CallBackType CallBack "
    "CallBackMqConfig CallBackKafkaConfig",
    # A.0's multi-operation form: no Tag at the top, Operation repeated.
    "MultiOperationRequest": "Input Operation QueueId QueueType CallBackFormat CallBackType "
    "CallBack CallBackMqConfig CallBackKafkaConfig",
    "Input": "Object Url Vod Lang Type BasicType CosHeaders BucketId Region",
    "Vod": "FileId SubAppId",
    "CosHeader": "Key Value",
    "CallBackMqConfig": "MqRegion MqMode MqName",
    "CallBackKafkaConfig": "Region InstanceId Topic",
    "JobsDetail": "Code Message JobId Tag State Progress SubTag CreationTime StartTime EndTime "
    "QueueId Input Operation Workflow",
    "JobWorkflow": "Name RunId WorkflowId WorkflowName",
    "JobCallback": "EventName JobsDetail",
    "Operation": "Tag TemplateId TemplateName TranscodeTemplateId WatermarkTemplateId Watermark "
    "DigitalWatermark Output UserData JobLevel FreeTranscode CustomId SnapshotPrefix MediaInfo "
    "MediaResult Transcode RemoveWatermark Subtitles Snapshot Animation ConcatTemplate Segment "
    "SmartCover VoiceSeparate VideoMontage ExtractDigitalWatermark SDRtoHDR VideoProcess "
    "SuperResolution VideoEnhance",
    "MediaResult": "OutputFile",
    "OutputFile": "Bucket Region ObjectPrefix ObjectName Md5Info SpriteOutputFile",
    "Md5Info": "ObjectName Md5",
    "Output": "Region Bucket Object SpriteObject AuObject BassObject DrumObject StreamExtract "
    "Force",
    "StreamExtract": "Index Object",
    "Container": "Format ClipConfig",
    "ClipConfig": "Duration",
    "TimeInterval": "Start Duration",
    "TranscodeVideo": "Codec Width Height Fps Remove Profile Bitrate Crf Gop Preset Bufsize "
    "Maxrate HlsTsTime DashSegment Pixfmt LongShortMode Rotate ScanMode Interlaced Quality Roi "
    "Crop AnimateOnlyKeepKeyFrame AnimateTimeIntervalOfFrame AnimateFramesPerSecond StdExtInfo "
    "ColorParam",
    "ColorParam": "ColorRange ColorSpace ColorTrc ColorPrimaries",
    "TranscodeAudio": "Codec Samplerate Bitrate Channels Remove KeepTwoTracks SwitchTrack "
    "SampleFormat",
    "TransConfig": "AdjDarMethod IsCheckReso ResoAdjMethod IsCheckVideoBitrate "
    "VideoBitrateAdjMethod IsCheckAudioBitrate AudioBitrateAdjMethod IsCheckVideoFps "
    "VideoFpsAdjMethod DeleteMetadata IsHdr2Sdr TransMode HlsEncrypt AIGCMetadata",
    "HlsEncrypt": "IsHlsEncrypt UriKey",
    "AigcMetadata": "Label ContentProducer ProduceID ReservedCode1 ContentPropagator PropagateID "
    "ReservedCode2",
    "AudioMix": "AudioSource MixMode Replace EffectConfig",
    "EffectConfig": "EnableStartFadein StartFadeinTime EnableEndFadeout EndFadeoutTime "
    "EnableBgmFade BgmFadeTime",
    "Watermark": "Type Pos LocMode Dx Dy StartTime EndTime SlideConfig Image Text",
    "SlideConfig": "SlideMode XSlideSpeed YSlideSpeed",
    "WatermarkImage": "Url Mode Width Height Transparency Background",
    "WatermarkText": "FontSize FontType FontColor Transparency Text",
    "DigitalWatermark": "Message Type Version IgnoreError State",
    "ExtractDigitalWatermark": "Type Version",
    "Transcode": "Container Video Audio TimeInterval TransConfig AudioMix AudioMixArray Subtitle",
    "TargetSubtitle": "Remove",
    "RemoveWatermark": "Dx Dy Width Height",
    "Subtitles": "Subtitle",
    "SubtitleFile": "Url Embed FontType FontSize FontColor OutlineColor VMargin",
    "Snapshot": "Mode Start TimeInterval Count Width Height CIParam IsCheckCount IsCheckBlack "
    "BlackLevel PixelBlackThreshold SnapshotOutMode SpriteSnapshotConfig",
    "SpriteSnapshotConfig": "CellHeight CellWidth Color Columns Lines Margin Padding ScaleMethod",
    "Animation": "Container Video TimeInterval",
    "AnimationVideo": "Codec Width Height Fps AnimateOnlyKeepKeyFrame AnimateTimeIntervalOfFrame "
    "AnimateFramesPerSecond Quality",
    "ConcatTemplate": "ConcatFragment Container Video Audio Index DirectConcat AudioMix "
    "AudioMixArray SceneChangeInfo",
    "ConcatFragment": "Url Mode StartTime EndTime FragmentIndex Duration",
    "SceneChangeInfo": "Mode Time TransitionType",
    "Segment": "Format Duration TranscodeIndex StartTime EndTime HlsEncrypt AIGCMetadata",
    "SmartCover": "Format Width Height Count DeleteDuplicates",
    "VoiceSeparate": "AudioMode AudioConfig",
    "AudioConfig": "Codec Samplerate Bitrate Channels",
    "VideoMontage": "Container Video Audio Duration Scene AudioMix AudioMixArray",
    "VideoMontageVideo": "Codec Width Height Fps Remove Bitrate Crf",
    "SdrToHdr": "HdrMode",
    "VideoProcess": "ColorEnhance MsSharpen",
    "ColorEnhance": "Enable Contrast Correction Saturation",
    "MsSharpen": "Enable SharpenLevel",
    "SuperResolution": "Resolution EnableScaleUp Version",
    "VideoEnhance": "Transcode SuperResolution ColorEnhance MsSharpen SDRtoHDR FrameEnhance",
    "FrameEnhance": "FrameDoubling",
}

POOL = descriptor_pool.Default()
# Every message of CI's XML: media.proto, job_kinds.proto, and service.proto's `<Response>`s.
XML_MESSAGES = sorted(
    [f"ci.media.v1.{name}" for name in media_pb2.DESCRIPTOR.message_types_by_name]
    + [f"ci.media.v1.{name}" for name in job_kinds_pb2.DESCRIPTOR.message_types_by_name]
    + [
        f"ci.media.v1.{name}"
        for name in (
            "SubmitMediaJobResponse",
            "SubmitMediaJobsResponse",
            "DescribeMediaJobsResponse",
            "ListMediaJobsResponse",
            "MediaInfoResponse",
        )
    ]
)


def _class(full_name: str) -> type[Message]:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


def _node_names(full_name: str) -> set[str]:
    message = _class(full_name)()
    special = {unknown_nodes_field(message), "raw_xml", "state_text"}
    return {
        wire_name(f)
        for f in message.DESCRIPTOR.fields
        if f.name not in special and not _options(f).derived
    }


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_node_names_are_the_catalogues(name: str) -> None:
    assert _node_names(f"ci.media.v1.{name}") == set(CATALOGUE[name].split())


def test_every_kind_message_is_in_the_golden_table() -> None:
    # A message added to job_kinds.proto without its catalogue names fails here.
    assert set(job_kinds_pb2.DESCRIPTOR.message_types_by_name) <= set(CATALOGUE)


@pytest.mark.parametrize("full_name", XML_MESSAGES)
def test_every_xml_message_keeps_unknown_nodes(full_name: str) -> None:
    if full_name == "ci.media.v1.XmlNode":
        return  # the kept node itself
    assert unknown_nodes_field(_class(full_name)()) == "extra_nodes"


@pytest.mark.parametrize(
    ("message", "present"),
    [
        (job_kinds_pb2.Transcode(video=job_kinds_pb2.TranscodeVideo()), "Video"),
        (job_kinds_pb2.Transcode(audio=job_kinds_pb2.TranscodeAudio()), "Audio"),
        (job_kinds_pb2.ConcatTemplate(video=job_kinds_pb2.TranscodeVideo()), "Video"),
        (job_kinds_pb2.ConcatTemplate(audio=job_kinds_pb2.TranscodeAudio()), "Audio"),
        (job_kinds_pb2.VideoMontage(audio=job_kinds_pb2.TranscodeAudio()), "Audio"),
    ],
)
def test_a_stream_set_without_parameters_is_still_a_node(message: Message, present: str) -> None:
    """CI's Transcode `Video`/`Audio`: absent removes that stream from the output, present keeps
    it with every parameter defaulted (ci-job-catalogue.md A.3/A.4, the template doc). A caller's
    `video {}` means "keep the video": it must reach CI as `<Video/>`, not vanish as an empty
    message elsewhere does, and read back as set."""
    encoded = encode(message, root="Transcode")
    assert etree.fromstring(encoded).find(present) is not None, encoded
    assert decode(encoded, type(message), root="Transcode") == message
    # An empty container with no such meaning is still no node.
    assert encode(job_kinds_pb2.Transcode(container=job_kinds_pb2.Container())).endswith(
        b"<Request/>"
    )


def _keeps_empty(field: FieldDescriptor | _upb.FieldDescriptor) -> bool:
    return _options(field).keep_empty


# Operation fields a kind rule counts as the kind's parameters (`one_of`: "SmartCover or
# TemplateId"), singular messages only: set, they satisfy the rule, so set they must be sent.
_KIND_CONTAINERS = sorted(
    {
        path.split(".")[0]
        for rule in kind_rules.KIND_RULES.values()
        for paths in rule.one_of
        for path in paths
        if "." not in path
        and (field := media_pb2.Operation.DESCRIPTOR.fields_by_name[path]).message_type
        and not field.is_repeated
    }
)


def test_every_container_a_kind_rule_counts_is_sent_when_set() -> None:
    """The gateway's validation takes a set `smart_cover {}` as SmartCover's parameters; if the
    codec then dropped the empty node, CI would get neither SmartCover nor a TemplateId and
    refuse the job ("Operation.SmartCover is required"). Templates' wrapped containers and
    workflow nodes' kind containers likewise."""
    assert len(_KIND_CONTAINERS) >= 10, _KIND_CONTAINERS
    fields = media_pb2.Operation.DESCRIPTOR.fields_by_name
    assert [name for name in _KIND_CONTAINERS if not _keeps_empty(fields[name])] == []
    wrapped = [c.field for c in template_wire.containers().values() if not c.at_request_root]
    template_fields = templates_pb2.MediaTemplate.DESCRIPTOR.fields_by_name
    assert wrapped and [name for name in wrapped if not _keeps_empty(template_fields[name])] == []
    node = workflows_pb2.WorkflowNodeOperation.DESCRIPTOR.fields_by_name
    kinds = [name for name in _KIND_CONTAINERS if name in node]
    assert kinds and [name for name in kinds if not _keeps_empty(node[name])] == []


@pytest.mark.parametrize("name", _KIND_CONTAINERS)
def test_a_kinds_parameters_set_without_values_are_still_a_node(name: str) -> None:
    operation = media_pb2.Operation()
    getattr(operation, name).SetInParent()
    encoded = encode(operation, root="Operation")
    assert len(etree.fromstring(encoded)) == 1, encoded
    assert decode(encoded, media_pb2.Operation, root="Operation") == operation


@pytest.mark.parametrize(
    ("tag", "parameters", "output"),
    [
        ("Snapshot", "snapshot", "out/snap-${Number}.jpg"),
        ("SmartCover", "smart_cover", "out/cover-${Number}.jpg"),
        ("VoiceSeparate", "voice_separate", "out/voice.mp3"),
        ("VideoMontage", "video_montage", "out/montage.mp4"),
    ],
)
async def test_a_kind_with_every_parameter_defaulted_reaches_ci(
    emulator: RunningEmulator,
    settings: Settings,
    credentials: Credentials,
    tag: str,
    parameters: str,
    output: str,
) -> None:
    """`snapshot {}`: take a Snapshot with CI's defaults. CI reads the node (absent with no
    TemplateId: 'Operation.Snapshot is required'), so it must be sent, and CI runs the job."""
    operation = media_pb2.Operation(
        output=job_kinds_pb2.Output(bucket=BUCKET, region=REGION, object=output)
    )
    getattr(operation, parameters).SetInParent()
    request = media_pb2.Request(
        tag=tag, input=media_pb2.Input(object=SAMPLE_KEY), operation=operation
    )
    client = ci_client(settings, credentials)
    try:
        reply = await client.submit_job(Target(BUCKET, REGION), request, Deadline(10))
    finally:
        await client.close()
    detail = reply.message.jobs_detail
    assert (detail.tag, detail.state) == (tag, media_pb2.JOB_STATE_SUBMITTED)
    assert detail.operation.HasField(parameters)  # CI's echo of the node it was sent
    job = await emulator.state.wait_for_job_state(detail.job_id, ("Success", "Failed"), timeout=60)
    assert job.state.value == "Success", job


def test_overridden_names_on_the_wire() -> None:
    operation = media_pb2.Operation(
        sdr_to_hdr=job_kinds_pb2.SdrToHdr(hdr_mode="HLG"),
        snapshot=job_kinds_pb2.Snapshot(ci_param="-map 0:v"),
        transcode=job_kinds_pb2.Transcode(
            trans_config=job_kinds_pb2.TransConfig(
                is_hdr2sdr="true",
                aigc_metadata=job_kinds_pb2.AigcMetadata(produce_id="p", propagate_id="q"),
            )
        ),
    )
    encoded = encode(operation, root="Operation")
    for node in (
        b"<SDRtoHDR><HdrMode>HLG</HdrMode></SDRtoHDR>",
        b"<CIParam>-map 0:v</CIParam>",
        b"<IsHdr2Sdr>true</IsHdr2Sdr>",
        b"<AIGCMetadata><ProduceID>p</ProduceID><PropagateID>q</PropagateID></AIGCMetadata>",
    ):
        assert node in encoded
    # CI's casing is not relied on when reading: `SdrToHdr` still lands in sdr_to_hdr.
    lower = encoded.replace(b"SDRtoHDR", b"SdrToHdr").replace(b"ProduceID", b"ProduceId")
    assert decode(lower, media_pb2.Operation, root="Operation") == operation


# --- property tests --------------------------------------------------------------------------


def _xml_char(c: str) -> bool:
    return (
        c in "\t\n\r"
        or ("\x20" <= c <= "\ud7ff" and not "\x7f" <= c <= "\x9f")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
    )


_TEXT = st.text(
    st.characters(codec="utf-8").filter(_xml_char) | st.sampled_from("<>&\"' ,;-"), max_size=12
).filter(lambda s: s == s.strip(" \t\r\n"))
_NAMES = st.from_regex(r"[A-Z][A-Za-z0-9_]{0,8}", fullmatch=True)
_LEAF = st.builds(xml_pb2.XmlNode, name=_NAMES, text=_TEXT)
_XML_NODES = st.recursive(
    _LEAF,
    lambda children: st.builds(
        xml_pb2.XmlNode, name=_NAMES, text=_TEXT, children=st.lists(children, max_size=2)
    ),
    max_leaves=4,
)


def _options(field: FieldDescriptor | _upb.FieldDescriptor) -> xml_pb2.XmlField:
    options = field.GetOptions()
    return options.Extensions[xml_pb2.xml] if options.HasExtension(xml_pb2.xml) else _NONE  # type: ignore[index, arg-type]


_NONE = xml_pb2.XmlField()


def _enum_with_text(field: FieldDescriptor) -> st.SearchStrategy[tuple[int, str]]:
    """(value, text) pairs as decoding sets them: a known value with CI's text, or an unknown
    text on UNSPECIFIED."""
    assert field.enum_type is not None
    known = [(v.number, enum_wire_name(field.enum_type, v.number)) for v in field.enum_type.values]
    texts = {text.lower() for _, text in known}
    unknown = _TEXT.filter(lambda t: bool(t) and t.lower() not in texts).map(lambda t: (0, t))
    return st.sampled_from([(n, t) for n, t in known if n]) | unknown | st.just((0, ""))


@functools.cache
def _plan(
    full_name: str, depth: int
) -> tuple[type[Message], dict[str, st.SearchStrategy[Any]], dict[str, str]]:
    """The message class, a strategy per settable field, and enum -> text-twin names."""
    descriptor: Descriptor = POOL.FindMessageTypeByName(full_name)
    message_type = message_factory.GetMessageClass(descriptor)
    sample = message_type()
    parts: dict[str, st.SearchStrategy[Any]] = {}
    twins: dict[str, str] = {}
    for field in descriptor.fields:
        options = _options(field)
        if options.raw_element or options.derived:
            continue
        if options.unknown_nodes:
            kept = _XML_NODES.filter(lambda n: typed_field_for(sample, n.name) is None)
            parts[field.name] = st.lists(kept, max_size=2)
        elif field.message_type is not None:
            if depth == 0:
                continue
            child = _messages(field.message_type.full_name, depth - 1, nonempty=True)
            parts[field.name] = st.lists(child, max_size=2) if field.is_repeated else child
        elif field.type == FieldDescriptor.TYPE_ENUM:
            twins[field.name] = f"{field.name}_text"
            parts[field.name] = _enum_with_text(field)
        elif field.type == FieldDescriptor.TYPE_INT32:
            parts[field.name] = st.integers(-(2**31), 2**31 - 1)
        elif field.is_repeated:
            item = _TEXT.filter(bool)
            if options.comma_separated:
                item = item.filter(lambda t: "," not in t and t.strip(" ,") == t)
            parts[field.name] = st.lists(item, max_size=2)
        elif options.dash_is_empty:
            parts[field.name] = _TEXT.filter(lambda t: t != "-")
        else:
            parts[field.name] = _TEXT
    for twin in twins.values():
        parts.pop(twin, None)  # set with its enum
    return message_type, parts, twins


@st.composite
def _messages(draw: st.DrawFn, full_name: str, depth: int, nonempty: bool = False) -> Message:
    """Any `full_name` message whose encoding reads back as itself: non-empty sub-messages and
    list items (empty ones read back as absent), kept nodes spelled unlike any typed field.
    (A composite, not a tree of strategies, so hypothesis' reprs of it stay one line.)"""
    message_type, parts, twins = _plan(full_name, depth)
    message = message_type()
    for name, part in parts.items():
        if not draw(st.booleans()):
            continue
        value = draw(part)
        if name in twins:
            number, text = value
            setattr(message, name, number)
            setattr(message, twins[name], text)
        elif isinstance(value, list):
            getattr(message, name).extend(value)
        elif isinstance(value, Message):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    if nonempty and not message.ByteSize():
        # Made non-empty rather than filtered: filtering nested draws discards most inputs.
        message.extra_nodes.append(draw(_XML_NODES.map(lambda n: _renamed(n, "Zz"))))  # type: ignore[attr-defined]
    return message


def _renamed(node: xml_pb2.XmlNode, prefix: str) -> xml_pb2.XmlNode:
    """`node` with a name no typed field has (`_FOREIGN`'s names for the injection test)."""
    return xml_pb2.XmlNode(name=prefix + node.name, text=node.text, children=node.children)


_ROUND_TRIP = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


@pytest.mark.parametrize("full_name", [n for n in XML_MESSAGES if n != "ci.media.v1.XmlNode"])
@_ROUND_TRIP
@given(data=st.data())
def test_any_message_round_trips(full_name: str, data: st.DataObject) -> None:
    message = data.draw(_messages(full_name, 2))
    assert decode(encode(message), type(message), root=None) == message


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(job=_messages("ci.media.v1.JobsDetail", 5, nonempty=True))
def test_whole_jobs_round_trip(job: Message) -> None:
    response = service_pb2.DescribeMediaJobsResponse(jobs_detail=[job])  # type: ignore[list-item]
    encoded = encode(response, root="Response")
    assert decode(encoded, service_pb2.DescribeMediaJobsResponse) == response


def _structure(element: etree._Element) -> tuple[Any, ...]:
    children = sorted(_structure(child) for child in element)
    return (element.tag, (element.text or "").strip(), tuple(children))


def _inject(root: etree._Element, nodes: list[xml_pb2.XmlNode], rng: random.Random) -> None:
    """Put each node (as XML) under a random element of `root`: a message's, a kept node's or
    a leaf's (a leaf that gains children no longer fits its typed field: kept whole)."""
    elements = list(root.iter())
    for node in nodes:
        parent = rng.choice(elements)
        holder = parse_document(encode(xml_pb2.XmlNode(children=[node]), root="X"))
        parent.insert(rng.randrange(len(parent) + 1), holder[0])


# Unknown names that no typed field anywhere uses (`Zq...`): what is injected stays unknown.
_FOREIGN = st.recursive(
    st.builds(xml_pb2.XmlNode, name=_NAMES.map(lambda n: "Zq" + n), text=_TEXT),
    lambda children: st.builds(
        xml_pb2.XmlNode,
        name=_NAMES.map(lambda n: "Zq" + n),
        text=_TEXT,
        children=st.lists(children, max_size=2),
    ),
    max_leaves=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    job=_messages("ci.media.v1.JobsDetail", 4, nonempty=True),
    foreign=st.lists(_FOREIGN, min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_unknown_nodes_anywhere_survive_decode_and_encode(
    job: Message, foreign: list[xml_pb2.XmlNode], seed: int
) -> None:
    response = service_pb2.DescribeMediaJobsResponse(jobs_detail=[job])  # type: ignore[list-item]
    document = parse_document(encode(response, root="Response"))
    _inject(document, foreign, random.Random(seed))
    sent = etree.tostring(document)
    decoded = decode(sent, service_pb2.DescribeMediaJobsResponse)
    assert _structure(parse_document(encode(decoded, root="Response"))) == _structure(document)


def test_no_typed_field_is_spelled_like_the_injected_nodes() -> None:
    for full_name in XML_MESSAGES:
        names = [name.lower() for name in _node_names(full_name)]
        assert not any(name.startswith(("zq", "zz")) for name in names)
