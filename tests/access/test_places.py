"""Issue 11 items 4 and 5: every bucket and region a request names passes the client's policy,
before anything reaches CI, however deep in the request it is named.

The walk (`gateway.access.places`) is generic: these tests check it against every message the
API can carry, against a message shaped like the job kinds to come (built here from a
descriptor, so no code of the gateway knows it), and end to end against the emulator, which
records every request it receives (none, for a refused call).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.access.interceptor import ClientAccess
from gateway.access.places import BUCKET_FIELDS, NOT_PLACES, REGION_FIELDS, Place, named_places
from gateway.access.policy import API_SERVICE, ClientPolicy, RequestScope, request_scope
from gateway.errors import AccessDenied, Reason
from tests.access.helpers import RecordingCredentials, sha256_hex
from tests.conftest import BUCKET, REGION, SAMPLE_KEY
from tests.fixtures.accounts import OTHER_BUCKET, Serve
from tests.integration.helpers import rich_error

if TYPE_CHECKING:
    from gateway._proto.service_pb2_grpc import MediaJobServiceAsyncStub as Stub

M, S = media_pb2, service_pb2
SERVICE = service_pb2.DESCRIPTOR.services_by_name["MediaJobService"]
OTHER_REGION = "ap-beijing"
LOOKS_LIKE_A_PLACE = re.compile(r"bucket|region", re.IGNORECASE)


def _reachable(descriptor: Descriptor, seen: set[str]) -> Iterator[Descriptor]:
    if descriptor.full_name in seen:
        return
    seen.add(descriptor.full_name)
    yield descriptor
    for field in descriptor.fields:
        if field.message_type is not None:
            yield from _reachable(field.message_type, seen)


def test_every_field_that_names_a_place_is_one_the_walk_reads() -> None:
    """Fails when a message any RPC accepts gains a bucket- or region-like field that the walk
    would not check (say `dest_bucket`): add its name to BUCKET_FIELDS / REGION_FIELDS, or to
    NOT_PLACES with the reason it names no storage place."""
    seen: set[str] = set()
    fields = [
        field
        for method in SERVICE.methods
        for message in _reachable(method.input_type, seen)
        for field in message.fields
    ]
    places = [field for field in fields if LOOKS_LIKE_A_PLACE.search(field.name)]
    known = BUCKET_FIELDS | REGION_FIELDS | set(NOT_PLACES)
    assert [field.full_name for field in places if field.name not in known] == []
    # Not vacuous: the API's requests do name buckets and regions below their top level.
    assert "ci.media.v1.Input.bucket_id" in {field.full_name for field in places}


def _future_kind() -> type:
    """A request shaped like the job kinds being added (outputs, per-output destinations,
    named destinations, raw XML nodes), from a descriptor only: no code of the gateway knows
    it."""
    file = descriptor_pb2.FileDescriptorProto(name="future_kind.proto", package="future")
    string, message = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE
    optional, repeated = FieldDescriptor.LABEL_OPTIONAL, FieldDescriptor.LABEL_REPEATED

    def add(name: str, *fields: tuple[str, int, int, str]) -> descriptor_pb2.DescriptorProto:
        proto = file.message_type.add(name=name)
        for number, (field_name, label, kind, type_name) in enumerate(fields, 1):
            proto.field.add(name=field_name, number=number, label=label, type=kind)
            if type_name:
                proto.field[-1].type_name = type_name
        return proto

    add("Output", ("bucket", optional, string, ""), ("region", optional, string, ""),
        ("object", optional, string, ""), ("url", optional, string, ""),
        ("watermark_url", repeated, string, ""))  # fmt: skip
    job = add(
        "Job",
        ("output", optional, message, ".future.Output"),
        ("outputs", repeated, message, ".future.Output"),
        ("by_name", repeated, message, ".future.Job.ByNameEntry"),
        ("bucket_id", repeated, string, ""),
        ("extra_nodes", repeated, message, ".future.Node"),
    )
    # A raw XML element, as the codec keeps nodes of kinds nobody typed (`name`, `text`,
    # `children`): what a caller writes there is sent to CI as written.
    add("Node", ("name", optional, string, ""), ("text", optional, string, ""),
        ("children", repeated, message, ".future.Node"))  # fmt: skip
    entry = job.nested_type.add(name="ByNameEntry", options=descriptor_pb2.MessageOptions())
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=optional, type=string)
    entry.field.add(
        name="value", number=2, label=optional, type=message, type_name=".future.Output"
    )
    add("Req", ("bucket", optional, string, ""), ("job", optional, message, ".future.Job"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("future.Req"))


def test_the_walk_finds_places_in_messages_it_has_never_seen() -> None:
    request = _future_kind()(bucket="a-1250000000")
    request.job.output.bucket = "b-1250000000"
    request.job.output.object = "out.mp4"  # not a place
    request.job.output.url = "https://G-1250000000.cos.AP-E.myqcloud.com/a.mp4"  # CI fetches it
    request.job.output.watermark_url.extend(["https://example.com/logo.png", "not a url: ["])
    request.job.outputs.add(region="ap-b")
    request.job.outputs.add(bucket="c-1250000000", region="")  # an empty field names nothing
    request.job.by_name["thumbs"].bucket = "d-1250000000"
    request.job.bucket_id.extend(["e-1250000000", ""])
    output = request.job.extra_nodes.add(name="Output")
    output.children.add(name="BucketID", text="f-1250000000")  # names match in any case
    output.children.add(name="Object", text="x/Region/ap-c")  # a key, not a place
    request.job.extra_nodes.add(name="Region", text="ap-d")
    assert named_places(request) == [
        Place("bucket", "bucket", "a-1250000000"),
        Place("job.output.bucket", "bucket", "b-1250000000"),
        Place("job.output.url", "bucket", "g-1250000000"),
        Place("job.output.url", "region", "ap-e"),
        Place("job.outputs[0].region", "region", "ap-b"),
        Place("job.outputs[1].bucket", "bucket", "c-1250000000"),
        Place("job.by_name['thumbs'].bucket", "bucket", "d-1250000000"),
        Place("job.bucket_id[0]", "bucket", "e-1250000000"),
        Place("job.extra_nodes[0].children[0].text", "bucket", "f-1250000000"),
        Place("job.extra_nodes[1].text", "region", "ap-d"),
    ]
    scope = request_scope(f"/{API_SERVICE}/Future", request, BUCKET, REGION)
    assert scope.bucket == "a-1250000000" and scope.region == REGION
    assert [place.field for place in scope.elsewhere][:3] == [
        "job.output.bucket",
        "job.output.url",
        "job.output.url",
    ]
    with pytest.raises(AccessDenied) as caught:
        ClientPolicy("c", frozenset({"a-1250000000"}), frozenset({"*"})).check(scope)
    assert caught.value.metadata() == {
        "operation": "Future",
        "bucket": "b-1250000000",
        "field": "job.output.bucket",
    }


SUBMIT = f"/{API_SERVICE}/SubmitMediaJob"
GENERATE = f"/{API_SERVICE}/GenerateMediaInfo"
ONE_BUCKET = ClientPolicy("one", frozenset({BUCKET}), frozenset({"*"}), regions=frozenset({REGION}))


def _submit(**input_: str) -> S.SubmitMediaJobRequest:
    named = M.Input(object=SAMPLE_KEY)
    for name, value in input_.items():
        setattr(named, name, value)
    return S.SubmitMediaJobRequest(request=M.Request(input=named))


@pytest.mark.parametrize(
    ("method", "request_", "reason", "asked"),
    [
        (SUBMIT, _submit(), None, None),
        (SUBMIT, _submit(bucket_id=BUCKET, region=REGION), None, None),  # its own: fine
        (
            SUBMIT,
            _submit(bucket_id=OTHER_BUCKET),
            Reason.BUCKET_NOT_ALLOWED,
            {"bucket": OTHER_BUCKET, "field": "request.input.bucket_id"},
        ),
        (
            SUBMIT,
            _submit(region=OTHER_REGION),
            Reason.REGION_NOT_ALLOWED,
            {"region": OTHER_REGION, "field": "request.input.region"},
        ),
        (
            SUBMIT,
            S.SubmitMediaJobRequest(region=OTHER_REGION),
            Reason.REGION_NOT_ALLOWED,
            {"region": OTHER_REGION},
        ),
        (
            GENERATE,
            S.GenerateMediaInfoRequest(input=M.Input(object="a.mp4", bucket_id=OTHER_BUCKET)),
            Reason.BUCKET_NOT_ALLOWED,
            {"bucket": OTHER_BUCKET, "field": "input.bucket_id"},
        ),
        (SUBMIT, _submit(url=f"https://{BUCKET}.cos.{REGION}.myqcloud.com/a.mp4"), None, None),
        # URLs read one way by Python and another by a WHATWG parser (which CI's fetcher may
        # be): the other bucket is named either way, so the policy sees it.
        *(
            (
                SUBMIT,
                _submit(url=url),
                Reason.BUCKET_NOT_ALLOWED,
                {"bucket": OTHER_BUCKET, "field": "request.input.url"},
            )
            for url in (
                f"https://{OTHER_BUCKET}.cos.{REGION}.myqcloud.com\\@{BUCKET}.cos.{REGION}"
                ".myqcloud.com/a.mp4",
                f"https:\\\\{OTHER_BUCKET}.cos.{REGION}.myqcloud.com/a.mp4",
                f"https://%6F{OTHER_BUCKET[1:]}.cos.{REGION}.myqcloud.com/a.mp4",
                f"https://\uff4f{OTHER_BUCKET[1:]}.cos.{REGION}.myqcloud.com/a.mp4",  # fullwidth o
            )
        ),
    ],
)
def test_every_bucket_and_region_of_the_request_passes_the_policy(
    method: str,
    request_: object,
    reason: Reason | None,
    asked: dict[str, str] | None,
) -> None:
    scope = request_scope(method, request_, BUCKET, REGION)
    if reason is None:
        ONE_BUCKET.check(scope)
        return
    with pytest.raises(AccessDenied) as caught:
        ONE_BUCKET.check(scope)
    assert caught.value.reason is reason
    assert caught.value.metadata() == {"operation": scope.operation, **(asked or {})}
    assert BUCKET not in str(caught.value) and REGION not in str(caught.value)


def test_a_region_rule_refuses_a_call_that_names_no_region_at_all() -> None:
    with pytest.raises(AccessDenied) as caught:
        ONE_BUCKET.check(RequestScope("submit", BUCKET, "MediaInfo", ""))
    assert caught.value.reason is Reason.REGION_NOT_ALLOWED
    assert str(caught.value) == "this client may not use region '(no region)'"


# ---- end to end: refused before CI is asked ---------------------------------------------------

TOKEN = "tok-places-" + secrets.token_urlsafe(16)


@pytest.fixture
async def limited(
    tmp_path: Path, serve: Serve
) -> AsyncIterator[tuple[Stub, tuple[tuple[str, str]]]]:
    """A shared gateway with one client, allowed only the default bucket and region."""
    path = tmp_path / "access.toml"
    path.write_text(
        f"""
