"""The protos' comments are the API's documentation for callers: where the gateway does more
than pass a field to CI, or takes fewer values than the field's type allows, the comment says so,
and says what the code does (the values are taken from the code, not restated here)."""

from __future__ import annotations

import re
from pathlib import Path

from gateway._proto import media_pb2
from gateway.api.resource_validation import RUN_STATES

PROTOS = Path(__file__).resolve().parent.parent / "protos" / "ci" / "media" / "v1"


def field_comment(proto: str, message: str, field: str) -> str:
    """The `//` lines right above `field` in `message`, joined into one text."""
    text = (PROTOS / proto).read_text(encoding="utf-8")
    body = re.search(rf"^message {message} \{{\n(.*?)^\}}", text, re.MULTILINE | re.DOTALL)
    assert body, message
    lines = body.group(1).splitlines()
    at = next(i for i, line in enumerate(lines) if re.match(rf"\s+\S.* {field} = \d+", line))
    comment: list[str] = []
    for line in reversed(lines[:at]):
        if not line.strip().startswith("//"):
            break
        comment.insert(0, line.strip().removeprefix("//").strip())
    return " ".join(comment)


def test_list_media_jobs_queue_id_says_the_gateway_names_the_only_queue() -> None:
    comment = field_comment("service.proto", "ListMediaJobsRequest", "queue_id")
    assert "required" in comment
    assert "only media queue" in comment
    assert "several" in comment  # when it names none


def words(text: str) -> set[str]:
    return set(re.findall(r"[A-Z]{2,}", text))


def test_list_workflow_executions_states_names_the_states_a_run_can_be_in() -> None:
    comment = field_comment("workflows.proto", "ListWorkflowExecutionsRequest", "states")
    accepted = re.search(r"A run is ([A-Z, or]+) \(", comment)
    refused = re.search(r"; ([A-Z, or]+) is refused with INVALID_ARGUMENT", comment)
    assert accepted and refused, comment
    names = {
        name.removeprefix("JOB_STATE_")
        for name in (v.name for v in media_pb2.JobState.DESCRIPTOR.values)
    }
    run_states = {state.upper() for state in RUN_STATES}
    assert words(accepted.group(1)) == run_states
    assert words(refused.group(1)) == names - run_states - {"UNSPECIFIED"}
