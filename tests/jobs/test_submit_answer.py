"""The single-form submit answers with CI's own reply message when it holds nothing but the job
(`gateway.jobs.submit._answer_as_is`), instead of copying the job into a new answer: the caller
must get the same bytes either way, and an answer with other `<Response>` nodes is still built
anew without them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway._proto import service_pb2
from gateway.jobs.submit import SubmitCoordinator, _answer_as_is, with_marker
from gateway.upstream import xml_codec

ANSWER = (Path(__file__).resolve().parents[2] / "bench" / "answers" / "submit.xml").read_bytes()


def _decoded(body: bytes) -> service_pb2.SubmitMediaJobResponse:
    return xml_codec.decode(
        body, service_pb2.SubmitMediaJobResponse, root="Response", max_bytes=1 << 20
    )


def _marked(body: bytes, user_data: str) -> bytes:
    """CI's answer echoing `user_data` with the gateway's marker, as it echoes a submit's."""
    answer = _decoded(body)
    answer.jobs_detail.operation.user_data = with_marker(user_data, "req-1")
    return xml_codec.encode(answer, root="Response")


def _respond(jobs: dict[int, Any], answer: Any = None) -> service_pb2.SubmitMediaJobResponse:
    # `_response` reads nothing of the coordinator's.
    coordinator = object.__new__(SubmitCoordinator)
    return coordinator._response(jobs, answer)


def test_the_answer_type_holds_the_job_and_the_unknown_nodes_only() -> None:
    """`_answer_as_is` checks `extra_nodes` alone: a field added to the answer type must be
    weighed there too (would CI's answer then carry something the caller's must not?)."""
    fields = {field.name for field in service_pb2.SubmitMediaJobResponse.DESCRIPTOR.fields}
    assert fields == {"jobs_detail", "extra_nodes"}


def test_ci_answer_as_is_gives_the_bytes_of_one_built_anew() -> None:
    for user_data in ("", "caller's own data", "  spaced  "):
        body = _marked(ANSWER, user_data)
        as_is, copied = _decoded(body), _decoded(body)
        assert _answer_as_is(as_is)
        answered = _respond({0: as_is.jobs_detail}, as_is)
        built = _respond({0: copied.jobs_detail})
        assert answered is as_is
        assert answered.SerializeToString(deterministic=True) == built.SerializeToString(
            deterministic=True
        )
        assert answered.jobs_detail.operation.user_data == user_data


def test_an_answer_with_other_nodes_is_built_anew_without_them() -> None:
    body = _marked(ANSWER, "mine").replace(b"</Response>", b"<Surprise>x</Surprise></Response>")
    answer = _decoded(body)
    assert [node.name for node in answer.extra_nodes] == ["Surprise"]
    assert not _answer_as_is(answer)
    built = _respond({0: answer.jobs_detail})
    assert not built.extra_nodes
    assert built.jobs_detail.job_id == answer.jobs_detail.job_id
    assert built.jobs_detail.operation.user_data == "mine"
