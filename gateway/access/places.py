"""Every bucket and region a request names, found by walking the message.

Why a walk: a request names places beyond its own `bucket` and `region`. A submit's
`request.input.bucket_id` makes CI read from that bucket, signed with the gateway's keys, and
job kinds add more (an `Output`'s bucket and region, per-output destinations, callback
targets). A policy that checks only the fields someone remembered to list lets a client allowed
one bucket act on any other. So the policy reads every place the message holds, found by field
name through the descriptors, at any depth, in singular, repeated and map fields: a new message
with a `bucket` or `region` field is covered the day it is added, with no code here.

The names are the rule (`BUCKET_FIELDS`, `REGION_FIELDS`); a field whose name merely looks like
one (`mq_region`, a TDMQ region code such as `gz`, not a storage region) is listed, with why, in
`NOT_PLACES`. tests/access/test_places.py fails when any message reachable from the API gains a
field whose name says bucket or region and is in neither list.

A URL names a place too: CI fetches a COS URL of the account's buckets with its own role, so a
`url` field (or one ending in `_url`, or one of `URL_FIELDS`, such as AudioMix's
`audio_source`) whose host is a bucket's COS or CI host (`<bucket>.cos.<region>.myqcloud.com`)
names that bucket and region.

XML the caller writes itself is read the same way. A message shaped like a raw XML element (a
string `name`, a string `text`, repeated `children` of its own type: how the codec carries the
nodes of job kinds nobody typed) is sent to CI as written, so an element named `Bucket`,
`BucketId` or `Region` (any case) names a place just as a typed field would, and one named like
a URL field (`Url`, `AudioSource`, `...Url`) names the bucket and region of its COS URL.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

PlaceKind = Literal["bucket", "region"]

BUCKET_FIELDS = frozenset({"bucket", "bucket_id"})
REGION_FIELDS = frozenset({"region"})
NOT_PLACES: dict[str, str] = {
    "mq_region": "a TDMQ region code (sh, bj, gz, cd, hk) for callbacks, not a storage region",
}


@dataclass(frozen=True)
class Place:
    """One bucket or region a request names, and where (`request.input.bucket_id`)."""

    field: str
    kind: PlaceKind
    value: str


def _kind(name: str) -> PlaceKind | None:
    if name in BUCKET_FIELDS:
        return "bucket"
    if name in REGION_FIELDS:
        return "region"
    return None


# `examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com` and the other COS/CI host forms the
# official SDKs accept (ci-api-notes §1), any case.
_BUCKET_HOST = re.compile(
    r"(?P<bucket>[a-z0-9-]+-[0-9]+)\.(?:cos|cos-internal|cos-website|ci)\.(?P<region>[a-z0-9-]+)"
    r"\.(?:myqcloud\.com|tencentcos\.cn)\.?",
    re.IGNORECASE,
)


# Fields holding a URL CI fetches whose name does not say so: AudioMix's `AudioSource` is "the
# COS address of the audio to mix in" (Transcode, Concat, VideoMontage).
URL_FIELDS = frozenset({"url", "audio_source"})


def _is_url_field(name: str) -> bool:
    return name in URL_FIELDS or name.endswith("_url")


_URL_NODES = frozenset(name.replace("_", "") for name in URL_FIELDS)


def _is_url_node(name: str) -> bool:
    """A raw element named like a URL field: `Url`, `AudioSource`, `ImageUrl` (any case)."""
    name = name.lower().replace("_", "")
    return name in _URL_NODES or name.endswith("url")


_SPECIAL_URL = re.compile(r"(?i)(?:https?|wss?|ftp):[/\\]*(?P<rest>.*)", re.DOTALL)


def _url_hosts(url: str) -> list[str]:
    """The host as Python reads the URL, and as a WHATWG parser (browsers, many HTTP stacks)
    does, where `\\` ends the authority like `/` and the host is percent-decoded and
    IDNA-mapped. They differ on purpose-built URLs: in
    `https://victim...\\@allowed.../x` Python sees `allowed` (the rest is userinfo), a browser
    `victim`. Which reading CI's fetcher takes is not documented, so both hosts count."""
    text = url.strip()
    hosts = []
    with contextlib.suppress(ValueError):  # not a URL to Python; the other reading may be
        hosts.append(urlsplit(text).hostname or "")
    # WHATWG drops tabs and line breaks anywhere, and for http(s) any run of `/` and `\\`
    # after the scheme (`https:\\\\host`, `https:host` are `https://host`).
    special = _SPECIAL_URL.match(re.sub(r"[\t\n\r]", "", text))
    if special is not None:
        authority = re.split(r"[/\\?#]", special["rest"], maxsplit=1)[0]
        host = authority.rpartition("@")[2]
        host = host.rpartition(":")[0] if re.search(r":[0-9]*$", host) else host
        # WHATWG also percent-decodes a host and maps it through IDNA (fullwidth U+FF56 is `v`).
        hosts.append(unicodedata.normalize("NFKC", unquote(host)).lower())
    return hosts


