"""Job templates: kept per bucket, validated as CI does, and resolved into jobs that name them.

The template API (`template_api`) stores what `POST /template` / `PUT /template/<id>` send and
answers it back in CI's shape (catalogue §2.2, A.12). CI's request and answer disagree on where
a kind's parameters sit, which `KINDS` states once per kind:

* the request puts some kinds' parameters straight under `<Request>` (Transcode: `Container`,
  `Video`, ...) and wraps the others in a node (`<Snapshot>...</Snapshot>`);
* the answer always wraps them, in a container whose name depends on the kind (`TransTpl` for
  Transcode, `TransProTpl`, `TtsTpl`, else the wrapper's own name).

A template is stored as its container's children (`Fields`), so the answer is the request's
nodes, in the request's order. Official templates (CI's presets, `Category` Official) are seeded
for every bucket with fixed ids, and are read-only.

Resolution at submit (`resolve_job_templates`, called by the submit handler before it validates
the request, and by workflow runs): an `Operation` naming `TemplateId` gets the template's
parameters merged into its kind's node, the template's values winning over inline ones (CI:
"a template's parameters take precedence"); inline nodes the template does not set stay.
`TranscodeTemplateId` (SDRtoHDR, SuperResolution, VideoProcess, VideoEnhance) merges a Transcode
template into `Transcode`, and each `WatermarkTemplateId` adds a `Watermark` node. The id nodes
are then removed and `TemplateName` added: the job engine validates and runs inline parameters
only, and `TemplateName` is what CI's answers show for a job run from a template. The job's
JobsDetail still echoes the Operation as the client sent it, ids included, with that
`TemplateName` beside `TemplateId` (`submit.parse_submit`, given the Operation as sent).

Choices where CI is silent (UNCONFIRMED, marked where made): a name used twice within one kind
is refused; a template a workflow names cannot be deleted; `name` filters by prefix (the Python
SDK's doc: "模板名称前缀"); ids and name filter within the category asked for.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from ci_emulator.errors import invalid_argument
from ci_emulator.query import positive
from ci_emulator.timefmt import format_ci_time
from ci_emulator.xmlbuild import Fields, XmlValue, element_fields
from ci_emulator.xmlread import child, children, text_of

CUSTOM = "Custom"
OFFICIAL = "Official"
CATEGORIES: Final = frozenset({CUSTOM, OFFICIAL})
NAME: Final = re.compile(r"^[\u4e00-\u9fffA-Za-z0-9_*-]{1,128}$")
MAX_TEMPLATE_IDS = 10


@dataclass(frozen=True)
class Kind:
    container: str
    """The answer's node holding the parameters (`TransTpl`, `Snapshot`, ...)."""
    wrapper: str | None
    """The request's node holding them; None: they sit straight under `<Request>`."""
    job_node: str | None = None
    """The job Operation's node a TemplateId of this kind fills (None: not resolved)."""
    required: tuple[str, ...] = ()
    """Paths (`Container/Format`) a template of this kind must set, relative to the container."""


