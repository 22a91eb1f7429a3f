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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from google.protobuf.descriptor import FieldDescriptor
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


def named_places(message: Message) -> list[Place]:
    """Every non-empty bucket and region field in `message`, depth first, with its path."""
    return list(_walk(message, ""))


def _walk(message: Message, prefix: str) -> Iterator[Place]:
    # Bounded by the message itself: only fields that are set (`ListFields`), and nesting no
    # deeper than protobuf's own decoding recursion limit let the message be.
    for field, value in message.ListFields():
        path = prefix + field.name
        entry = field.message_type
        if entry is not None:  # a message field
            if entry.GetOptions().map_entry:
                if entry.fields_by_name["value"].type == FieldDescriptor.TYPE_MESSAGE:
                    for key, item in value.items():
                        yield from _walk(item, f"{path}[{key!r}].")
            elif field.is_repeated:
                for index, item in enumerate(value):
                    yield from _walk(item, f"{path}[{index}].")
            else:
                yield from _walk(value, f"{path}.")
            continue
        kind = _kind(field.name)
        if kind is None or field.type != FieldDescriptor.TYPE_STRING:
            continue
        items = list(value) if field.is_repeated else [value]
        for index, item in enumerate(items):
            if item:
                yield Place(f"{path}[{index}]" if field.is_repeated else path, kind, item)
