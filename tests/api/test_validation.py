"""`gateway.api.validation` called directly: every rule, one row each, gives INVALID_ARGUMENT
naming the field by its path in the RPC request; valid input comes back with the defaults
applied. (tests/integration/test_validation.py shows the same refusals through a live gateway,
as a client sees them in BadRequest, with CI never asked.)

A last test reads validation.py itself and checks that each rule's message appears in the
table, so a rule added later without a row here fails this file.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from hypothesis import given
from hypothesis import strategies as st

from gateway import model
from gateway._proto import media_pb2, service_pb2
from gateway.api import kind_rules, validation
from gateway.api.validation import (
    MAX_LIST_SIZE,
    MAX_OBJECT_KEY_BYTES,
    MAX_USER_DATA,
    validate_describe,
    validate_generate_media_info,
    validate_get_media_info,
    validate_job_ref,
    validate_list,
    validate_submit,
    validate_submit_jobs,
    validate_wait,
)
from gateway.config.settings import Settings
from gateway.errors import InvalidRequest
from gateway.jobs.describe import MAX_JOB_IDS_PER_RPC
from gateway.model import MAX_DESCRIBE_JOB_IDS, Target, is_valid_bucket, is_valid_region

M, S = media_pb2, service_pb2
BUCKET, REGION = "examplebucket-1250000000", "ap-guangzhou"
DEFAULTS = Settings(default_bucket=BUCKET, default_region=REGION)
JOB_ID = "j" + "0" * 32
KEY = "input/a.mp4"

Validator = Callable[[Any, Settings], object]
VALIDATORS: dict[type[Any], Validator] = {
    S.SubmitMediaJobRequest: validate_submit,
    S.SubmitMediaJobsRequest: validate_submit_jobs,
    S.DescribeMediaJobsRequest: validate_describe,
    S.ListMediaJobsRequest: validate_list,
    S.CancelMediaJobRequest: validate_job_ref,
    S.WatchMediaJobRequest: validate_job_ref,
    S.WaitMediaJobRequest: validate_wait,
    S.GenerateMediaInfoRequest: validate_generate_media_info,
    S.GetMediaInfoRequest: validate_get_media_info,
}


def submit(**fields: Any) -> S.SubmitMediaJobRequest:
    """A valid submit, with `fields` of its CI `Request` replaced (nested ones as dicts)."""
    body = M.Request(input=M.Input(object=KEY))
    for name, value in fields.items():
        if isinstance(value, dict):
            getattr(body, name).CopyFrom(type(getattr(body, name))(**value))
        else:
            setattr(body, name, value)
    return S.SubmitMediaJobRequest(request=body)


def multi(*operations: M.Operation, key: str = KEY) -> S.SubmitMediaJobsRequest:
    """A multi-operation submit of `operations` on `key`."""
    body = M.MultiOperationRequest(input=M.Input(object=key), operation=operations)
    return S.SubmitMediaJobsRequest(request=body)


INFO = M.Operation(tag="MediaInfo")


def tdmq(**mq: str) -> S.SubmitMediaJobRequest:
    config = {"mq_region": "gz", "mq_mode": "Queue", "mq_name": "jobs"} | mq
    return submit(call_back_type="TDMQ", call_back_mq_config=config)


# Out-of-range enum numbers, as a client with a newer or broken proto could send them.
_untyped_list: Any = S.ListMediaJobsRequest

# (case id, request, settings, field path named, start of the rule's description)
RULES: list[tuple[str, Any, Settings, str, str]] = [
    # -- the target, shared by every RPC
    ("no bucket, no default", S.GetMediaInfoRequest(object=KEY), Settings(default_region=REGION),
     "bucket", "required: no default bucket"),
    ("bad bucket", S.GetMediaInfoRequest(bucket="No_Such", object=KEY), DEFAULTS, "bucket",
     "must be 'name-APPID'"),
    ("no region, no default", S.GetMediaInfoRequest(object=KEY), Settings(default_bucket=BUCKET),
     "region", "required: no default region"),
    ("bad region", S.ListMediaJobsRequest(region="Mars!"), DEFAULTS, "region",
     "must be a region name"),
    # -- submit
    ("bad request id", S.SubmitMediaJobRequest(
        request_id="has space", request=M.Request(input=M.Input(object=KEY))), DEFAULTS,
     "request_id", "must be 1-128"),
    ("unknown tag", submit(tag="Transcoding"), DEFAULTS, "request.tag", "not a CI job kind"),
    ("operation tag on a single submit", submit(operation={"tag": "Snapshot"}), DEFAULTS,
     "request.operation.tag", "only for multi-operation submits"),
    ("empty object", submit(input={"object": ""}), DEFAULTS, "request.input.object", "required"),
    ("leading slash", submit(input={"object": "/a.mp4"}), DEFAULTS, "request.input.object",
     "must not start with '/'"),
    ("object too long", submit(input={"object": "é" * (MAX_OBJECT_KEY_BYTES // 2 + 1)}),
     DEFAULTS, "request.input.object", "longer than"),
    ("control character", submit(input={"object": "a\x7fb.mp4"}), DEFAULTS,
     "request.input.object", "must not contain control"),
    ("version id control", S.GetMediaInfoRequest(object=KEY, version_id="v1\r\nx"), DEFAULTS,
     "version_id", "must not contain control characters"),
    ("xml non-character", S.GenerateMediaInfoRequest(input=M.Input(object="a\ufffe.mp4")),
     DEFAULTS, "input.object", "must not contain U+FFFE or U+FFFF"),
    ("user data too long", submit(operation={"user_data": "u" * (MAX_USER_DATA + 1)}), DEFAULTS,
     "request.operation.user_data", "longer than"),
    ("user data not ascii", submit(operation={"user_data": "héllo"}), DEFAULTS,
     "request.operation.user_data", "must be printable ASCII"),
    ("job level", submit(operation={"job_level": 3}), DEFAULTS, "request.operation.job_level",
     "must be 0, 1 or 2"),
    ("negative job level", submit(operation={"job_level": -1}), DEFAULTS,
     "request.operation.job_level", "must be 0, 1 or 2"),
    ("media info given", submit(operation={"media_info": M.MediaInfo()}), DEFAULTS,
     "request.operation.media_info", "is output only"),
    ("queue id", submit(queue_id="p1,p2"), DEFAULTS, "request.queue_id", "must be a CI queue"),
    ("call back format", submit(call_back_format="YAML"), DEFAULTS, "request.call_back_format",
     "must be 'XML' or 'JSON'"),
    ("call back type", submit(call_back_type="RabbitMQ"), DEFAULTS, "request.call_back_type",
     "must be 'Url', 'TDMQ' or 'Kafka'"),
    ("kafka without a topic", submit(call_back_type="Kafka", call_back_kafka_config={
        "region": "ap-guangzhou", "instance_id": "ckafka-1"}), DEFAULTS,
     "request.call_back_kafka_config.topic", "required when call_back_type is 'Kafka'"),
    ("call back scheme", submit(call_back="ftp://example.com/cb"), DEFAULTS,
     "request.call_back", "must be an http(s) URL"),
    ("call back without host", submit(call_back="https:///cb"), DEFAULTS, "request.call_back",
     "must be an http(s) URL"),
    ("tdmq without config", submit(call_back_type="TDMQ"), DEFAULTS,
     "request.call_back_mq_config", "required when call_back_type"),
    ("tdmq region", tdmq(mq_region="us"), DEFAULTS, "request.call_back_mq_config.mq_region",
     "must be one of"),
    ("tdmq mode", tdmq(mq_mode="Stream"), DEFAULTS, "request.call_back_mq_config.mq_mode",
     "must be 'Topic' or 'Queue'"),
    ("tdmq name", tdmq(mq_name=""), DEFAULTS, "request.call_back_mq_config.mq_name", "required"),
    # -- multi-operation submit: each operation as a single submit of its tag, the envelope once
    ("no operations", multi(), DEFAULTS, "request.operation", "1 to 6 operations"),
    ("seven operations", multi(*[INFO] * 7), DEFAULTS, "request.operation", "1 to 6 operations"),
    ("operation without tag", multi(INFO, M.Operation(user_data="x")), DEFAULTS,
     "request.operation[1].tag", "required: each operation names"),
    ("unknown operation tag", multi(M.Operation(tag="snapshot")), DEFAULTS,
     "request.operation[0].tag", "not a CI job kind"),
    ("an operation's user data", multi(INFO, M.Operation(tag="MediaInfo", user_data="é")),
     DEFAULTS, "request.operation[1].user_data", "must be printable ASCII"),
    ("an operation's kind rule", multi(M.Operation(tag="Snapshot", output={
        "region": REGION, "bucket": BUCKET, "object": "s/${Number}.jpg"})), DEFAULTS,
     "request.operation[0].template_id", "Snapshot needs template_id or snapshot"),
    ("multi without input", multi(INFO, key=""), DEFAULTS, "request.input.object", "required"),
    ("multi call back", S.SubmitMediaJobsRequest(request=M.MultiOperationRequest(
        input=M.Input(object=KEY), operation=[INFO], call_back_format="YAML")), DEFAULTS,
     "request.call_back_format", "must be 'XML' or 'JSON'"),
    # -- describe
    ("no job ids", S.DescribeMediaJobsRequest(), DEFAULTS, "job_ids", "at least one job id"),
    ("too many job ids", S.DescribeMediaJobsRequest(
        job_ids=[JOB_ID] * (MAX_JOB_IDS_PER_RPC + 1)), DEFAULTS, "job_ids", "at most 100 ids"),
    ("empty job id", S.DescribeMediaJobsRequest(job_ids=[JOB_ID, ""]), DEFAULTS, "job_ids[1]",
     "required"),
    ("comma in job id", S.DescribeMediaJobsRequest(job_ids=["j1,j2"]), DEFAULTS, "job_ids[0]",
     "must be a CI job id"),
    # -- list
    ("list queue id", S.ListMediaJobsRequest(queue_id="p/1"), DEFAULTS, "queue_id",
     "must be a CI queue"),
    ("list tag", S.ListMediaJobsRequest(tag="snapshot"), DEFAULTS, "tag", "not a CI job kind"),
    ("unspecified state", S.ListMediaJobsRequest(
        states=[M.JOB_STATE_SUCCESS, M.JOB_STATE_UNSPECIFIED]), DEFAULTS, "states[1]",
     "must be a known job state"),
    ("unknown state number", _untyped_list(states=[999]), DEFAULTS, "states[0]",
     "must be a known job state"),
    ("unknown order", _untyped_list(order_by_time=7), DEFAULTS, "order_by_time",
     "must be ORDER_BY_TIME_DESC"),
    ("size too large", S.ListMediaJobsRequest(size=MAX_LIST_SIZE + 1), DEFAULTS, "size",
     "must be between 1 and"),
    ("negative size", S.ListMediaJobsRequest(size=-1), DEFAULTS, "size", "must be between 1 and"),
    ("start time", S.ListMediaJobsRequest(start_creation_time="2024-01-01"), DEFAULTS,
     "start_creation_time", "must look like"),
    ("end time", S.ListMediaJobsRequest(end_creation_time="yesterday"), DEFAULTS,
     "end_creation_time", "must look like"),
    ("offset with seconds", S.ListMediaJobsRequest(end_creation_time="2024-01-01T00:00:00"
     "+080030"), DEFAULTS, "end_creation_time", "must look like"),
    ("list input object", S.ListMediaJobsRequest(input_object="/a.mp4"), DEFAULTS,
     "input_object", "must not start with '/'"),
    # Sent to CI as query parameters, where CI answers a bare 400 naming no field.
    ("list next token control", S.ListMediaJobsRequest(next_token="a\x00b"), DEFAULTS,
     "next_token", "must be the next_token of a previous answer"),
    ("list next token size", S.ListMediaJobsRequest(next_token="a" * 1025), DEFAULTS,
     "next_token", "longer than 1024"),
    ("list workflow id", S.ListMediaJobsRequest(workflow_id="w\x00"), DEFAULTS, "workflow_id",
     "must be a CI id"),
    ("list batch job id", S.ListMediaJobsRequest(inventory_trigger_job_id="b/1"), DEFAULTS,
     "inventory_trigger_job_id", "must be a CI id"),
    # -- one job: cancel, watch, wait
    ("cancel without id", S.CancelMediaJobRequest(), DEFAULTS, "job_id", "required"),
    ("watch bad id", S.WatchMediaJobRequest(job_id="j/1"), DEFAULTS, "job_id",
     "must be a CI job id"),
    ("wait long id", S.WaitMediaJobRequest(job_id="j" * 65), DEFAULTS, "job_id",
     "must be a CI job id"),
    ("wait negative timeout", S.WaitMediaJobRequest(job_id=JOB_ID, timeout=Duration(
        nanos=-1)), DEFAULTS, "timeout", "must not be negative"),
    # Each was INTERNAL: ToTimedelta's OverflowError.
    ("wait forever", S.WaitMediaJobRequest(job_id=JOB_ID, timeout=Duration(
        seconds=2**63 - 1)), DEFAULTS, "timeout", "not a Duration"),
    ("wait before time", S.WaitMediaJobRequest(job_id=JOB_ID, timeout=Duration(
        seconds=-(2**63))), DEFAULTS, "timeout", "not a Duration"),
    # Read as 0.999999999 s before: not what a Duration of 1 s and -1 ns can mean.
    ("wait mixed signs", S.WaitMediaJobRequest(job_id=JOB_ID, timeout=Duration(
        seconds=1, nanos=-1)), DEFAULTS, "timeout", "not a Duration"),
    ("wait nanos overflow", S.WaitMediaJobRequest(job_id=JOB_ID, timeout=Duration(
        nanos=10**9)), DEFAULTS, "timeout", "not a Duration"),
    # -- media info
    ("generate without object", S.GenerateMediaInfoRequest(), DEFAULTS, "input.object",
     "required"),
    ("generate in another bucket", S.GenerateMediaInfoRequest(
        input=M.Input(object=KEY, bucket_id="other-1250000000")), DEFAULTS, "input.bucket_id",
     "not supported here"),
    ("generate in another region", S.GenerateMediaInfoRequest(
        input=M.Input(object=KEY, region="ap-beijing")), DEFAULTS, "input.region",
     "not supported here"),
    ("get without object", S.GetMediaInfoRequest(), DEFAULTS, "object", "required"),
    ("dot segment", S.GetMediaInfoRequest(object="input/./a.mp4"), DEFAULTS, "object",
     "must not contain '.' or '..' path segments"),
    ("empty segment", submit(input={"object": "input//a.mp4"}), DEFAULTS,
     "request.input.object", "must not contain empty path segments"),
    ("input bucket form", submit(input={"object": KEY, "bucket_id": "Bad_Bucket"}), DEFAULTS,
     "request.input.bucket_id", "must be 'name-APPID'"),
    ("input region form", submit(input={"object": KEY, "region": "Mars!"}), DEFAULTS,
     "request.input.region", "must be a region name"),
    ("dot-dot segment", submit(input={"object": "input/../a.mp4"}), DEFAULTS,
     "request.input.object", "must not contain '.' or '..'"),
    ("trailing dot-dot", S.ListMediaJobsRequest(input_object="a/.."), DEFAULTS, "input_object",
     "must not contain '.' or '..'"),
    ("version id too long", S.GetMediaInfoRequest(object=KEY, version_id="v" * 129), DEFAULTS,
     "version_id", "longer than 128"),
]  # fmt: skip


def refusal(request: Any, settings: Settings) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        VALIDATORS[type(request)](request, settings)
    return caught.value


@pytest.mark.parametrize(
    ("request_", "settings", "field", "description"),
    [case[1:] for case in RULES],
    ids=[case[0] for case in RULES],
)
def test_each_rule_is_invalid_argument_naming_the_field(
    request_: Any, settings: Settings, field: str, description: str
) -> None:
    error = refusal(request_, settings)
    assert error.status is grpc.StatusCode.INVALID_ARGUMENT
    assert [(v.field, v.description[: len(description)]) for v in error.violations] == [
        (field, description)
    ]
    assert f"{field}: {description}" in str(error)


def test_every_violation_is_reported_at_once() -> None:
    request = S.SubmitMediaJobRequest(
        bucket="Bad",
        request_id="no spaces allowed",
        request=M.Request(tag="Transcoding", operation=M.Operation(job_level=9)),
    )
    fields = [v.field for v in refusal(request, DEFAULTS).violations]
    assert fields == [
        "request_id",
        "bucket",
        "request.tag",
        "request.input.object",
        "request.operation.job_level",
    ]


def test_a_valid_submit_gets_the_default_target_tag_and_a_request_id() -> None:
    rpc = submit(operation={"user_data": "mine", "job_level": 2}, call_back="no")
    target, request, request_id = validate_submit(rpc, DEFAULTS)
    assert target == Target(BUCKET, REGION)
    assert request.tag == "MediaInfo" and request.input.object == KEY
    assert rpc.request.tag == ""  # the caller's message is left as it was
    assert request_id and validate_submit(rpc, DEFAULTS)[2] != request_id  # a fresh one each
    rpc.request_id = "caller-chosen:1"
    assert validate_submit(rpc, DEFAULTS)[2] == "caller-chosen:1"


def test_a_valid_multi_submit_keeps_its_operations_in_order() -> None:
    snapshot = M.Operation(
        tag="Snapshot",
        template_id="t1",
        output={"region": REGION, "bucket": BUCKET, "object": "s/${Number}.jpg"},
    )
    rpc = multi(INFO, snapshot, M.Operation(tag="VideoTag"))
    rpc.request_id = "multi:1"
    target, request, request_id = validate_submit_jobs(rpc, DEFAULTS)
    assert (target, request_id) == (Target(BUCKET, REGION), "multi:1")
    assert [operation.tag for operation in request.operation] == [
        "MediaInfo",
        "Snapshot",
        "VideoTag",
    ]
    # Concat alone reads no input, as in the single form.
    concat = M.Operation(
        tag="Concat",
        template_id="t2",
        output={"region": REGION, "bucket": BUCKET, "object": "c.mp4"},
    )
    assert validate_submit_jobs(multi(concat, key=""), DEFAULTS)[1].input.object == ""


def test_a_valid_tdmq_submit_and_the_request_names_win_over_the_defaults() -> None:
    rpc = tdmq()
    rpc.bucket, rpc.region = "otherbucket-1250000000", "ap-beijing"
    target, request, _ = validate_submit(rpc, DEFAULTS)
    assert target == Target("otherbucket-1250000000", "ap-beijing")
    assert request.call_back_mq_config.mq_name == "jobs"


def test_describe_asks_for_a_repeated_id_once() -> None:
    rpc = S.DescribeMediaJobsRequest(job_ids=[JOB_ID, "j2", JOB_ID])
    assert validate_describe(rpc, DEFAULTS) == (Target(BUCKET, REGION), [JOB_ID, "j2"])


def test_describe_takes_more_ids_than_one_ci_request_up_to_its_own_bound() -> None:
    """CI's request carries 10 (`MAX_DESCRIBE_JOB_IDS`); the RPC up to 100, sent in batches."""
    job_ids = [f"j{index:032x}" for index in range(MAX_JOB_IDS_PER_RPC)]
    assert MAX_JOB_IDS_PER_RPC > MAX_DESCRIBE_JOB_IDS
    rpc = S.DescribeMediaJobsRequest(job_ids=job_ids)
    assert validate_describe(rpc, DEFAULTS) == (Target(BUCKET, REGION), job_ids)