_PRO_VIDEO = tuple(
    f"Video/{name}" for name in ("Codec", "Profile", "Width", "Height", "Interlaced", "Fps")
)
KINDS: Final[Mapping[str, Kind]] = {
    "Transcode": Kind("TransTpl", None, "Transcode", ("Container/Format",)),
    "TranscodePro": Kind("TransProTpl", None, None, ("Container/Format", *_PRO_VIDEO)),
    "Snapshot": Kind("Snapshot", "Snapshot", "Snapshot"),
    # Container { Format } is optional (catalogue A.6: the job takes Video.Codec's format).
    "Animation": Kind("Animation", None, "Animation", ("Video/Codec",)),
    # ConcatTemplate, its Container and Container.Format are "是" in CI's Concat template doc
    # (CreateMediaTemplate) as in its job doc; catalogue A.7/A.12 only leave them unmarked.
    # gateway kind_rules holds the same. That doc also marks ConcatFragment (Url, Mode) "是":
    # enforced neither here nor in the gateway (a job run from such a template needs fragments
    # of its own: a Concat needs two clips).
    "Concat": Kind("ConcatTemplate", "ConcatTemplate", "ConcatTemplate", ("Container/Format",)),
    # Type, Pos, LocMode and Dx are "*" in the watermark template docs (catalogue §1.3, A.3);
    # Dy's row is cut off there (UNCONFIRMED): optional, as for a job's watermark.
    "Watermark": Kind("Watermark", "Watermark", "Watermark", ("Type", "Pos", "LocMode", "Dx")),
    "VideoProcess": Kind("VideoProcess", None, "VideoProcess"),
    "VideoMontage": Kind("VideoMontage", None, "VideoMontage"),
    # AudioMode is "是" in CI's VoiceSeparate template doc (CreateMediaTemplate), "否" in its job
    # doc (a job may leave it out: media.validate); gateway kind_rules.TEMPLATE_RULES holds the
    # same. AudioConfig, "是" there too though each of its children has a default, stays
    # optional in both (tolerant reading).
    "VoiceSeparate": Kind("VoiceSeparate", None, "VoiceSeparate", ("AudioMode",)),
    "SuperResolution": Kind("SuperResolution", None, "SuperResolution", ("Resolution",)),
    "SmartCover": Kind("SmartCover", "SmartCover", "SmartCover"),
    "VideoEnhance": Kind("VideoEnhance", "VideoEnhance", "VideoEnhance"),
    # Kinds the gateway sends losslessly: kept and answered, never resolved into a job here.
    "Tts": Kind("TtsTpl", None),
    "PicProcess": Kind("PicProcess", "PicProcess"),
    "SpeechRecognition": Kind("SpeechRecognition", "SpeechRecognition"),
    "NoiseReduction": Kind("NoiseReduction", "NoiseReduction"),
    "VideoTargetRec": Kind("VideoTargetRec", "VideoTargetRec"),
    "ImageOCR": Kind("ImageOCR", "ImageOCR"),
    "HighSpeedHd": Kind("HighSpeedHd", None),
}
_ONE_OF: Final[Mapping[str, tuple[str, ...]]] = {"VideoProcess": ("ColorEnhance", "MsSharpen")}
# Closed sets (path -> values), the ones a job's node of the same kind is held to (catalogue
# §1.3, A.3-A.10): a watermark's `Type` Text | Image and `LocMode` Relativity | Absolute, an
# Animation's `Video.Codec` gif | webp, ..., and TranscodePro's `Container.Format` mxf | mov | mkv
# (A.12), which no job holds.
_VALUES: Final[Mapping[str, Mapping[str, frozenset[str]]]] = {
    "Watermark": {
        "Type": frozenset({"Text", "Image"}),
        "LocMode": frozenset({"Relativity", "Absolute"}),
    },
    "Animation": {
        "Video/Codec": frozenset({"gif", "webp"}),
        "Container/Format": frozenset({"gif", "webp"}),
    },
    "Snapshot": {
        "Mode": frozenset({"Interval", "Average", "KeyFrame"}),
        "SnapshotOutMode": frozenset({"OnlySnapshot", "OnlySprite", "SnapshotAndSprite"}),
    },
    "SuperResolution": {"Resolution": frozenset({"sdtohd", "hdto4k"})},
    "TranscodePro": {"Container/Format": frozenset({"mxf", "mov", "mkv"})},
    "VoiceSeparate": {"AudioMode": frozenset({"IsAudio", "IsBackground", "AudioAndBackground"})},
}
# What a value requires (Type Text needs `Text.Text`, Image needs `Image.Url`), and what a node
# requires once it is given, whatever it holds (value None; catalogue A.12: TranscodePro's
# `Audio { Codec* }`): (path, value) -> the path required.
_REQUIRED_WHEN: Final[Mapping[str, Mapping[tuple[str, str | None], str]]] = {
    "Watermark": {("Type", "Text"): "Text/Text", ("Type", "Image"): "Image/Url"},
    "TranscodePro": {("Audio", None): "Audio/Codec"},
}
_ENVELOPE: Final = frozenset({"Tag", "Name"})
# Kinds whose jobs take a Transcode template beside their own (`TranscodeTemplateId`).
TRANSCODE_STEP_KINDS: Final = frozenset(
    {"SDRtoHDR", "SuperResolution", "VideoProcess", "VideoEnhance"}
)


