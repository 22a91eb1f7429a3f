"""Per-kind checks of a submit's `Operation`, as data: what each typed kind needs before CI
would accept it (job catalogue §1.3 and appendix A, `*` = required by a Tencent doc).

One table row per typed kind says which parameters it needs (`one_of`: at least one of these
paths set; "TemplateId wins over inline parameters" in every doc, so a template always counts),
whether it writes files (then `Output.Region`/`Bucket`/`Object` are required), which outputs
need CI's `${Number}` placeholder, and which values are a closed set. Rules on shared leaves
(a watermark's required nodes, a digital watermark's message charset, RemoveWatermark's range)
apply wherever the leaf appears, whatever the kind. Pass-through kinds get none of this: the
gateway knows nothing of their nodes, and CI is their judge. A template is its kind's node
without the job around it, so the same rules hold for it (`check_parameters`), plus what only
the template docs ask (`TEMPLATE_RULES`: TranscodePro, which no job holds, and VoiceSeparate).

Only rules a Tencent doc states are here; where the docs disagree (Snapshot's `Mode`, required
in two variants and defaulted in three) the tolerant reading wins and the node stays optional.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Final

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway._proto import job_kinds_pb2, media_pb2

__all__ = [
    "DOT_SEGMENTS",
    "KIND_RULES",
    "TEMPLATE_RULES",
    "KindRule",
    "TemplateRule",
    "check_kind",
    "check_output_keys",
    "check_parameters",
    "check_template",
    "check_watermark",
    "has_dot_segment",
    "needs_input",
]

Report = Callable[[str, str], None]

NUMBER = "${Number}"
# CI's numbering placeholder in either spelling: the docs write `${Number}`, the SDK examples
# also `${number}` (Go's and JavaScript's SmartCover: `output/mc-${number}.jpg`; job catalogue
# §1.2, "placeholders seen"), so either one satisfies a `numbered` output.
_NUMBER = re.compile(r"\$\{[Nn]umber\}")
MAX_WATERMARKS = 3
_DIGITAL_MESSAGE_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_*-"
)
MAX_DIGITAL_MESSAGE = 64
REMOVE_WATERMARK_RANGE = (1, 4096)
# ASCII digits, a few: `str.isdigit` also takes `²` (int() then raised ValueError: INTERNAL),
# `٣` (CI would get Arabic-Indic digits) and 5,000 digits (beyond int()'s own limit).
_DECIMAL = re.compile(r"[0-9]{1,9}")
# Refused in every object key: in a URL path (GetMediaInfo's `/<key>`) any hop that normalises
# paths (RFC 3986 dot-segment removal: proxies, load balancers, HTTP libraries) rewrites `a/../b`
# to `b`, so CI would verify a signature over another path (SignatureDoesNotMatch, INTERNAL) or
# act on another object; percent-encoding them does not help, since `%2E` is `.` to a normaliser.
# What COS itself does with such keys is not documented (ci-api-notes): refusing is the safe,
# predictable choice, and one rule for every key lets a key that submits also probe. Empty
# segments (`a//b`) are refused for the same reason: slash-merging hops rewrite them to `a/b`.
DOT_SEGMENTS = frozenset({".", ".."})
# The object keys a job writes: held to the rule every input key meets (DOT_SEGMENTS above,
# README "Errors"), so `../x.mp4` or `/x.mp4` never reaches CI as a place to
# write, whatever the kind (CI's treatment of such keys is undocumented).
_OUTPUT_KEYS = ("object", "sprite_object", "au_object", "bass_object", "drum_object")


@dataclass(frozen=True, slots=True)
class KindRule:
    # Each tuple: at least one of these `Operation` paths must be set.
    one_of: tuple[tuple[str, ...], ...] = ()
    # Writes files: `output.region`, `output.bucket` and (see `needs_object`) `output.object`
    # are required.
    writes: bool = True
    # `output.object` is required. Not for StreamExtract (it names a file per stream), nor where
    # the catalogue leaves it optional because other keys can take the files (Snapshot's
    # `SpriteObject`, VoiceSeparate's `AuObject`: a `one_of` then asks for one of them).
    needs_object: bool = True
    # Output paths whose value, when set, must contain `${Number}`.
    numbered: tuple[str, ...] = ()
    # When the first path is set, the others are required ("Container* { Format* }").
    required_within: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Paths whose value, when set, is one of a closed set.
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # `Input.Object` may be empty: the kind reads no object (Concat's clips are URLs).
    no_input: bool = False


_TRANSCODE_PARAMS = ("transcode_template_id", "transcode")
_AUDIO_MODES = frozenset({"IsAudio", "IsBackground", "AudioAndBackground"})
_ANIMATION_FORMATS = frozenset({"gif", "webp"})
_RESOLUTIONS = frozenset({"sdtohd", "hdto4k"})
_HDR_MODES = frozenset({"HLG", "HDR10"})

KIND_RULES: Final[Mapping[str, KindRule]] = {
    "MediaInfo": KindRule(writes=False),
    "Transcode": KindRule(
        one_of=(("template_id", "transcode"),),
        required_within={"transcode": ("transcode.container.format",)},
    ),
    # Output.Object is "否" (not required) for Snapshot: sprites alone go to SpriteObject.
    "Snapshot": KindRule(
        one_of=(("template_id", "snapshot"), ("output.object", "output.sprite_object")),
        needs_object=False,
        numbered=("output.object", "output.sprite_object"),
        values={
            "snapshot.mode": frozenset({"Interval", "Average", "KeyFrame"}),
            "snapshot.snapshot_out_mode": frozenset(
                {"OnlySnapshot", "OnlySprite", "SnapshotAndSprite"}
            ),
        },
    ),
    # A.6: `Container { Format } (gif|webp)`, optional (the format then follows Video.Codec),
    # held to its closed set when given, in jobs and templates, as the emulator holds it.
    "Animation": KindRule(
        one_of=(("template_id", "animation"),),
        required_within={"animation": ("animation.video.codec",)},
        values={
            "animation.video.codec": _ANIMATION_FORMATS,
            "animation.container.format": _ANIMATION_FORMATS,
        },
    ),
    # The Go SDK's Concat example sends no Input: the clips are ConcatFragment URLs. Inline
    # parameters need Container { Format }: "是" in both CI's Concat job and Concat template
    # docs (CreateMediaJobs / CreateMediaTemplate, ConcatTemplate.Container), A.3's Format*.
    "Concat": KindRule(
        one_of=(("template_id", "concat_template"),),
        required_within={"concat_template": ("concat_template.container.format",)},
        no_input=True,
    ),
    # `Segment { Format, Duration, ... }` (A.8): "是" for Segment and its Format in CI's
    # Segment job doc, and no template kind stands in for it. Duration is "是" there too, but
    # HLS and remux cuts take none (catalogue §1.3, the emulator): left optional.
    "Segment": KindRule(one_of=(("segment",),), required_within={"segment": ("segment.format",)}),
    "SmartCover": KindRule(one_of=(("template_id", "smart_cover"),), numbered=("output.object",)),
    # Output {Region*, Bucket*, Object, AuObject, ...} (A.9): the background alone may go to
    # AuObject.
    "VoiceSeparate": KindRule(
        one_of=(("template_id", "voice_separate"), ("output.object", "output.au_object")),
        needs_object=False,
        values={"voice_separate.audio_mode": _AUDIO_MODES},
    ),
    "VideoMontage": KindRule(one_of=(("template_id", "video_montage"),)),
    "Watermark": KindRule(one_of=(("watermark", "watermark_template_id"),)),
    "DigitalWatermark": KindRule(one_of=(("digital_watermark",),)),
    # The node is "Yes" in CI's ExtractDigitalWatermark doc, its Type Text and Version V1 (as
    # DigitalWatermark's); both default in the emulator, so only their values are held here.
    "ExtractDigitalWatermark": KindRule(
        one_of=(("extract_digital_watermark",),),
        writes=False,
        values={
            "extract_digital_watermark.type": frozenset({"Text"}),
            "extract_digital_watermark.version": frozenset({"V1"}),
        },
    ),
    "StreamExtract": KindRule(one_of=(("output.stream_extract",),), needs_object=False),
    "SDRtoHDR": KindRule(
        one_of=(("template_id", "sdr_to_hdr"), _TRANSCODE_PARAMS),
        required_within={"sdr_to_hdr": ("sdr_to_hdr.hdr_mode",)},
        values={"sdr_to_hdr.hdr_mode": _HDR_MODES},
    ),
    "VideoProcess": KindRule(one_of=(("template_id", "video_process"),)),
    "SuperResolution": KindRule(
        one_of=(("template_id", "super_resolution"), _TRANSCODE_PARAMS),
        required_within={"super_resolution": ("super_resolution.resolution",)},
        values={"super_resolution.resolution": _RESOLUTIONS},
    ),
    # VideoEnhance nests the SuperResolution and SDRtoHDR nodes (A.10), each with its own
    # required value.
    "VideoEnhance": KindRule(
        one_of=(("template_id", "video_enhance"),),
        required_within={
            "video_enhance.super_resolution": ("video_enhance.super_resolution.resolution",),
            "video_enhance.sdr_to_hdr": ("video_enhance.sdr_to_hdr.hdr_mode",),
        },
        values={
            "video_enhance.super_resolution.resolution": _RESOLUTIONS,
            "video_enhance.sdr_to_hdr.hdr_mode": _HDR_MODES,
        },
    ),
}
"""Typed kind -> its rule; a pass-through kind has none."""


@dataclass(frozen=True, slots=True)
class TemplateRule:
    """What a template of a kind needs beyond its job node's rule: paths below the template's
    parameter container (`MediaTemplate.trans_pro_tpl`, `.voice_separate`, ...)."""

    # Always required: a template has no TemplateId standing in for them.
    required: tuple[str, ...] = ()
    required_within: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)


TEMPLATE_RULES: Final[Mapping[str, TemplateRule]] = {
    # No job holds TranscodePro's parameters, so no KindRule covers them: catalogue A.12,
    # `Container* { Format* (mxf|mov|mkv) }, Video* { Codec*, Profile*, Width*, Height*,
    # Interlaced*, Fps* }, Audio { Codec* }`.
    "TranscodePro": TemplateRule(
        required=(
            "container.format",
            "video.codec",
            "video.profile",
            "video.width",
            "video.height",
            "video.interlaced",
            "video.fps",
        ),
        required_within={"audio": ("audio.codec",)},
        values={"container.format": frozenset({"mxf", "mov", "mkv"})},
    ),
    # AudioMode is "是" in CI's VoiceSeparate *template* doc (CreateMediaTemplate) but "否" in
    # its job doc, so it is required here and not in the job's rule. The same doc marks
    # AudioConfig "是" although every child of it has a default; the catalogue says nothing of
    # either, so AudioConfig stays optional (tolerant reading, UNCONFIRMED).
    "VoiceSeparate": TemplateRule(required=("audio_mode",)),
}
"""Template tag -> what its container needs on top of `KIND_RULES` (run by `check_template`)."""


# Pass-through kinds whose input lives in their own nodes, not in `Input`: the SDK example the
# catalogue cites for each sends no `Input` at all ([GO-EX] jobs.go: InvokeTtsJob's text is
# `TtsConfig.Input`, InvokeFillConcatJob's clips `FillConcat.FillInput[].Url`,
# InvokeVideoSynthesisJob's `VideoSynthesis.SpliceInfo[].Url`), like Concat's. Whether CI
# requires one anyway is UNCONFIRMED (catalogue §1.2): the tolerant reading, CI judges.
_PASS_THROUGH_WITHOUT_INPUT = frozenset({"Tts", "FillConcat", "VideoSynthesis"})


def needs_input(tag: str) -> bool:
    """Whether a `tag` submit must name `Input.Object` (every kind but those without input)."""
    rule = KIND_RULES.get(tag)
    if rule is None:
        return tag not in _PASS_THROUGH_WITHOUT_INPUT
    return not rule.no_input


def check_kind(
    tag: str,
    operation: media_pb2.Operation,
    report: Report,
    set_here: AbstractSet[str] | None = None,
) -> None:
    """Report (path below `request.operation`, description) for each rule `operation` breaks.
    `set_here`: the names of the fields `operation` sets, when the caller has read them."""
    # The fields `operation` sets, once: the checks of an unset part (most of them, for most
    # kinds) are skipped without reading it, which builds it or its repeated container.
    if set_here is None:
        set_here = {field.name for field, _ in operation.ListFields()}
    if "output" in set_here:  # an unset `Output` names no key
        check_output_keys(operation.output, report)
    rule = KIND_RULES.get(tag)
    if rule is None:
        return
    for paths in rule.one_of:
        if not any(_is_set(operation, path) for path in paths):
            names = " or ".join(paths)
            report(paths[0], f"{tag} needs {names}")
    if rule.writes:
        needed = ("output.region", "output.bucket")
        for path in (*needed, "output.object") if rule.needs_object else needed:
            if not _is_set(operation, path):
                report(path, f"required: {tag} writes its result there")
    for path in rule.numbered:
        value = _value(operation, path)
        if value and not _NUMBER.search(value):
            report(path, f"must contain {NUMBER} (one file per frame)")
    # With a template, inline parameters are partial overrides: the template (whose values
    # win) brings what the kind requires. (A proto3 string is set exactly when not empty.)
    _check_parameters(rule, operation, report, complete="template_id" not in set_here)
    _check_leaves(operation, report, set_here)


def check_parameters(tag: str, operation: media_pb2.Operation, report: Report) -> None:
    """A template's parameters, set where a job's `Operation` holds its kind's node: what the
    kind requires within that node, and its closed sets (a template is that node, whole)."""
    rule = KIND_RULES.get(tag)
    if rule is not None:
        _check_parameters(rule, operation, report, complete=True)


def check_template(tag: str, params: Message, report: Report) -> None:
    """A template's own rules (`TEMPLATE_RULES`) on its parameter container `params`; paths
    reported below the container."""
    rule = TEMPLATE_RULES.get(tag)
    if rule is None:
        return
    for path in rule.required:
        if not _is_set(params, path):
            report(path, f"required in a {tag} template")
    _check_parameters(rule, params, report, complete=True)


def _check_parameters(
    rule: KindRule | TemplateRule, operation: Message, report: Report, *, complete: bool
) -> None:
    if complete:
        for parent, children in rule.required_within.items():
            if _is_set(operation, parent):
                for path in children:
                    if not _is_set(operation, path):
                        report(path, f"required when {parent} is set")
    for path, allowed in rule.values.items():
        value = _value(operation, path)
        if value and value not in allowed:
            report(path, f"must be one of {', '.join(sorted(allowed))}")


def check_output_keys(output: job_kinds_pb2.Output, report: Report) -> None:
    if not output.ListFields():
        return  # no key set (most kinds, MediaInfo among them): nothing to look at
    # Only the keys set: an empty one breaks neither rule (whether one is required is
    # `check_kind`'s), and its path would be written for nothing.
    keys = [(f"output.{name}", key) for name in _OUTPUT_KEYS if (key := _value(output, name))]
    keys += [
        (f"output.stream_extract[{index}].object", stream.object)
        for index, stream in enumerate(output.stream_extract[:])  # a list: see `_check_leaves`
        if stream.object
    ]
    for path, key in keys:
        if key[0] == "/":
            report(path, "must not start with '/' (write 'output/a.mp4', not '/output/a.mp4')")
        elif has_dot_segment(key):
            report(path, "must not contain '.' or '..' path segments")


def has_dot_segment(key: str) -> bool:
    """Whether a `/`-separated segment of `key` is `.` or `..` (`DOT_SEGMENTS`): found as `/./` or
    `/../` in the key between two added slashes, without the list and set that splitting it
    builds (1.2k instead of 2.9k instructions for a short key, on every submit)."""
    bounded = f"/{key}/"
    return "/./" in bounded or "/../" in bounded


def _check_leaves(
    operation: media_pb2.Operation, report: Report, set_here: AbstractSet[str]
) -> None:
    """Shared leaves, checked wherever they appear (`set_here`: the fields `operation` sets;
    an empty repeated field, or an unset message, has none to check)."""
    if "watermark" in set_here and len(operation.watermark) > MAX_WATERMARKS:
        report("watermark", f"at most {MAX_WATERMARKS}")
    if (
        "watermark_template_id" in set_here
        and len(operation.watermark_template_id) > MAX_WATERMARKS
    ):
        report("watermark_template_id", f"at most {MAX_WATERMARKS}")
    if "watermark" in set_here:
        for index, watermark in enumerate(operation.watermark):
            check_watermark(watermark, f"watermark[{index}]", report)
    if "output" in set_here:
        # A list by one slice: a loop over the repeated field itself ends in an IndexError
        # formatted and dropped inside protobuf (~1,500 instructions).
        for index, stream in enumerate(operation.output.stream_extract[:]):
            for name in ("index", "object"):
                if not getattr(stream, name):
                    report(f"output.stream_extract[{index}].{name}", "required")
    if "digital_watermark" in set_here:
        _check_digital_watermark(operation, report)
    if "remove_watermark" in set_here:
        low, high = REMOVE_WATERMARK_RANGE
        for name in ("dx", "dy", "width", "height"):
            text = getattr(operation.remove_watermark, name)
            if not _DECIMAL.fullmatch(text) or not low <= int(text) <= high:
                report(f"remove_watermark.{name}", f"required, an integer from {low} to {high}")


def check_watermark(watermark: Message, path: str, report: Report) -> None:
    """A watermark's documented rules, in a job's `Operation` or in a Watermark template."""
    for name in ("type", "pos", "loc_mode", "dx"):
        if not _value(watermark, name):
            report(f"{path}.{name}", "required")
    kind = _value(watermark, "type")
    if kind and kind not in ("Text", "Image"):
        report(f"{path}.type", "must be Text or Image")
    loc_mode = _value(watermark, "loc_mode")
    if loc_mode and loc_mode not in ("Relativity", "Absolute"):
        report(f"{path}.loc_mode", "must be Relativity or Absolute")
    if kind == "Image" and not _value(watermark, "image.url"):
        report(f"{path}.image.url", "required when type is Image")
    if kind == "Text" and not _value(watermark, "text.text"):
        report(f"{path}.text.text", "required when type is Text")


def _check_digital_watermark(operation: media_pb2.Operation, report: Report) -> None:
    mark = operation.digital_watermark
    if not mark.message:
        report("digital_watermark.message", "required")
    elif len(mark.message) > MAX_DIGITAL_MESSAGE or not set(mark.message) <= _DIGITAL_MESSAGE_CHARS:
        report(
            "digital_watermark.message",
            f"at most {MAX_DIGITAL_MESSAGE} of letters, digits, _ * -",
        )
    if mark.type != "Text":
        report("digital_watermark.type", "required: Text")
    if mark.version != "V1":
        report("digital_watermark.version", "required: V1")
    if mark.ignore_error and mark.ignore_error not in ("true", "false"):
        report("digital_watermark.ignore_error", "must be true or false")


# How `_is_set` tells a path's last field set, as `ListFields` would list it.
_HAS, _NOT_EMPTY, _LISTED = range(3)
_Path = tuple[tuple[str, ...], str, int]  # the parents' names, the leaf's, how to test it
_PATHS: dict[tuple[type[Message], str], _Path] = {}
_FLOATS = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE})


def _path(message: Message, path: str) -> _Path:
    """`path` below a message of `message`'s type, read from the descriptors once per type and
    path (the rules' paths are a fixed few). Each check used to split the path and list the
    holder's set fields (`ListFields`, a tuple per set field) to find one name: a Transcode
    submit's rules did that a dozen times, ~10k instructions each."""
    key = (type(message), path)
    found = _PATHS.get(key)
    if found is None:
        *parents, leaf = path.split(".")
        descriptor = message.DESCRIPTOR
        for name in parents:
            inner = descriptor.fields_by_name[name].message_type
            if inner is None:
                raise ValueError(f"{path}: {name} is no message")
            descriptor = inner
        field = descriptor.fields_by_name[leaf]
        if field.has_presence:  # a message, or a scalar with presence: HasField says
            how = _HAS
        elif field.is_repeated or field.type not in _FLOATS:
            how = _NOT_EMPTY  # listed when not empty, or not its type's zero
        else:
            how = _LISTED  # -0.0 is listed (its bits are not zero) and falsy: ask ListFields
        found = _PATHS[key] = (tuple(parents), leaf, how)
    return found


def _holder(message: Message, parents: tuple[str, ...]) -> Message | None:
    """The message holding a path's last part; None when a parent is unset."""
    for name in parents:
        if not message.HasField(name):
            return None
        message = getattr(message, name)
    return message


def _is_set(message: Message, path: str) -> bool:
    """Whether `path`'s last field is set (one `ListFields` of its holder would list it)."""
    parents, leaf, how = _path(message, path)
    holder = _holder(message, parents)
    if holder is None:
        return False
    if how == _HAS:
        return holder.HasField(leaf)
    if how == _NOT_EMPTY:
        return bool(getattr(holder, leaf))
    return any(f.name == leaf for f, _ in holder.ListFields())


def _value(message: Message, path: str) -> str:
    parents, leaf, _ = _path(message, path)
    holder = _holder(message, parents)
    if holder is None:
        return ""
    value = getattr(holder, leaf)
    return value if isinstance(value, str) else ""