def test_list_builds_cis_query_with_its_names_and_always_a_next_token() -> None:
    rpc = S.ListMediaJobsRequest(
        queue_id="p123",
        states=[M.JOB_STATE_SUCCESS, M.JOB_STATE_FAILED, M.JOB_STATE_SUCCESS],
        order_by_time=S.ORDER_BY_TIME_ASC,
        size=100,
        start_creation_time="2024-01-01T00:00:00+0800",
        input_object=KEY,
    )
    _, params = validate_list(rpc, DEFAULTS)
    assert params == {
        "tag": "MediaInfo",
        "queueId": "p123",
        "states": "Success,Failed",
        "orderByTime": "Asc",
        "size": "100",
        "startCreationTime": "2024-01-01T00:00:00+0800",
        "inputObject": KEY,
        "nextToken": "",
    }
    assert validate_list(S.ListMediaJobsRequest(), DEFAULTS)[1] == {
        "tag": "MediaInfo",
        "nextToken": "",
    }


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("0001-01-01T00:00:00+0800", "0001-01-01T00:00:00+0800"),
        ("0999-1-2T3:4:5Z", "0999-01-02T03:04:05+0000"),
        ("2024-06-01T10:00:00+08:00", "2024-06-01T10:00:00+0800"),
    ],
)
def test_creation_times_go_to_ci_in_its_form_whatever_the_year(given: str, sent: str) -> None:
    """strftime wrote the year 1 as `1` (glibc), which is not CI's form: the time reached CI
    as a value it does not document."""
    from gateway._proto import workflows_pb2
    from gateway.api.resource_validation import validate_list_executions

    _, params = validate_list(S.ListMediaJobsRequest(end_creation_time=given), DEFAULTS)
    assert params["endCreationTime"] == sent
    rpc = workflows_pb2.ListWorkflowExecutionsRequest(workflow_id="w1", start_creation_time=given)
    assert validate_list_executions(rpc, DEFAULTS)[1]["startCreationTime"] == sent


