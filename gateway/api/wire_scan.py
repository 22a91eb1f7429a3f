"""Counts a request's messages and list items from its bytes, before anything parses them.

Why before: parsing builds every element, and an element costs far more parsed than on the
wire. An empty `Operation` is two bytes on the wire and about 330 bytes parsed (upb reserves
room for each of its fields), so one 8 MiB request holding four million of them took 1.4 GB
for the half second of its parse: one call put the process over a pod's memory limit, and
before its caller was even authenticated (the access policy reads the parsed request).

The scan walks the Protobuf wire format along the request type's descriptors: a nested message
it descends into, a string or a number it counts as one element, a packed list of numbers as
one element per byte (each takes one at least). It stops as soon as the budget is spent, so
refusing a huge request costs at most that many steps. Bytes it cannot read as a proto3 message
(a field that runs past the end, a group, nesting deeper than the parser's own limit) are
`CORRUPT`: no client of this API sends them, and the parser would refuse most of them anyway.
"""

from __future__ import annotations

import enum

from google.protobuf.descriptor import Descriptor, FieldDescriptor

MAX_DEPTH = 100
"""Deepest nesting: Protobuf's own decoding recursion limit."""

_NOT_PACKED = frozenset({FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES})


class Verdict(enum.Enum):
    FITS = "fits"
    TOO_MANY = "too many elements"
    CORRUPT = "wire format was corrupt"


class _Stop(Exception):
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict


def scan(data: bytes, descriptor: Descriptor, budget: int) -> Verdict:
    """Whether `data`, read as a `descriptor` message, holds at most `budget` elements."""
    try:
        _message(data, 0, len(data), descriptor, [budget], 0)
    except _Stop as stop:
        return stop.verdict
    return Verdict.FITS


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    value = shift = 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _Stop(Verdict.CORRUPT)


def _message(
    data: bytes, pos: int, end: int, descriptor: Descriptor, budget: list[int], depth: int
) -> None:
    fields = descriptor.fields_by_number
    while pos < end:
        key, pos = _varint(data, pos, end)
        wire = key & 7
        if wire == 0:
            _, pos = _varint(data, pos, end)
            budget[0] -= 1
        elif wire == 1 or wire == 5:
            pos += 8 if wire == 1 else 4
            budget[0] -= 1
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            stop = pos + length
            if stop > end:
                raise _Stop(Verdict.CORRUPT)
            field = fields.get(key >> 3)
            nested = field.message_type if field is not None else None
            if nested is not None:
                budget[0] -= 1
                if depth >= MAX_DEPTH:
                    raise _Stop(Verdict.CORRUPT)
                if budget[0] >= 0:
                    _message(data, pos, stop, nested, budget, depth + 1)
            elif field is not None and field.is_repeated and field.type not in _NOT_PACKED:
                budget[0] -= max(length, 1)  # packed numbers: one byte each at least
            else:
                budget[0] -= 1  # a string, bytes, or a field this type does not know
            pos = stop
        else:  # groups (3, 4), which proto3 has not, and the undefined 6 and 7
            raise _Stop(Verdict.CORRUPT)
        if budget[0] < 0:
            raise _Stop(Verdict.TOO_MANY)
    if pos != end:  # a fixed-width value ran past the end
        raise _Stop(Verdict.CORRUPT)