@dataclass(eq=False)
class Template:
    template_id: str
    tag: str
    name: str
    bucket: str
    category: str
    params: Fields
    """The container's children, as the request sent them."""
    created_at: float
    updated_at: float

    def fields(self) -> Fields:
        """The `Template` / `TemplateList` node's children (doc sample order)."""
        return [
            ("Tag", self.tag),
            ("TemplateId", self.template_id),
            ("Name", self.name),
            ("BucketId", self.bucket),
            ("Category", self.category),
            (KINDS[self.tag].container, self.params),
            ("CreateTime", format_ci_time(self.created_at)),
            ("UpdateTime", format_ci_time(self.updated_at)),
        ]


@dataclass(frozen=True)
class TemplateBody:
    """A validated create/update body."""

    tag: str
    name: str
    params: Fields


@dataclass(frozen=True)
class TemplateQuery:
    tag: str | None
    category: str
    ids: tuple[str, ...]
    name: str | None
    page_number: int
    page_size: int


def _lookup(fields: Fields, path: str) -> XmlValue:
    """The value at `A/B` (first match at each step), or None when absent."""
    value: XmlValue = fields
    for step in path.split("/"):
        if not isinstance(value, list):
            return None
        value = next((v for name, v in value if name == step), None)
    return value


def _field(kind: Kind, path: str) -> str:
    """`path` (`A/B`) as a refusal names it: `<wrapper>.A.B` (`Request.A.B` without one)."""
    return f"{kind.wrapper or 'Request'}.{path.replace('/', '.')}"


def parse_template_body(request: etree._Element) -> TemplateBody:
    tag = text_of(request, "Tag")
    if tag is None:
        raise invalid_argument("Tag is required")
    kind = KINDS.get(tag)
    if kind is None:
        raise invalid_argument(f"Tag {tag} is not a template kind")
    name = text_of(request, "Name", strip=False)
    if name is None:
        raise invalid_argument("Name is required")
    if not NAME.fullmatch(name):
        raise invalid_argument("Name may hold Chinese characters, letters, digits, _ - * only")
    if kind.wrapper is None:
        params = [item for item in element_fields(request) if item[0] not in _ENVELOPE]
    else:
        wrapper = child(request, kind.wrapper)
        if wrapper is None:
            raise invalid_argument(f"{kind.wrapper} is required for a {tag} template")
        params = element_fields(wrapper)
    for path in kind.required:
        if not isinstance(_lookup(params, path), str):
            raise invalid_argument(f"{_field(kind, path)} is required for {tag}")
    for path, allowed in _VALUES.get(tag, {}).items():
        value = _lookup(params, path)
        if isinstance(value, str) and value not in allowed:
            raise invalid_argument(
                f"{_field(kind, path)} must be one of {', '.join(sorted(allowed))}"
            )
    for (path, when), needed in _REQUIRED_WHEN.get(tag, {}).items():
        value = _lookup(params, path)
        applies = value is not None if when is None else value == when
        if applies and not isinstance(_lookup(params, needed), str):
            condition = "is given" if when is None else f"is {when}"
            raise invalid_argument(f"{_field(kind, needed)} is required when {path} {condition}")
    one_of = _ONE_OF.get(tag)
    if one_of and not any(_lookup(params, name) is not None for name in one_of):
        raise invalid_argument(f"a {tag} template needs one of {', '.join(one_of)}")
    return TemplateBody(tag, name, params)