@pytest.mark.parametrize(
    ("request_", "answer"),
    [
        (S.CancelMediaJobRequest(job_id=JOB_ID), (Target(BUCKET, REGION), JOB_ID)),
        (S.WaitMediaJobRequest(job_id="j-1_a"), (Target(BUCKET, REGION), "j-1_a", None)),
        (
            S.WaitMediaJobRequest(job_id="j1", timeout=Duration(seconds=2, nanos=500_000_000)),
            (Target(BUCKET, REGION), "j1", 2.5),
        ),
        (
            S.WaitMediaJobRequest(job_id="j1", timeout=Duration(seconds=315_576_000_000)),
            (Target(BUCKET, REGION), "j1", 315_576_000_000.0),
        ),
        (
            S.GenerateMediaInfoRequest(input=M.Input(object=KEY)),
            (Target(BUCKET, REGION), KEY),
        ),
        (
            S.GetMediaInfoRequest(object=KEY, version_id="v1"),
            (Target(BUCKET, REGION), KEY, "v1"),
        ),
    ],
)
def test_valid_single_object_requests_pass(request_: Any, answer: tuple[Any, ...]) -> None:
    assert VALIDATORS[type(request_)](request_, DEFAULTS) == answer


def _rules_in_the_module() -> set[tuple[str, bool]]:
    """Each description `validation` passes to `errors.add`: its text, or the constant start of
    an f-string (then False: only a prefix)."""
    found: set[tuple[str, bool]] = set()
    for node in ast.walk(ast.parse(inspect.getsource(validation))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add"
            and len(node.args) == 2
        ):
            text, whole = node.args[1], True
            if isinstance(text, ast.JoinedStr):
                text, whole = text.values[0], False
            if isinstance(text, ast.Name):
                if not hasattr(validation, text.id):
                    continue  # a message computed elsewhere (kind_rules has its own tests)
                text = ast.Constant(getattr(validation, text.id))  # a module-level constant
            assert isinstance(text, ast.Constant), ast.dump(text)
            found.add((str(text.value), whole))
    return found


