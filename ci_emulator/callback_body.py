"""The body of a job-completion callback, in CI's XML or JSON form (notes §7, sample §3.3).

XML: `<Response><EventName>TaskFinish</EventName><JobsDetail>…</JobsDetail></Response>`, the
JobsDetail exactly as DescribeMediaJob renders it (alphabetical, as the callback sample is).

JSON: `{"EventName": "TaskFinish", "JobsDetail": {…}}`, converted from the same fields the way
CI's samples show an XML document turned into JSON:

* every value is a string (`"NumStream": "2"`), never a number;
* an empty element (`<Message/>`, `<Subtitle/>`) is left out, as in the MediaInfo JSON sample;
* a node that appears once is an object; a repeated one (two `Audio` streams) is an array of
  objects. UNCONFIRMED: the samples only ever show one stream of a kind, and this is the
  XML-to-JSON rule every other field of the sample follows;
* `JobsDetail` is an object, or, with `as_array`, a one-element array: CI's samples show both
  (MediaInfo/Concat/Tts: object; VideoMontage/VoiceSeparate/…: array), so a switch lets a client
  be tested against each.
"""

from __future__ import annotations

import json
from typing import Final

from ci_emulator.jobs import Job, full_detail
from ci_emulator.xmlbuild import Fields, XmlValue, render_response

EVENT_NAME: Final = "TaskFinish"
XML_CONTENT_TYPE: Final = "application/xml"
JSON_CONTENT_TYPE: Final = "application/json"
"""UNCONFIRMED: the docs name application/xml for XML bodies and nothing for JSON ones."""


def xml_body(job: Job) -> bytes:
    return render_response([("EventName", EVENT_NAME), ("JobsDetail", full_detail(job))])


def json_body(job: Job, *, as_array: bool = False) -> bytes:
    detail = fields_to_json(full_detail(job))
    document = {"EventName": EVENT_NAME, "JobsDetail": [detail] if as_array else detail}
    return json.dumps(document, ensure_ascii=False).encode()


def fields_to_json(fields: Fields) -> dict[str, object]:
    """Fields -> JSON object: strings stay, empty nodes vanish, repeated names become arrays."""
    grouped: dict[str, list[object]] = {}
    for name, value in fields:
        converted = _value(value)
        if converted is not None:
            grouped.setdefault(name, []).append(converted)
    return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}


def _value(value: XmlValue) -> object | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return fields_to_json(value)