mode = "shared"
[[clients]]
name = "limited"
token_sha256 = ["{sha256_hex(TOKEN)}"]
buckets = ["{BUCKET}"]
regions = ["{REGION}"]
operations = ["*"]
"""
    )
    gateway = await serve(ClientAccess.from_file(path))
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        yield service_pb2_grpc.MediaJobServiceStub(channel), (("authorization", f"Bearer {TOKEN}"),)


async def test_a_bucket_or_region_named_inside_the_request_is_refused_before_ci(
    limited: tuple[Stub, tuple[tuple[str, str]]],
    seen: RecordingCredentials,
) -> None:
    stub, auth = limited
    refusals: dict[str, Awaitable[object]] = {
        "request.input.bucket_id": stub.SubmitMediaJob(
            _submit(bucket_id=OTHER_BUCKET), metadata=auth, timeout=10
        ),
        "request.input.region": stub.SubmitMediaJob(
            _submit(region=OTHER_REGION), metadata=auth, timeout=10
        ),
        "region": stub.ListMediaJobs(
            S.ListMediaJobsRequest(region=OTHER_REGION), metadata=auth, timeout=10
        ),
        "input.bucket_id": stub.GenerateMediaInfo(
            S.GenerateMediaInfoRequest(input=M.Input(object=SAMPLE_KEY, bucket_id=OTHER_BUCKET)),
            metadata=auth,
            timeout=10,
        ),
        "input.region": stub.GenerateMediaInfo(
            S.GenerateMediaInfoRequest(input=M.Input(object=SAMPLE_KEY, region=OTHER_REGION)),
            metadata=auth,
            timeout=10,
        ),
    }
    for field, call in refusals.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = rich_error(caught.value)
        assert error.code is grpc.StatusCode.PERMISSION_DENIED, field
        assert error.error_info is not None
        assert error.error_info.metadata["attempts"] == "0"
        assert error.error_info.metadata.get("field", "region") == field
    assert seen.seen == []  # CI was never asked
    # Control: the same client, its own bucket and region, reaches CI.
    job = (await stub.SubmitMediaJob(_submit(), metadata=auth, timeout=10)).jobs_detail
    assert job.job_id and len(seen.seen) == 1


async def test_generate_media_info_refuses_another_bucket_instead_of_dropping_it(
    serve: Serve, seen: RecordingCredentials
) -> None:
    """Item 5, in sidecar mode (no policy): `input.bucket_id` / `input.region` used to be
    dropped silently and the answer be about the caller's own bucket."""
    gateway = await serve()
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GenerateMediaInfo(
                S.GenerateMediaInfoRequest(
                    input=M.Input(object=SAMPLE_KEY, bucket_id=OTHER_BUCKET, region=OTHER_REGION)
                ),
                timeout=10,
            )
        error = rich_error(caught.value)
        assert error.code is grpc.StatusCode.INVALID_ARGUMENT
        assert set(error.violations) == {"input.bucket_id", "input.region"}
        assert seen.seen == []
        # The same bucket and region, said twice, are no contradiction.
        same = M.Input(object=SAMPLE_KEY, bucket_id=BUCKET, region=REGION)
        answer = await stub.GenerateMediaInfo(S.GenerateMediaInfoRequest(input=same), timeout=30)
        assert answer.media_info.format.format_name


