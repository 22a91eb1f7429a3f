"""Typed reads of Operation nodes with CI's refusals: numbers in ranges, enumerations, flags,
object keys and COS URLs. Every refusal is InvalidArgument 400 naming the node's path, so a
client learns which node CI would reject. Shared by `validate`'s per-kind parsers."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from fractions import Fraction
from typing import Final
from urllib.parse import unquote

from lxml import etree

from ci_emulator.config import BucketConfig
from ci_emulator.errors import CiError, invalid_argument
from ci_emulator.media import placeholders
from ci_emulator.media.model import ObjectRef, TimeSpan
from ci_emulator.objects import is_mappable_key
from ci_emulator.xmlread import child, children, text_of

BucketLookup = Callable[[str], BucketConfig | None]

MAX_SECONDS: Final = 43200.0
"""Largest time CI accepts in TimeInterval and friends (12 hours)."""

_COS_URL: Final = re.compile(
    r"^https?://(?P<bucket>[a-z0-9-]+-\d+)\.(?:cos|ci)\.(?P<region>[a-z0-9-]+)"
    r"\.myqcloud\.com/(?P<key>.+)$"
)
_TRUE_FALSE: Final = {"true": True, "false": False}
_INTEGER: Final = re.compile(r"-?[0-9]+")


class Node:
    """An element and its path from `Operation`, for messages (`Transcode.Video.Width`)."""

    def __init__(self, element: etree._Element, path: str) -> None:
        self.element = element
        self.path = path

    def child(self, name: str) -> Node | None:
        found = child(self.element, name)
        return None if found is None else Node(found, self._at(name))

    def children(self, name: str) -> list[Node]:
        return [Node(found, self._at(name)) for found in children(self.element, name)]

    def require(self, name: str) -> Node:
        found = self.child(name)
        if found is None:
            raise invalid_argument(f"{self._at(name)} is required")
        return found

    def text(self, name: str, *, strip: bool = True) -> str | None:
        return text_of(self.element, name, strip=strip)

    def required_text(self, name: str, *, strip: bool = True) -> str:
        value = self.text(name, strip=strip)
        if value is None:
            raise invalid_argument(f"{self._at(name)} is required")
        return value

    def enum(self, name: str, allowed: Collection[str], default: str | None = None) -> str | None:
        value = self.text(name)
        if value is None:
            return default
        if value not in allowed:
            raise invalid_argument(f"{self._at(name)} must be one of {', '.join(sorted(allowed))}")
        return value

    def required_enum(self, name: str, allowed: Collection[str]) -> str:
        value = self.enum(name, allowed)
        if value is None:
            raise invalid_argument(f"{self._at(name)} is required")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() not in _TRUE_FALSE:
            raise invalid_argument(f"{self._at(name)} must be true or false")
        return _TRUE_FALSE[value.lower()]

    def number(self, name: str, low: float, high: float, *, open_low: bool = False) -> float | None:
        """A decimal in [low, high] ((low, high] with `open_low`); None when absent."""
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        below = number <= low if open_low else number < low
        if number != number or below or number > high:  # NaN fails every comparison
            bracket = "(" if open_low else "["
            raise invalid_argument(f"{self._at(name)} must be a number in {bracket}{low}, {high}]")
        return number

    def integer(self, name: str, low: int, high: int, *, even: bool = False) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        # One optional minus sign: `--5` is no integer (int() would raise, answering 500).
        if not _INTEGER.fullmatch(value) or not low <= int(value) <= high:
            raise invalid_argument(f"{self._at(name)} must be an integer in [{low}, {high}]")
        if even and int(value) % 2:
            raise invalid_argument(f"{self._at(name)} must be even")
        return int(value)

    def rate(self, name: str, high: float) -> Fraction | None:
        value = self.number(name, 0, high, open_low=True)
        return None if value is None else Fraction(value).limit_denominator(1001)

    def _at(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name


def time_span(node: Node | None) -> TimeSpan:
    """`TimeInterval{Start, Duration}` in seconds."""
    if node is None:
        return TimeSpan()
    start = node.number("Start", 0, MAX_SECONDS) or 0.0
    duration = node.number("Duration", 0, MAX_SECONDS, open_low=True)
    return TimeSpan(start, duration)


def no_templates(operation: Node, *names: str) -> None:
    """A safety net: the submit path merges every template a job names into its Operation and
    removes the ids (`templates.resolve_job_templates`) before this runs, so an id still here
    was not resolved, and the job cannot be run as CI would run it: NotImplemented, never
    silently run with defaults."""
    for name in ("TemplateId", *names):
        if operation.text(name) is not None:
            raise CiError(
                "NotImplemented", f"the CI emulator could not resolve Operation.{name}; send "
                "inline parameters"
            )  # fmt: skip


def output_bucket(node: Node, buckets: BucketLookup) -> tuple[str, str]:
    """`Output.Region` and `Output.Bucket`: a bucket this emulator serves, in its region."""
    region = node.required_text("Region")
    bucket = node.required_text("Bucket")
    config = buckets(bucket)
    if config is None:
        raise invalid_argument(f"{node.path}.Bucket {bucket} is not a bucket bound to CI")
    if config.region != region:
        raise invalid_argument(f"{node.path}.Region {region} is not the region of {bucket}")
    return bucket, region


def key_template(node: Node, name: str, *, number: bool | None) -> str | None:
    """An output key: mappable once its placeholders are filled; `number` True requires
    `${Number}`, False refuses it (one file), None allows either."""
    key = node.text(name, strip=False)
    if key is None:
        return None
    sample = placeholders.expand(key, input_key="input.mp4", ext="mp4", number=0)
    if not is_mappable_key(sample):
        raise invalid_argument(f"{node.path}.{name} {key!r} is not a valid object key")
    has = placeholders.has_number(key)
    if number is True and not has:
        raise invalid_argument(f"{node.path}.{name} must contain ${{Number}}: it names many files")
    if number is False and has:
        raise invalid_argument(f"{node.path}.{name} names one file and must not hold ${{Number}}")
    return key


def cos_url(node: Node, name: str, buckets: BucketLookup) -> ObjectRef:
    """A COS object URL (`https://<bucket>.cos.<region>.myqcloud.com/<key>`) of a bucket this
    emulator serves: the only URLs it can read (it never fetches from the network)."""
    url = node.required_text(name)
    match = _COS_URL.match(url)
    if match is None:
        raise invalid_argument(f"{node.path}.{name} must be a COS object URL of a bound bucket")
    bucket, region, key = match["bucket"], match["region"], unquote(match["key"])
    config = buckets(bucket)
    if config is None or config.region != region:
        raise invalid_argument(f"{node.path}.{name} names a bucket not bound to CI: {bucket}")
    if not is_mappable_key(key):
        raise invalid_argument(f"{node.path}.{name} names an invalid object key")
    return ObjectRef(bucket, region, key)
