"""Templates as code: a declarative file, the bucket's custom templates, and the plan between.

The file (TOML) names each template by kind and name and gives its parameters as the kind's
typed container of `MediaTemplate`, with the proto's field names; numbers and booleans are
written as CI's text (`1280` -> `"1280"`, `true` -> `"true"`), since every CI scalar is text::

    bucket = "examplebucket-1250000000"   # optional: the gateway's default
    region = "ap-guangzhou"               # optional: the gateway's default
    prune = false                         # true: delete the bucket's other templates (typed kinds)
    strict = false                        # true: a field CI has and the file lacks is drift too

    [[templates]]
    tag = "Transcode"
    name = "mp4-720p"
    [templates.params]
    container = { format = "mp4" }
    video = { codec = "H.264", width = 1280, fps = 30 }

A template is known by (tag, name). The plan compares each one the file names with the bucket's
custom template of that kind and name: absent -> create; different -> update; equal -> in sync.
"Different" means a field the file sets has another value in CI (CI may fill in defaults of its
own, which are no drift); with `strict`, any difference at all. With `prune`, every other
custom template of a typed kind is deleted (kinds the file cannot describe are left alone).

Pure: no I/O. `desired_from` reads a parsed file, `plan` compares, `Change.diff` renders.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from google.protobuf import json_format, text_format
from google.protobuf.message import Message

from gateway._proto import templates_pb2

if TYPE_CHECKING:  # protoc's stubs type an extension as a bare FieldDescriptor
    from google.protobuf.descriptor_pb2 import FieldOptions
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

_OPTION = cast(
    "_ExtensionFieldDescriptor[FieldOptions, templates_pb2.TemplateContainer]",
    templates_pb2.template_params,
)
TOP_KEYS = frozenset({"bucket", "region", "prune", "strict", "templates"})
TEMPLATE_KEYS = frozenset({"tag", "name", "params"})


class PlanError(ValueError):
    """The file does not describe templates (the message names where)."""


def containers() -> dict[str, str]:
    """Each typed kind's `MediaTemplate` field, read from templates.proto's options."""
    found: dict[str, str] = {}
    for descriptor in templates_pb2.MediaTemplate.DESCRIPTOR.fields:
        options = descriptor.GetOptions()
        if descriptor.has_options and options.HasExtension(_OPTION):
            found[options.Extensions[_OPTION].tag] = descriptor.name
    return found


@dataclass(frozen=True)
class Desired:
    bucket: str
    region: str
    prune: bool
    strict: bool
    templates: tuple[templates_pb2.MediaTemplate, ...]


def _as_text(value: object, where: str) -> object:
    """TOML values as CI's text: tables and arrays recursively, scalars as strings."""
    if isinstance(value, dict):
        return {key: _as_text(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_as_text(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise PlanError(f"{where}: {type(value).__name__} values have no CI text")


def desired_from(document: Mapping[str, Any], *, source: str) -> Desired:
    """The templates a parsed file asks for; `PlanError` names the first problem."""
    unknown = set(document) - TOP_KEYS
    if unknown:
        raise PlanError(f"{source}: unknown keys {', '.join(sorted(unknown))}")
    for key in ("bucket", "region"):
        if not isinstance(document.get(key, ""), str):
            raise PlanError(f"{source}: {key} must be a string")
    for key in ("prune", "strict"):
        if not isinstance(document.get(key, False), bool):
            raise PlanError(f"{source}: {key} must be true or false")
    entries = document.get("templates", [])
    if not isinstance(entries, list):
        raise PlanError(f"{source}: templates must be an array of tables ([[templates]])")
    kinds = containers()
    templates: list[templates_pb2.MediaTemplate] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        where = f"{source}: templates[{index}]"
        if not isinstance(entry, dict):
            raise PlanError(f"{where}: must be a table")
        extra = set(entry) - TEMPLATE_KEYS
        if extra:
            raise PlanError(f"{where}: unknown keys {', '.join(sorted(extra))}")
        tag, name = entry.get("tag"), entry.get("name")
        if not isinstance(tag, str) or tag not in kinds:
            raise PlanError(f"{where}: tag must be one of {', '.join(sorted(kinds))}")
        if not isinstance(name, str) or not name:
            raise PlanError(f"{where}: name is required")
        if (tag, name) in seen:
            raise PlanError(f"{where}: a second {tag} template named {name!r}")
        seen.add((tag, name))
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise PlanError(f"{where}: params must be a table")
        template = templates_pb2.MediaTemplate(tag=tag, name=name)
        container = getattr(template, kinds[tag])
        text = cast(dict[str, Any], _as_text(params, f"{where}.params"))
        try:
            json_format.ParseDict(text, container)
        except json_format.ParseError as exc:
            raise PlanError(f"{where}.params: {exc}") from None
        container.SetInParent()  # an empty table still says "this kind, no parameters"
        templates.append(template)
    return Desired(
        document.get("bucket", ""),
        document.get("region", ""),
        document.get("prune", False),
        document.get("strict", False),
        tuple(templates),
    )


def projection(actual: Message, wanted: Message) -> Message:
    """`actual` with only the fields `wanted` sets (recursively): what CI has of what the file
    asks, so that defaults CI fills in are not drift."""
    projected = type(actual)()
    for descriptor, value in wanted.ListFields():
        name = descriptor.name
        ours = getattr(actual, name)
        if descriptor.message_type is not None and not descriptor.is_repeated:
            if actual.HasField(name):
                getattr(projected, name).CopyFrom(projection(ours, value))
        elif descriptor.is_repeated:
            getattr(projected, name).extend(ours)
        else:
            setattr(projected, name, ours)
    return projected


def _lines(message: Message | None) -> list[str]:
    if message is None:
        return []
    return text_format.MessageToString(message, as_utf8=True).splitlines()


@dataclass(frozen=True)
class Change:
    action: str  # create | update | delete
    tag: str
    name: str
    template_id: str = ""
    before: Message | None = None  # CI's side (projected unless strict)
    after: Message | None = None  # the file's side
    desired: templates_pb2.MediaTemplate | None = field(default=None, compare=False)

    def title(self) -> str:
        where = f" ({self.template_id})" if self.template_id else ""
        return f"{self.action} {self.tag} template {self.name!r}{where}"

    def diff(self, source: str) -> list[str]:
        """A unified diff of the parameters, CI's side first (`text_format` of the container)."""
        return list(
            difflib.unified_diff(
                _lines(self.before),
                _lines(self.after),
                fromfile=f"CI {self.template_id or '(none)'}",
                tofile=source,
                lineterm="",
            )
        )

    def as_dict(self, source: str) -> dict[str, object]:
        return {
            "action": self.action,
            "tag": self.tag,
            "name": self.name,
            "template_id": self.template_id,
            "diff": self.diff(source),
        }


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    in_sync: tuple[tuple[str, str], ...]
    ignored: tuple[tuple[str, str], ...]
    """Custom templates of kinds the file cannot describe: never touched."""

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)


def plan(desired: Desired, actual: Iterable[templates_pb2.MediaTemplate]) -> Plan:
    """What would make the bucket's custom templates match `desired` (see the module docstring)."""
    kinds = containers()
    by_key: dict[tuple[str, str], list[templates_pb2.MediaTemplate]] = {}
    ignored: list[tuple[str, str]] = []
    for template in actual:
        if template.tag in kinds:
            by_key.setdefault((template.tag, template.name), []).append(template)
        else:
            ignored.append((template.tag, template.name))
    changes: list[Change] = []
    in_sync: list[tuple[str, str]] = []
    for wanted in desired.templates:
        key = (wanted.tag, wanted.name)
        params = getattr(wanted, kinds[wanted.tag])
        found = by_key.pop(key, [])
        if not found:
            changes.append(Change("create", *key, after=params, desired=wanted))
            continue
        first, *duplicates = found
        ci_params = getattr(first, kinds[wanted.tag])
        before = ci_params if desired.strict else projection(ci_params, params)
        if before == params:
            in_sync.append(key)
        else:
            changes.append(
                Change("update", *key, first.template_id, before, params, desired=wanted)
            )
        # Two templates of one kind and name: the file names one, the other is not its.
        by_key.setdefault(key, []).extend(duplicates)
    if desired.prune:
        for key in sorted(by_key):
            for extra in by_key[key]:
                before = getattr(extra, kinds[extra.tag])
                changes.append(Change("delete", *key, extra.template_id, before=before))
    return Plan(tuple(changes), tuple(in_sync), tuple(sorted(ignored)))


def summary(result: Plan) -> str:
    counts = ", ".join(
        f"{result.count(action)} to {action}" for action in ("create", "update", "delete")
    )
    return f"{counts}, {len(result.in_sync)} in sync"


def render(result: Plan, source: str) -> Sequence[str]:
    """The plan for people: one heading per change, then its diff."""
    lines: list[str] = []
    marks = {"create": "+", "update": "~", "delete": "-"}
    for change in result.changes:
        lines.append(f"{marks[change.action]} {change.title()}")
        lines += (f"    {line}" for line in change.diff(source))
    for tag, name in result.ignored:
        lines.append(f"  ignored {tag} template {name!r}: its kind has no typed parameters")
    return lines
