"""What CI sends back, mapped: every known CI error code, and every malformed answer.

A scripted loopback peer (`fake_ci`) plays CI's side; the gateway under test is real and is
called over a real gRPC channel.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api.server import start_gateway
from gateway.config.settings import Callbacks, Retry, Settings
from gateway.credentials import Credentials, StaticCredentialsProvider
from gateway.errors import CI_ERRORS, RetryClass, rule_for_http_status
from gateway.status import DEFAULT_THROTTLED_RETRY_S
from gateway.upstream.client import MAX_RETRY_AFTER_S
from gateway.upstream.retry import READ_ONLY
from tests.access.helpers import log_text
from tests.integration.fake_ci import FakeCI, Scripted, error_body, fake_ci
from tests.integration.helpers import RichError, rich_error

BUCKET, REGION = "examplebucket-1250000000", "ap-guangzhou"
DESCRIBE = service_pb2.DescribeMediaJobsRequest(job_ids=["jb976c9e0f86111ec9452c1c27f56a659"])
SUBMIT = service_pb2.SubmitMediaJobRequest(
    request=media_pb2.Request(input=media_pb2.Input(object="input/a.mp4"))
)

# HTTP status CI sends with each code (ci-api-notes §6.2; COS-host codes from the COS table).
HTTP_STATUS = {
    "InvalidArgument": 400, "MissingContent": 400, "InvalidContent": 400, "InvalidHost": 400,
    "InvalidUrl": 404, "MissingContentLength": 411, "MethodNotAllowed": 405,
    "PermanentRedirect": 301, "TemporaryRedirect": 307, "ResourceNotFound": 400,
    "NoSuchKey": 404, "NoSuchBucket": 404, "MissingAuthorization": 401,
    "InvalidAuthorization": 401, "SecretidNotExist": 401, "InvalidAccessKeyId": 403,
    "SignatureExpired": 401, "SignatureDoesNotMatch": 403, "RequestTimeTooSkewed": 403,
    "ExpiredToken": 403, "InvalidToken": 403, "AccessDenied": 403, "ResourceAccessDenied": 400,
    "CIRoleNotExist": 400, "MediaBucketAlreadyBinded": 403, "UnavailableForLegalReasons": 451,
    "QueuePaused": 403, "SlowDown": 429, "QueueSaturated": 403, "InternalError": 500,
    "InternalErrror": 500, "ServiceUnavailable": 503, "ResourceDownloadFailed": 400,
    "NotImplemented": 501,
}  # fmt: skip

SECRET = Credentials("AKIDfakeci0000000000000000000000", "fake-ci-secret-key-never-shown")


@asynccontextmanager
async def gateway_stub(
    fake: FakeCI, credentials: Credentials = SECRET, **overrides: object
) -> AsyncIterator[service_pb2_grpc.MediaJobServiceAsyncStub]:
    settings = Settings(
        listen="127.0.0.1:0",
        default_bucket=BUCKET,
        default_region=REGION,
        endpoint_url=fake.url,
        **overrides,  # type: ignore[arg-type]
    )
    gateway = await start_gateway(settings, StaticCredentialsProvider(credentials))
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            yield service_pb2_grpc.MediaJobServiceStub(channel)
    finally:
        await gateway.stop(0)


async def describe_refused(*script: Scripted, **overrides: object) -> tuple[RichError, FakeCI]:
    """A DescribeMediaJobs through a gateway whose CI answers `script`: the error the caller
    gets, and the fake (what CI was sent)."""
    async with fake_ci(*script) as fake, gateway_stub(fake, SECRET, **overrides) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.DescribeMediaJobs(DESCRIBE, timeout=10)
    return rich_error(caught.value), fake


def test_every_mapped_code_has_a_documented_status() -> None:
    assert set(CI_ERRORS) == set(HTTP_STATUS)


@pytest.mark.parametrize("code", sorted(CI_ERRORS))
async def test_ci_error_code_maps_to_grpc_status_with_details(code: str) -> None:
    rule = CI_ERRORS[code]
    body = error_body(code, f"message for {code}", "NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x", "trace-1")
    error, fake = await describe_refused(Scripted(HTTP_STATUS[code], body, {"Retry-After": "0"}))
    assert error.code is rule.status
    assert error.code is not grpc.StatusCode.PERMISSION_DENIED
    assert error.code is not grpc.StatusCode.UNAUTHENTICATED
    assert error.error_info is not None
    assert error.error_info.reason == rule.reason.value
    assert error.error_info.domain == "ci-gateway"
    metadata = dict(error.error_info.metadata)
    assert metadata["ci_code"] == code
    assert metadata["ci_message"] == f"message for {code}"
    assert metadata["ci_request_id"] == "NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x"
    assert metadata["ci_trace_id"] == "trace-1"
    assert metadata["http_status"] == str(HTTP_STATUS[code])
    assert error.request_info is not None
    assert error.request_info.request_id == "NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x"
    assert code in error.message
    # Read-only calls retry transient and throttled outcomes, and only those.
    expected_attempts = 1 if rule.retry is RetryClass.TERMINAL else READ_ONLY.max_attempts
    assert len(fake.requests) == expected_attempts
    assert metadata["attempts"] == str(expected_attempts)
    assert (error.retry_info is not None) == (rule.retry is RetryClass.THROTTLED)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, grpc.StatusCode.INVALID_ARGUMENT),
        (403, grpc.StatusCode.INTERNAL),
        (404, grpc.StatusCode.NOT_FOUND),
        (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (503, grpc.StatusCode.UNAVAILABLE),
        (418, grpc.StatusCode.INTERNAL),
    ],
)
async def test_unknown_code_falls_back_on_http_status(
    status: int, expected: grpc.StatusCode
) -> None:
    assert rule_for_http_status(status).status is expected
    body = error_body("SomethingNew", "a code this gateway has never seen", "rid-1")
    error, _ = await describe_refused(Scripted(status, body, {"Retry-After": "0"}))
    assert error.code is expected
    assert error.error_info is not None
    assert error.error_info.metadata["ci_code"] == "SomethingNew"


async def test_request_id_falls_back_to_header_when_body_lacks_it() -> None:
    body = error_body("InvalidArgument", "bad queue")
    error, _ = await describe_refused(Scripted(400, body, {"x-ci-request-id": "from-header-123"}))
    assert error.request_info is not None
    assert error.request_info.request_id == "from-header-123"


async def test_json_error_body_is_understood() -> None:
    body = b'{"code": "AccessDenied", "message": "no", "request_id": "json-rid"}'
    headers = {"Content-Type": "application/json"}
    error, _ = await describe_refused(Scripted(403, body, headers))
    assert error.code is grpc.StatusCode.FAILED_PRECONDITION
    assert error.error_info is not None
    assert error.error_info.metadata["ci_request_id"] == "json-rid"


async def test_redirect_is_an_error_not_a_parse_crash() -> None:
    redirect = Scripted(301, b"", {"Location": "https://elsewhere.example/jobs"})
    error, fake = await describe_refused(redirect)
    assert error.code is grpc.StatusCode.INTERNAL
    assert "redirect" in error.message
    assert len(fake.requests) == 1  # never followed


@pytest.mark.parametrize(
    "body",
    [
        b"<Response><JobsDetail><JobId>j1</JobId>",  # truncated
        b"this is not xml",
        b"<Error><Code>x</Code></Error>",  # wrong root on a 200
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;'
        b'&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><Response>&c;</Response>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Response><NextToken>&x;</NextToken></Response>",
    ],
    ids=["truncated", "not-xml", "wrong-root", "entity-bomb", "external-entity"],
)
async def test_unusable_success_body_is_unavailable_and_gateway_survives(body: bytes) -> None:
    good = b"<Response><NonExistJobIds>j1</NonExistJobIds></Response>"
    async with fake_ci(Scripted(200, body), Scripted(200, good)) as fake:
        async with gateway_stub(fake) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.DescribeMediaJobs(DESCRIBE, timeout=10)
            # The gateway keeps serving: the next call gets the next (good) answer.
            answer = await stub.DescribeMediaJobs(DESCRIBE, timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.error_info is not None
    assert error.error_info.reason == "UPSTREAM_PROTOCOL_ERROR"
    assert "root:" not in error.message  # no file content leaked through an entity
    assert list(answer.non_exist_job_ids) == ["j1"]


async def test_oversize_answer_is_refused() -> None:
    huge = b"<Response>" + b"<NextToken>x</NextToken>" * 300_000 + b"</Response>"
    async with fake_ci(Scripted(200, huge)) as fake, gateway_stub(fake) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMediaJobs(service_pb2.ListMediaJobsRequest(), timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert "limit" in error.message


async def test_html_error_page_maps_by_status() -> None:
    page = b"<html><body>502 Bad Gateway</body></html>"
    headers = {"Content-Type": "text/html"}
    async with fake_ci(Scripted(502, page, headers)) as fake, gateway_stub(fake) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.DescribeMediaJobs(DESCRIBE, timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_slow_peer_hits_the_callers_deadline_and_the_request_is_aborted() -> None:
    async with fake_ci(Scripted(hang=True)) as fake, gateway_stub(fake) as stub:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.DescribeMediaJobs(DESCRIBE, timeout=0.5)
        elapsed = time.monotonic() - started
        # The upstream request was abandoned, not left running.
        await asyncio.wait_for(fake.cancelled.wait(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 2.0
    assert len(fake.requests) == 1


async def test_submit_is_not_replayed_after_an_ambiguous_5xx() -> None:
    """A 5xx may come after CI created the job: the gateway checks (lists) before any resend,
    and when it cannot check either, it says so instead of guessing."""
    body = error_body("InternalError", "oops", "rid-500")
    request = service_pb2.SubmitMediaJobRequest(request_id="req-ambiguous-1")
    request.request.CopyFrom(SUBMIT.request)
    # A caller's new request_id is first looked for (its store record may have been lost):
    # that listing finds nothing; then CI fails everything with a 500.
    no_jobs = Scripted(200, b"<Response><NextToken></NextToken></Response>")
    async with fake_ci(no_jobs, Scripted(500, body)) as fake, gateway_stub(fake) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitMediaJob(request, timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.error_info is not None
    assert error.error_info.reason == "SUBMIT_OUTCOME_UNKNOWN"
    assert error.error_info.metadata["request_id"] == "req-ambiguous-1"
    methods = [r.method for r in fake.requests]
    assert methods.count("POST") == 1  # never replayed blindly
    # The reconcile (a job listing, itself retried as a read) was tried.
    assert methods[:2] == ["GET", "POST"] and methods[2:] == ["GET"] * READ_ONLY.max_attempts


async def test_submit_is_replayed_after_throttling_then_succeeds() -> None:
    throttled = Scripted(429, error_body("SlowDown", "slow down", "rid-429"), {"Retry-After": "0"})
    ok = Scripted(
        200,
        b"<Response><JobsDetail><JobId>jok</JobId><State>Submitted</State></JobsDetail></Response>",
    )
    async with fake_ci(throttled, ok) as fake, gateway_stub(fake) as stub:
        answer = await stub.SubmitMediaJob(SUBMIT, timeout=10)
    assert answer.jobs_detail.job_id == "jok"
    assert answer.jobs_detail.state == media_pb2.JOB_STATE_SUBMITTED
    assert len(fake.requests) == 2
    # Each attempt was signed afresh and carried the body's MD5.
    auths = [r.headers["Authorization"] for r in fake.requests]
    assert all("q-sign-algorithm=sha1" in a for a in auths)
    assert all("content-md5" in a for a in auths)


async def test_connection_refused_is_unavailable() -> None:
    async with fake_ci(Scripted()) as fake:
        url = fake.url
    # The fake is closed now: nothing listens on its port.
    gateway = await start_gateway(
        Settings(listen="127.0.0.1:0", default_bucket=BUCKET, default_region=REGION,
                 endpoint_url=url),
        StaticCredentialsProvider(SECRET),
    )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.DescribeMediaJobs(DESCRIBE, timeout=10)
    finally:
        await gateway.stop(0)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.error_info is not None
    assert error.error_info.metadata["request_sent"] == "false"
    assert SECRET.secret_key not in error.message


async def test_a_body_too_large_for_ci_is_the_callers_invalid_argument() -> None:
    """`InvalidContent` is the gateway's bug on 400 (a malformed body) but the caller's on 413
    (CI's "body too large"): INVALID_ARGUMENT, with CI's code and status in the details."""
    body = error_body("InvalidContent", "body too large", "NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x", "t")
    error, fake = await describe_refused(Scripted(413, body, {}))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.error_info is not None
    assert error.error_info.reason == "UPSTREAM_REJECTED"
    assert dict(error.error_info.metadata)["http_status"] == "413"
    assert len(fake.requests) == 1  # terminal: not retried


async def test_ci_quoting_the_gateways_callback_url_shows_the_caller_no_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The gateway hands CI its receiver's URL with every submit, and the token in its path is
    what lets anyone post callbacks to the gateway. An error Message quoting that URL (plain or
    percent-encoded) reaches the caller and the log with the token redacted, the rest intact."""
    caplog.set_level(logging.DEBUG)
    token = "cb-token-" + "x7" * 16
    url = f"http://gw.example:8080/ci-callback/{token}/{BUCKET}/{REGION}"
    quoted = url.replace(":", "%3A").replace("/", "%2F")
    body = error_body("InvalidArgument", f"CallBack {url} unreachable ({quoted})", "rid-cb")
    callbacks = Callbacks(listen="127.0.0.1:0", public_url="http://gw.example:8080", token=token)
    async with fake_ci(Scripted(400, body)) as fake:
        async with gateway_stub(fake, callbacks=callbacks) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SubmitMediaJob(SUBMIT, timeout=10)
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.error_info is not None
    message = error.error_info.metadata["ci_message"]
    assert message.startswith("CallBack http://gw.example:8080/ci-callback/[REDACTED]/")
    shown = "\n".join([str(error), caught.value.debug_error_string() or "", log_text(caplog)])
    assert token not in shown


@pytest.mark.parametrize(
    ("retry_after", "told_s"),
    [
        ("nan", None),  # was slept on for ever: the call hung until its deadline
        ("inf", None),  # was an OverflowError building RetryInfo: UNKNOWN to the caller
        ("-5", None),  # was a negative RetryInfo
        ("1e12", MAX_RETRY_AFTER_S),  # was a RetryInfo no Duration can hold
        ("date+7200", MAX_RETRY_AFTER_S),  # an HTTP-date was ignored
        ("date-60", None),  # in the past: retry now
    ],
)
async def test_retry_after_of_any_form_is_a_bounded_wait(
    retry_after: str, told_s: float | None
) -> None:
    """CI's Retry-After, in either of its forms or none, becomes a wait within bounds: for the
    gateway's retries (capped by the backoff's cap, here short) and in the caller's RetryInfo."""
    if retry_after.startswith("date"):  # an HTTP-date this far from now
        retry_after = email.utils.formatdate(time.time() + float(retry_after[4:]), usegmt=True)
    body = error_body("SlowDown", "slow down", "rid-ra")
    fast = Retry(transient_base_s=0.01, throttled_base_s=0.01, backoff_cap_s=0.05)
    error, fake = await describe_refused(
        Scripted(429, body, {"Retry-After": retry_after}), retry=fast
    )
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED, error.message
    assert len(fake.requests) == READ_ONLY.max_attempts
    assert error.retry_info is not None
    delay = error.retry_info.retry_delay.ToTimedelta().total_seconds()
    if told_s is None:
        assert 0 <= delay <= DEFAULT_THROTTLED_RETRY_S
    else:
        assert delay == pytest.approx(told_s, abs=1)


@pytest.mark.parametrize(
    ("code", "expected", "attempts"),
    [
        ("InvalidArgument", grpc.StatusCode.INVALID_ARGUMENT, 1),
        ("SlowDown", grpc.StatusCode.RESOURCE_EXHAUSTED, READ_ONLY.max_attempts),
        ("SomethingNew", grpc.StatusCode.UNAVAILABLE, 1),  # as an unreadable <Response>
    ],
)
async def test_cis_error_under_a_2xx_maps_by_its_code(
    code: str, expected: grpc.StatusCode, attempts: int
) -> None:
    """An `<Error>` answered with 200 is CI's error all the same: its Code picks the status and
    the retry, and Code, Message and RequestId reach the caller (it was an unreadable
    `<Response>`: UNAVAILABLE, CI's words lost)."""
    body = error_body(code, f"message for {code}", "rid-200", "trace-200")
    error, fake = await describe_refused(Scripted(200, body, {"Retry-After": "0"}))
    assert error.code is expected, error.message
    assert error.error_info is not None
    metadata = dict(error.error_info.metadata)
    assert metadata["ci_code"] == code
    assert metadata["ci_message"] == f"message for {code}"
    assert metadata["ci_request_id"] == "rid-200"
    assert metadata["http_status"] == "200"
    assert error.request_info is not None and error.request_info.request_id == "rid-200"
    assert len(fake.requests) == attempts


def _with_bom(body: bytes, encoding: str) -> bytes:
    """`body` (UTF-8, declared so) re-encoded with a byte-order mark first."""
    text = body.decode()
    if encoding == "utf-8-sig":
        return text.encode(encoding)
    return text.replace("encoding='utf-8'", "encoding='utf-16'").encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "QueueSaturated", grpc.StatusCode.RESOURCE_EXHAUSTED),  # by status: INTERNAL
        (200, "InvalidArgument", grpc.StatusCode.INVALID_ARGUMENT),  # else: UNAVAILABLE
    ],
)
async def test_an_error_body_with_a_byte_order_mark_maps_by_its_code(
    encoding: str, status: int, code: str, expected: grpc.StatusCode
) -> None:
    """A BOM before `<?xml` (UTF-8's, or UTF-16's, which the declaration names) is still XML:
    CI's Code picks the status and reaches the caller, as without one."""
    body = _with_bom(error_body(code, f"message for {code}", "rid-bom"), encoding)
    error, _ = await describe_refused(Scripted(status, body, {"Retry-After": "0"}))
    assert error.code is expected, error.message
    assert error.error_info is not None
    metadata = dict(error.error_info.metadata)
    assert (metadata["ci_code"], metadata["ci_message"]) == (code, f"message for {code}")
    assert metadata["ci_request_id"] == "rid-bom"


async def test_a_submit_answered_slowdown_under_a_2xx_is_not_replayed() -> None:
    """Throttling refuses before CI acts, so a submit is replayed after it; but a 2xx says CI
    accepted something, whatever its `<Error>` says: the submit is not sent again blindly."""
    body = error_body("SlowDown", "slow down", "rid-200")
    async with fake_ci(Scripted(200, body, {"Retry-After": "0"})) as fake:
        async with gateway_stub(fake) as stub:
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.SubmitMediaJob(SUBMIT, timeout=10)
    assert [r.method for r in fake.requests].count("POST") == 1
