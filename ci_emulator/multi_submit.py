"""CreateMediaJobs' multi-operation form, read as the single-operation requests it stands for.

CI's shape (job catalogue §2.1): `<Request><Input/><Operation><Tag/>...</Operation>x(<=6)
<QueueId/>...</Request>`, no `Tag` at the top, each `Operation` naming its own kind; the answer
is one `JobsDetail` per Operation, in order. Rather than a second parser, each Operation becomes
the single-form request it would be (the shared envelope, its `Tag`, itself without `Tag`),
which `submit.parse_submit` then checks like any other: whatever a kind needs alone, it needs
in a group too.

Choices where CI is silent (UNCONFIRMED, documented here):

* all or nothing: every operation is validated before any job is created, so one invalid
  operation refuses the whole request (CI's partial-failure semantics are undocumented);
* more than 6 operations is InvalidArgument (the documented bound);
* an operation without `Tag` in this form is InvalidArgument, and a request with a top-level
  `Tag` is the single form (several `Operation`s there stay NotImplemented, as before).
"""

from __future__ import annotations

import copy
from typing import Final

from lxml import etree

from ci_emulator.errors import invalid_argument

MAX_OPERATIONS: Final = 6


def _named(element: etree._Element, name: str) -> list[etree._Element]:
    return list(element.iterchildren(f"{{*}}{name}"))


def split_operations(request: etree._Element) -> list[etree._Element] | None:
    """The single-form requests a multi-operation `<Request>` stands for, one per Operation in
    order; None when `request` is in the single form (a top-level `Tag`, or no Operation that
    names a `Tag`), which the caller parses as it is."""
    if _named(request, "Tag"):
        return None
    operations = _named(request, "Operation")
    if not any(_named(operation, "Tag") for operation in operations):
        return None
    if len(operations) > MAX_OPERATIONS:
        raise invalid_argument(f"at most {MAX_OPERATIONS} Operation nodes may be sent at once")
    envelope = [node for node in request if isinstance(node.tag, str) and node not in operations]
    singles = []
    for index, operation in enumerate(operations):
        tags = _named(operation, "Tag")
        tag = (tags[0].text or "").strip() if len(tags) == 1 else ""
        if not tag:
            raise invalid_argument(f"Operation {index + 1} needs exactly one Tag")
        single = etree.Element("Request")
        etree.SubElement(single, "Tag").text = tag
        for node in envelope:
            single.append(copy.deepcopy(node))
        own = copy.deepcopy(operation)
        for node in _named(own, "Tag"):
            own.remove(node)
        single.append(own)
        singles.append(single)
    return singles