def test_the_table_has_a_row_for_every_rule_in_the_module() -> None:
    rules = _rules_in_the_module()
    assert len(rules) >= 25  # the walk really found the rules
    produced = {
        violation.description
        for _, request, settings, _, _ in RULES
        for violation in refusal(request, settings).violations
    }
    missing = [
        text
        for text, whole in rules
        if not any(d == text if whole else d.startswith(text) for d in produced)
    ]
    assert not missing, f"rules without a row in RULES: {sorted(missing)}"


def test_a_workflow_run_listing_checks_its_page_token() -> None:
    from gateway._proto import workflows_pb2
    from gateway.api.resource_validation import validate_list_executions

    rpc = workflows_pb2.ListWorkflowExecutionsRequest(workflow_id="w1", next_token="x\ny")
    with pytest.raises(InvalidRequest) as caught:
        validate_list_executions(rpc, DEFAULTS)
    assert [item.field for item in caught.value.violations] == ["next_token"]


def test_a_workflow_node_s_output_keys_meet_a_job_s_rule() -> None:
    from gateway._proto import job_kinds_pb2, workflows_pb2
    from gateway.api.resource_validation import validate_create_workflow

    topology = workflows_pb2.WorkflowTopology(
        dependencies={"Start": "Transcode_1", "Transcode_1": "End"}
    )
    topology.nodes["Start"].type = "Start"
    topology.nodes["Start"].input.queue_id = "p1"
    node = topology.nodes["Transcode_1"]
    node.type = "Transcode"
    node.operation.template_id = "t1"
    node.operation.output.CopyFrom(
        job_kinds_pb2.Output(region=REGION, bucket=BUCKET, object="out/../${InputName}.mp4")
    )
    rpc = workflows_pb2.CreateMediaWorkflowRequest(
        media_workflow=workflows_pb2.MediaWorkflow(name="w", topology=topology)
    )
    with pytest.raises(InvalidRequest) as caught:
        validate_create_workflow(rpc, DEFAULTS)
    assert [item.field for item in caught.value.violations] == [
        "media_workflow.topology.nodes['Transcode_1'].operation.output.object"
    ]