def _url_places(path: str, url: str) -> Iterator[Place]:
    for host in dict.fromkeys(_url_hosts(url)):  # both readings lower-case it; once each
        found = _BUCKET_HOST.fullmatch(host)
        if found is not None:
            yield Place(path, "bucket", found["bucket"].lower())
            yield Place(path, "region", found["region"].lower())


# Element names, compared without case or underscores (`BucketId`, `BucketID`, `bucket_id`).
_NODE_KINDS: dict[str, PlaceKind] = {
    **{name.replace("_", ""): "bucket" for name in BUCKET_FIELDS},
    **{name.replace("_", ""): "region" for name in REGION_FIELDS},
}
_RAW_NODE: dict[type[Message], bool] = {}


def _is_raw_node(message: Message) -> bool:
    """Whether `message` is a raw XML element (`name`, `text`, `children`), decided once per
    message type."""
    known = _RAW_NODE.get(type(message))
    if known is None:
        descriptor = cast(Descriptor, message.DESCRIPTOR)
        fields = descriptor.fields_by_name
        name, text, children = (fields.get(key) for key in ("name", "text", "children"))
        known = _RAW_NODE[type(message)] = (
            name is not None
            and text is not None
            and children is not None
            and name.type == text.type == FieldDescriptor.TYPE_STRING
            and children.is_repeated
            and children.message_type is not None
            and children.message_type.full_name == descriptor.full_name
        )
    return known


# What the walk does with a set field (`_plan`).
_SKIP, _MESSAGE, _MESSAGES, _MESSAGE_MAP, _TEXT, _TEXTS = range(6)
_Plan = tuple[str, int, PlaceKind | None, bool]  # name, what to do, its place kind, a URL field
_PLANS: dict[FieldDescriptor, _Plan] = {}


def _plan(field: FieldDescriptor) -> _Plan:
    """What the walk does with `field`, read from its descriptor once: every request walks
    the same few fields, and each read of a descriptor's attribute is a call into protobuf.
    The dict holds one entry per field of the API's messages at most."""
    plan = _PLANS.get(field)
    if plan is None:
        plan = _PLANS[field] = _plan_of(field)
    return plan


def _plan_of(field: FieldDescriptor) -> _Plan:
    name = field.name
    entry = field.message_type
    if entry is not None:  # a message field
        if entry.GetOptions().map_entry:
            if entry.fields_by_name["value"].type == FieldDescriptor.TYPE_MESSAGE:
                return name, _MESSAGE_MAP, None, False
            return name, _SKIP, None, False
        return name, _MESSAGES if field.is_repeated else _MESSAGE, None, False
    kind = _kind(name)
    url = _is_url_field(name)
    if (kind is None and not url) or field.type != FieldDescriptor.TYPE_STRING:
        return name, _SKIP, None, False
    return name, _TEXTS if field.is_repeated else _TEXT, kind, url


def named_places(message: Message) -> list[Place]:
    """Every non-empty bucket and region field in `message`, depth first, with its path."""
    found: list[Place] = []
    _walk(message, "", found)
    return found


def _walk(message: Message, prefix: str, found: list[Place]) -> None:
    # Bounded by the message itself: only fields that are set (`ListFields`), and nesting no
    # deeper than protobuf's own decoding recursion limit let the message be. The caches of
    # `_is_raw_node` and `_plan` are read here, their functions called only on a miss: a
    # Python call costs about what the lookup does, on every message and field of every request.
    # Repeated fields are read as lists by one slice: a loop over the field itself ends in an
    # IndexError formatted and dropped inside protobuf (~1,500 instructions a loop).
    fields = message.ListFields()
    raw = _RAW_NODE.get(type(message))
    if raw is None:
        raw = _is_raw_node(message)
    if raw:
        # Its `name` and `text` are strings (`_is_raw_node`), "" when unset: read as attributes,
        # not from a dict of its set fields (a comprehension, ~3k instructions a node).
        node = cast(Any, message)
        name, text = str(node.name), str(node.text)
        kind = _NODE_KINDS.get(name.lower().replace("_", ""))
        if kind is not None and text:
            found.append(Place(f"{prefix}text", kind, text))
        elif _is_url_node(name):
            found.extend(_url_places(f"{prefix}text", text))
    for field, value in fields:
        plan = _PLANS.get(field)
        name, action, kind, url = _plan(field) if plan is None else plan
        if action == _SKIP:
            continue
        if action == _MESSAGE:
            _walk(value, f"{prefix}{name}.", found)
            continue
        path = prefix + name
        if action == _MESSAGES:
            for index, item in enumerate(value[:]):
                _walk(item, f"{path}[{index}].", found)
        elif action == _MESSAGE_MAP:
            for key, item in value.items():
                _walk(item, f"{path}[{key!r}].", found)
        else:
            items = value[:] if action == _TEXTS else [value]
            for index, item in enumerate(items):
                where = f"{path}[{index}]" if action == _TEXTS else path
                if url:
                    found.extend(_url_places(where, item))
                elif kind is not None and item:
                    found.append(Place(where, kind, item))