def _other_url() -> str:
    return f"https://{OTHER_BUCKET}.cos.{REGION}.myqcloud.com/private.mp3"


def _audio_mix() -> S.SubmitMediaJobRequest:
    """Transcode mixing in `AudioMix.AudioSource`: "the COS address of the audio to mix in",
    which CI fetches with its own role, like a `url`."""
    request = _submit()
    request.request.tag = "Transcode"
    operation = request.request.operation
    operation.transcode.container.format = "mp4"
    operation.transcode.audio_mix.audio_source = _other_url()
    operation.output.bucket, operation.output.region = BUCKET, REGION
    operation.output.object = "out/mixed.mp4"
    return request


def _fill_concat() -> S.SubmitMediaJobRequest:
    """A pass-through kind (`FillConcat`, nobody typed it) whose clips are `FillInput/Url`
    elements the caller writes as raw XML nodes."""
    request = S.SubmitMediaJobRequest(request=M.Request(tag="FillConcat"))
    fill = request.request.operation.extra_nodes.add(name="FillConcat")
    fill.children.add(name="FillInput").children.add(name="Url", text=_other_url())
    output = request.request.operation.output
    output.bucket, output.region, output.object = BUCKET, REGION, "out/filled.mp4"
    return request


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_audio_mix(), "request.operation.transcode.audio_mix.audio_source"),
        (_fill_concat(), "request.operation.extra_nodes[0].children[0].children[0].text"),
    ],
)
async def test_a_cos_url_ci_fetches_is_refused_whatever_names_it(
    limited: tuple[Stub, tuple[tuple[str, str]]],
    seen: RecordingCredentials,
    request_: S.SubmitMediaJobRequest,
    field: str,
) -> None:
    """Not only `url` and `*_url` fields hold URLs CI fetches: `AudioMix.AudioSource` does, and
    so do the `Url` elements of raw XML a caller writes for a kind nobody typed."""
    stub, auth = limited
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitMediaJob(request_, metadata=auth, timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.PERMISSION_DENIED, error
    assert error.error_info is not None
    assert error.error_info.reason == Reason.BUCKET_NOT_ALLOWED.value
    assert error.error_info.metadata["field"] == field
    assert error.error_info.metadata["bucket"] == OTHER_BUCKET
    assert seen.seen == []  # CI was never asked