def parse_template_query(params: Mapping[str, str]) -> TemplateQuery:
    tag = params.get("tag", "") or None
    if tag is not None and tag not in KINDS:
        raise invalid_argument(f"tag {tag} is not a template kind")
    category = params.get("category", "") or CUSTOM
    if category not in CATEGORIES:
        raise invalid_argument("category must be Custom or Official")
    ids = tuple(dict.fromkeys(i.strip() for i in params.get("ids", "").split(",") if i.strip()))
    if len(ids) > MAX_TEMPLATE_IDS:
        raise invalid_argument(f"at most {MAX_TEMPLATE_IDS} ids may be given")
    return TemplateQuery(
        tag=tag,
        category=category,
        ids=ids,
        name=params.get("name", "") or None,
        page_number=positive(params, "pageNumber", 1),
        page_size=positive(params, "pageSize", 10),
    )


def _official(bucket: str, now: float) -> list[Template]:
    """CI's presets, the same ids in every emulator (a client may hard-code one)."""

    def make(tag: str, name: str, params: Fields) -> Template:
        digest = hashlib.sha256(f"official:{tag}:{name}".encode()).hexdigest()[:32]
        return Template("t0" + digest, tag, name, bucket, OFFICIAL, params, now, now)

    return [
        make(
            "Transcode",
            "MP4-H264-AAC-720P",
            [
                ("Container", [("Format", "mp4")]),
                ("Video", [("Codec", "H.264"), ("Width", "1280"), ("Fps", "30")]),
                ("Audio", [("Codec", "aac"), ("Samplerate", "44100"), ("Bitrate", "128")]),
            ],
        ),
        make(
            "Snapshot",
            "JPG-Interval-10s",
            [("Mode", "Interval"), ("TimeInterval", "10"), ("Count", "10")],
        ),
    ]


@dataclass
class TemplateStore:
    """Every bucket's templates, custom and official, by id."""

    clock_now: float
    buckets: Iterable[str]
    by_id: dict[str, Template] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for bucket in self.buckets:
            for template in _official(bucket, self.clock_now):
                self.by_id[f"{bucket}/{template.template_id}"] = template

    def get(self, bucket: str, template_id: str) -> Template | None:
        return self.by_id.get(f"{bucket}/{template_id}")

    def of_bucket(self, bucket: str) -> list[Template]:
        return [t for t in self.by_id.values() if t.bucket == bucket]

    def create(self, bucket: str, body: TemplateBody, now: float) -> Template:
        self._check_name(bucket, body.tag, body.name, None)
        template = Template(
            "t1" + secrets.token_hex(16), body.tag, body.name, bucket, CUSTOM, body.params, now, now
        )
        self.by_id[f"{bucket}/{template.template_id}"] = template
        return template

    def update(self, template: Template, body: TemplateBody, now: float) -> None:
        if template.category != CUSTOM:
            raise invalid_argument(f"template {template.template_id} is official: read-only")
        if body.tag != template.tag:
            raise invalid_argument(
                f"template {template.template_id} is a {template.tag} template, not {body.tag}"
            )
        self._check_name(template.bucket, body.tag, body.name, template)
        template.name, template.params, template.updated_at = body.name, body.params, now

    def delete(self, template: Template) -> None:
        if template.category != CUSTOM:
            raise invalid_argument(f"template {template.template_id} is official: read-only")
        del self.by_id[f"{template.bucket}/{template.template_id}"]

    def select(self, bucket: str, query: TemplateQuery) -> tuple[list[Template], int]:
        """(this page, how many matched); by creation, oldest first."""
        matching = [
            t
            for t in sorted(self.of_bucket(bucket), key=lambda t: (t.created_at, t.template_id))
            if t.category == query.category
            and (query.tag is None or t.tag == query.tag)
            and (not query.ids or t.template_id in query.ids)
            and (query.name is None or t.name.startswith(query.name))
        ]
        start = (query.page_number - 1) * query.page_size
        return matching[start : start + query.page_size], len(matching)

    def unknown(self, bucket: str, ids: tuple[str, ...]) -> list[str]:
        """The asked-for ids the bucket has no template of (official or custom), in order."""
        known = {template.template_id for template in self.of_bucket(bucket)}
        return [template_id for template_id in ids if template_id not in known]

    def _check_name(self, bucket: str, tag: str, name: str, itself: Template | None) -> None:
        # UNCONFIRMED that CI refuses a name used twice within a kind; a duplicate would make
        # "the template called X" ambiguous for every tool that manages templates by name.
        for other in self.of_bucket(bucket):
            if (
                other is not itself
                and other.category == CUSTOM
                and (other.tag, other.name)
                == (
                    tag,
                    name,
                )
            ):
                raise invalid_argument(f"a {tag} template named {name} exists already")