@given(st.text(st.sampled_from("./a"), max_size=12) | st.text(max_size=12))
def test_a_dot_segment_is_found_as_splitting_the_key_finds_it(key: str) -> None:
    """`has_dot_segment` searches the key instead of splitting it (fewer instructions per
    submit): the same answer as the split for any key."""
    by_split = bool(kind_rules.DOT_SEGMENTS.intersection(key.split("/")))
    assert kind_rules.has_dot_segment(key) == by_split


@given(
    bucket=st.one_of(st.just(""), st.sampled_from([BUCKET, "other-1250000000"]), st.text()),
    region=st.one_of(st.just(""), st.sampled_from([REGION, "ap-beijing"]), st.text()),
    default_bucket=st.sampled_from(["", BUCKET]),
    default_region=st.sampled_from(["", REGION]),
)
def test_the_target_is_the_one_of_the_names_used(
    bucket: str, region: str, default_bucket: str, default_region: str
) -> None:
    """`_target` hands back a remembered target (`model.known_target`) for checked names and
    the defaults: equal to one built anew; names that fail their check are not remembered."""
    settings = Settings(default_bucket=default_bucket, default_region=default_region)
    errors = validation._Violations()
    before = model.known_target.cache_info()
    target = validation._target(bucket, region, settings, errors)
    assert target == Target(bucket or default_bucket, region or default_region)
    if (bucket and not is_valid_bucket(bucket)) or (region and not is_valid_region(region)):
        after = model.known_target.cache_info()
        assert (after.hits, after.misses) == (before.hits, before.misses)
    else:
        assert validation._target(bucket, region, settings, errors) is target
