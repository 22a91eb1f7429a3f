"""The multi-operation submit answers with CI's own reply message when it lists exactly the
operations sent, in the order sent, and nothing else (`multi_submit._answer_as_is`), instead of
copying each job into a new answer: the caller must get the same bytes either way. Any other
answer (a job missing or added, another order, a job without its id or marker, other
`<Response>` nodes) is built anew from the jobs matched by marker, as before."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._proto import media_pb2, service_pb2
from gateway.jobs.multi_submit import (
    MultiSubmitCoordinator,
    _answer_as_is,
    _matched,
    _operation_id,
    operation_marker,
)
from gateway.jobs.submit import with_marker
from gateway.upstream import xml_codec

Response = service_pb2.SubmitMediaJobsResponse
REQUEST_ID = "6f1c1d7e-4d9a-4b7e-9b1e-3f0a3c2b1a00"


def _decoded(body: bytes, *, keep_raw: bool = False) -> service_pb2.SubmitMediaJobsResponse:
    return xml_codec.decode(body, Response, root="Response", max_bytes=1 << 20, keep_raw=keep_raw)


def _ci_answer(
    user_data: list[str], order: list[int], *, job_ids: bool = True, extra: str = ""
) -> bytes:
    """CI's answer to a multi-operation POST: one job per entry of `order` (an operation's
    index), echoing that operation's UserData with the gateway's marker."""
    answer = Response()
    for index in order:
        job = answer.jobs_detail.add()
        job.job_id = f"j{index:032x}" if job_ids else ""
        job.tag = "MediaInfo"
        job.state = media_pb2.JOB_STATE_SUBMITTED
        job.operation.user_data = with_marker(user_data[index], _operation_id(REQUEST_ID, index))
        job.input.object = "in/video.mp4"
    body = xml_codec.encode(answer, root="Response")
    return body.replace(b"</Response>", extra.encode() + b"</Response>")


def _respond(jobs: dict[int, media_pb2.JobsDetail], answer: Response | None = None) -> Response:
    # `_response` reads nothing of the coordinator's.
    coordinator = object.__new__(MultiSubmitCoordinator)
    return coordinator._response(jobs, answer)


def _matched_jobs(
    answer: Response, pending: list[int]
) -> tuple[list[media_pb2.JobsDetail], dict[int, media_pb2.JobsDetail]]:
    """The answer's jobs, and those `_matched` to the `pending` operations, as `_send` has them."""
    jobs = answer.jobs_detail[:]
    return jobs, _matched(jobs, {operation_marker(REQUEST_ID, i): i for i in pending})


def _answered(body: bytes, pending: list[int], *, keep_raw: bool = False) -> Response:
    """What the caller gets: `_send`'s steps on CI's answer, then `_response` as the protocol
    calls it (CI's answer only when that send named every operation)."""
    answer = _decoded(body, keep_raw=keep_raw)
    jobs, found = _matched_jobs(answer, pending)
    as_is = answer if _answer_as_is(answer, jobs, found, pending) else None
    whole = as_is if len(found) == len(pending) else None
    response = _respond(found, whole)
    assert (response is answer) == (whole is not None)
    return response


def _built(body: bytes, pending: list[int], *, keep_raw: bool = False) -> Response:
    """The answer as it was always built: the matched jobs copied in operation order."""
    answer = _decoded(body, keep_raw=keep_raw)
    wanted = {operation_marker(REQUEST_ID, i): i for i in pending}
    return _respond(_matched(answer.jobs_detail, wanted))


def test_the_answer_type_holds_the_jobs_and_the_unknown_nodes_only() -> None:
    """`_answer_as_is` checks the jobs and `extra_nodes`: a field added to the answer type
    must be weighed there too."""
    fields = {field.name for field in Response.DESCRIPTOR.fields}
    assert fields == {"jobs_detail", "extra_nodes"}


def test_an_answer_listing_every_operation_in_order_is_the_callers_as_it_stands() -> None:
    user_data = ["", "caller's own", "  spaced  ", "x"]
    for keep_raw in (False, True):
        body = _ci_answer(user_data, [0, 1, 2, 3])
        answer = _decoded(body, keep_raw=keep_raw)
        assert _answer_as_is(answer, *_matched_jobs(answer, [0, 1, 2, 3]), [0, 1, 2, 3])
        as_is = _answered(body, [0, 1, 2, 3], keep_raw=keep_raw)
        built = _built(body, [0, 1, 2, 3], keep_raw=keep_raw)
        assert as_is.SerializeToString(deterministic=True) == built.SerializeToString(
            deterministic=True
        )
        assert [job.operation.user_data for job in as_is.jobs_detail] == user_data


@settings(max_examples=300, deadline=None)
@given(
    operations=st.integers(min_value=1, max_value=6),
    data=st.data(),
    user_data=st.lists(st.sampled_from(["", "mine", " a b ", "视频"]), min_size=6, max_size=6),
    job_ids=st.booleans(),
    extra=st.sampled_from(["", "<Surprise>x</Surprise>"]),
    keep_raw=st.booleans(),
)
def test_any_answer_gives_the_bytes_of_one_built_anew(
    operations: int,
    data: st.DataObject,
    user_data: list[str],
    job_ids: bool,
    extra: str,
    keep_raw: bool,
) -> None:
    """Whatever CI answers (every operation or some, in order or not, a job twice, one of an
    operation not sent, jobs without ids, other nodes), the caller gets what the answer built
    anew from the matched jobs would give."""
    pending = sorted(
        data.draw(st.sets(st.integers(0, operations - 1), min_size=1), label="pending")
    )
    listed = data.draw(
        st.lists(st.integers(0, operations - 1), max_size=operations + 1), label="listed"
    )
    if data.draw(st.booleans(), label="exactly the pending, in order"):
        listed = list(pending)
    body = _ci_answer(user_data, listed, job_ids=job_ids, extra=extra)
    as_is = _answered(body, pending, keep_raw=keep_raw)
    built = _built(body, pending, keep_raw=keep_raw)
    assert as_is.SerializeToString(deterministic=True) == built.SerializeToString(
        deterministic=True
    )
    answer = _decoded(body)
    if _answer_as_is(answer, *_matched_jobs(answer, pending), pending):
        assert listed == pending and job_ids and not extra


def test_an_answer_out_of_order_or_with_other_nodes_is_built_anew() -> None:
    for body in (
        _ci_answer(["a", "b", "c"], [1, 0, 2]),
        _ci_answer(["a", "b", "c"], [0, 1, 2], extra="<Surprise>x</Surprise>"),
        _ci_answer(["a", "b", "c"], [0, 1]),
        _ci_answer(["a", "b", "c"], [0, 1, 2, 2]),
        _ci_answer(["a", "b", "c"], [0, 1, 2], job_ids=False),
    ):
        answer = _decoded(body)
        assert not _answer_as_is(answer, *_matched_jobs(answer, [0, 1, 2]), [0, 1, 2])
    shuffled = _ci_answer(["a", "b", "c"], [2, 0, 1])
    built = _answered(shuffled, [0, 1, 2])
    assert [job.operation.user_data for job in built.jobs_detail] == ["a", "b", "c"]
    assert not built.extra_nodes