# ---- resolution at submit ----------------------------------------------------------------------


def resolve_job_templates(request: etree._Element, store: TemplateStore, bucket: str) -> None:
    """Merge the templates a CreateMediaJobs `<Request>` names into its Operation(s), in place;
    InvalidArgument for a template that does not exist or is of another kind."""
    job_tag = text_of(request, "Tag")
    for operation in children(request, "Operation"):
        tag = text_of(operation, "Tag") or job_tag  # a multi-operation submit tags each one
        if tag is not None:
            resolve_operation(operation, tag, store, bucket)


def resolve_operation(
    operation: etree._Element, tag: str, store: TemplateStore, bucket: str
) -> None:
    template_id = text_of(operation, "TemplateId")
    if template_id is not None:
        template = _template(store, bucket, template_id, tag)
        kind = KINDS[template.tag]
        if kind.job_node is not None:
            target = child(operation, kind.job_node)
            if target is None:
                target = etree.SubElement(operation, kind.job_node)
            _merge(target, template.params)
        _replace_id(operation, "TemplateId", [("TemplateName", template.name)])
    transcode_id = text_of(operation, "TranscodeTemplateId")
    if transcode_id is not None and tag in TRANSCODE_STEP_KINDS:
        template = _template(store, bucket, transcode_id, "Transcode")
        target = child(operation, "Transcode")
        if target is None:
            target = etree.SubElement(operation, "Transcode")
        _merge(target, template.params)
        _replace_id(operation, "TranscodeTemplateId", [])
    for node in children(operation, "WatermarkTemplateId"):
        ids = [part.strip() for part in (node.text or "").split(",") if part.strip()]
        for watermark_id in ids:
            template = _template(store, bucket, watermark_id, "Watermark")
            _merge(etree.SubElement(operation, "Watermark"), template.params)
        operation.remove(node)


def _template(store: TemplateStore, bucket: str, template_id: str, tag: str) -> Template:
    template = store.get(bucket, template_id)
    if template is None:
        raise invalid_argument(f"template {template_id} does not exist")
    if template.tag != tag:
        raise invalid_argument(f"template {template_id} is a {template.tag} template, not {tag}")
    return template


def _replace_id(operation: etree._Element, name: str, instead: Fields) -> None:
    for node in children(operation, name):
        operation.remove(node)
    for field_name, value in instead:
        etree.SubElement(operation, field_name).text = value if isinstance(value, str) else None


def _merge(target: etree._Element, params: Fields) -> None:
    """Template values win: a leaf replaces the inline one, a container merges into it, and a
    node the template repeats (`AudioMixArray`) replaces every inline one of that name."""
    counts: dict[str, int] = {}
    for name, _ in params:
        counts[name] = counts.get(name, 0) + 1
    replaced: set[str] = set()
    for name, value in params:
        existing = children(target, name)
        if counts[name] > 1:
            if name not in replaced:
                for node in existing:
                    target.remove(node)
                replaced.add(name)
            _append(target, name, value)
        elif isinstance(value, list) and existing:
            _merge(existing[0], value)
        elif existing and not isinstance(value, list):  # a leaf, where the inline one stood
            first, *others = existing
            for node in others:
                target.remove(node)
            for node in list(first):
                first.remove(node)
            first.text = value
        else:
            _append(target, name, value)


def _append(parent: etree._Element, name: str, value: XmlValue) -> None:
    node = etree.SubElement(parent, name)
    if isinstance(value, list):
        for child_name, child_value in value:
            _append(node, child_name, child_value)
    elif value is not None:
        node.text = value
