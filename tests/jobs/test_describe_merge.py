"""`gateway.jobs.describe.merge` and `batches`: pure functions over CI's answers. The emulator
answers in the order asked; CI's order is undocumented, so the merge's reordering is shown here
with answers in another order."""

from __future__ import annotations

from gateway._proto import media_pb2, service_pb2, xml_pb2
from gateway.jobs.describe import batches, merge
from gateway.upstream.client import Reply

M, S = media_pb2, service_pb2


def answer(
    found: list[str], missing: list[str], extra: str = ""
) -> Reply[S.DescribeMediaJobsResponse]:
    message = S.DescribeMediaJobsResponse(
        jobs_detail=[M.JobsDetail(job_id=job_id) for job_id in found],
        non_exist_job_ids=missing,
    )
    if extra:
        message.extra_nodes.append(xml_pb2.XmlNode(name=extra))
    return Reply(message, "req-" + (found or missing)[0])


def test_batches_keep_the_order_and_carry_at_most_ten() -> None:
    ids = [f"j{index}" for index in range(21)]
    assert [len(run) for run in batches(ids)] == [10, 10, 1]
    assert [job_id for run in batches(ids) for job_id in run] == ids


def test_the_merged_answer_is_in_the_order_asked_whatever_order_ci_answered_in() -> None:
    asked = ["a", "b", "c", "d", "e", "f"]
    merged = merge(
        asked,
        [
            answer(["c", "a"], ["b"], extra="First"),
            answer(["f"], ["e", "d"], extra="Second"),
        ],
    )
    assert [job.job_id for job in merged.jobs_detail] == ["a", "c", "f"]
    assert list(merged.non_exist_job_ids) == ["b", "d", "e"]
    assert [node.name for node in merged.extra_nodes] == ["First", "Second"]


def test_a_job_ci_answered_without_being_asked_comes_last_as_it_came() -> None:
    merged = merge(["a", "b"], [answer(["x", "b"], []), answer(["y", "a"], [])])
    assert [job.job_id for job in merged.jobs_detail] == ["a", "b", "x", "y"]
