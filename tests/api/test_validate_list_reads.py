"""`validate_list` reads each field of the request once (and its states by one slice) instead
of once per use: the same target, parameters and violations as the form that read them again,
kept here (`reference_validate_list`, as of 2e96bd6) for a hypothesis comparison."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import kinds
from gateway._proto import media_pb2, service_pb2
from gateway.api import validation
from gateway.api.validation import validate_list
from gateway.config.settings import Settings
from gateway.errors import InvalidRequest
from gateway.model import Target
from gateway.upstream import xml_codec

DEFAULTS = Settings(default_bucket="examplebucket-1250000000", default_region="ap-guangzhou")


def reference_validate_list(
    rpc: service_pb2.ListMediaJobsRequest, settings: Settings
) -> tuple[Target, dict[str, str]]:
    v = validation
    errors = v._Violations()
    target = v._target(rpc.bucket, rpc.region, settings, errors)
    if rpc.queue_id and not v._QUEUE_ID.fullmatch(rpc.queue_id):
        errors.add("queue_id", "must be a CI queue id")
    tag = rpc.tag or kinds.DEFAULT_TAG
    if kinds.kind(tag) is None:
        errors.add("tag", v.UNKNOWN_TAG)
    states: list[str] = []
    for index, state in enumerate(rpc.states):
        if state == media_pb2.JOB_STATE_UNSPECIFIED or state not in v._JOB_STATES:
            errors.add(f"states[{index}]", "must be a known job state")
        else:
            states.append(xml_codec.enum_wire_name(media_pb2.JobState.DESCRIPTOR, state))
    if rpc.order_by_time not in v._ORDERS_BY_TIME:
        errors.add("order_by_time", "must be ORDER_BY_TIME_DESC or ORDER_BY_TIME_ASC")
    if not 0 <= rpc.size <= v.MAX_LIST_SIZE:
        errors.add("size", f"must be between 1 and {v.MAX_LIST_SIZE} (0 = CI's default)")
    start_creation_time = v._creation_time(rpc.start_creation_time, "start_creation_time", errors)
    end_creation_time = v._creation_time(rpc.end_creation_time, "end_creation_time", errors)
    if rpc.input_object:
        v._object_key(rpc.input_object, "input_object", errors)
    for field, value in (
        ("workflow_id", rpc.workflow_id),
        ("inventory_trigger_job_id", rpc.inventory_trigger_job_id),
    ):
        if value and not v._JOB_ID.fullmatch(value):
            errors.add(field, "must be a CI id (letters, digits, '-', '_'; at most 64)")
    v._page_token(rpc.next_token, "next_token", errors)
    errors.raise_if_any()
    params = {"tag": tag}
    optional = {
        "queueId": rpc.queue_id,
        "states": ",".join(dict.fromkeys(states)),
        "orderByTime": xml_codec.enum_wire_name(
            service_pb2.OrderByTime.DESCRIPTOR, rpc.order_by_time
        )
        if rpc.order_by_time
        else "",
        "size": str(rpc.size) if rpc.size else "",
        "startCreationTime": start_creation_time,
        "endCreationTime": end_creation_time,
        "inputObject": rpc.input_object,
        "workflowId": rpc.workflow_id,
        "inventoryTriggerJobId": rpc.inventory_trigger_job_id,
    }
    params.update({name: value for name, value in optional.items() if value})
    params["nextToken"] = rpc.next_token
    return target, params


def field(valid: list[str], invalid: list[str]) -> st.SearchStrategy[str]:
    """Mostly valid (empty or a sample), so that many requests pass as a whole; else a bad
    sample or any text."""
    return st.integers(min_value=0, max_value=9).flatmap(
        lambda roll: (
            st.sampled_from(["", *valid])
            if roll < 8
            else st.one_of(st.sampled_from(invalid), st.text(max_size=12))
        )
    )


requests = st.builds(
    service_pb2.ListMediaJobsRequest,
    bucket=field(["examplebucket-1250000000"], ["Bad_Bucket"]),
    region=field(["ap-beijing"], ["Bad Region"]),
    queue_id=field(["p0123456789abcdef"], ["bad/queue"]),
    tag=field(["Transcode", "MediaInfo"], ["transcode"]),
    states=st.lists(st.integers(min_value=0, max_value=12), max_size=5)
    | st.lists(st.integers(min_value=1, max_value=8), max_size=5),
    order_by_time=st.integers(min_value=0, max_value=4),
    next_token=field(["token-1"], ["a b"]),
    size=st.integers(min_value=-3, max_value=105),
    start_creation_time=field(["2024-01-01T00:00:00+0800"], ["2024-13-01T00:00:00+0800"]),
    end_creation_time=field(["2024-01-02T00:00:00+0000"], ["yesterday"]),
    input_object=field(["in/video.mp4"], ["/lead", "a/../b"]),
    workflow_id=field(["w0123"], ["bad id"]),
    inventory_trigger_job_id=field(["i0123"], ["x,y"]),
    include_raw_xml=st.booleans(),
)


def outcome(
    validate: object, rpc: service_pb2.ListMediaJobsRequest
) -> tuple[Target, dict[str, str]] | tuple[list[tuple[str, str]], str]:
    try:
        return validate(rpc, DEFAULTS)  # type: ignore[operator, no-any-return]
    except InvalidRequest as error:
        return [(item.field, item.description) for item in error.violations], str(error)


@settings(max_examples=500, deadline=None)
@given(rpc=requests)
def test_same_outcome_as_reading_each_field_again(rpc: service_pb2.ListMediaJobsRequest) -> None:
    expected = outcome(reference_validate_list, rpc)
    got = outcome(validate_list, rpc)
    assert got == expected
    if isinstance(expected[1], dict):  # and in the same order, as the query is sent
        assert list(got[1]) == list(expected[1])
