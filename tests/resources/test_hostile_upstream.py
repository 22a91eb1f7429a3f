"""What a hostile CI (or a broken proxy in its place) can send back to the queue, template,
workflow and media-info calls, to a list page and to a describe in batches: each answer maps to
the right gRPC code with CI's Code, Message and RequestId where CI sent them, never crashes,
hangs or fools the gateway into an empty success, and is retried only as the call allows.

Issue 11 proved this for job submits and describes (tests/integration/test_upstream_errors.py,
test_hostile_upstream.py, tests/upstream/test_transport.py); these run every other call CI
answers through the same hostile answers, against a raw peer (`hostile_ci`) and a real gateway.

The retry decision, per call (`hostile_ci.Replay`): CI documents no idempotency key or retry
rule for any of these (notes §6.3: its SDKs resend any 5xx and network error, POSTs included).
A create (`POST /template`, `POST /workflow`) or a trigger makes something new each time it
reaches CI, so the gateway resends it only when it certainly did not (no connection) or CI
throttled it; a reset after sending, a time-out, a 5xx or a garbled answer ends the call,
UNAVAILABLE with `request_sent`. A `PUT` (UpdateMediaQueue, UpdateMediaTemplate, ...) carries
the whole of what it sets, so sending it again sets the same: it is retried like a read.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import grpc
import pytest
from prometheus_client import generate_latest

from gateway.config.settings import Timeouts
from gateway.credentials import Credentials
from gateway.upstream.client import MAX_CI_REQUEST_ID_CHARS
from tests.access.helpers import log_text
from tests.integration.helpers import RichError, rich_error
from tests.resources.conftest import Stubs
from tests.resources.hostile_ci import (
    BY_NAME,
    CALLS,
    MAX_RESPONSE_BYTES,
    RUN_ID,
    Act,
    Call,
    Piece,
    Replay,
    Seen,
    W,
    answering_well,
    gateway_for,
    good_answer,
    hostile_ci,
    http,
)

CREDENTIALS = Credentials("AKID" + "0" * 32, "SK-hostile-" + "k" * 20, "TOKEN-hostile-" + "t" * 20)
UNAVAILABLE, INTERNAL = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL
ATTEMPTS = 3  # retry.max_attempts
Pairs = Sequence[tuple[str, str]]  # metadata as grpc hands it over (typed `_Metadatum`)
TIMEOUT_S = 10.0


async def refused(call: Call, stubs: Stubs, timeout: float = TIMEOUT_S) -> RichError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.invoke(stubs, timeout)
    return rich_error(caught.value)


def sends(call: Call, retried: bool) -> int:
    """Requests a call sends when every answer is the same failure (its first on a gateway)."""
    own = ATTEMPTS if retried and call.replay is Replay.IDEMPOTENT else 1
    return own + call.looks_up_queue


# ---- every call, each hostile answer -------------------------------------------------------------

ERROR_XML = (
    b"<?xml version='1.0' encoding='utf-8' ?>\n<Error><Code>{code}</Code><Message>{message}"
    b"</Message><RequestId>NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x</RequestId><TraceId>trace-1"
    b"</TraceId></Error>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<{root}><Code>&lol3;</Code><Message>&lol3;</Message></{root}>"
)


def error_xml(code: str, message: str) -> bytes:
    return ERROR_XML.replace(b"{code}", code.encode()).replace(b"{message}", message.encode())


@dataclass(frozen=True)
class Hostile:
    pieces: Sequence[Piece]
    code: grpc.StatusCode
    reason: str
    retried: bool = False  # a transient outcome: idempotent calls send it ATTEMPTS times
    metadata: dict[str, str] = field(default_factory=dict)  # ErrorInfo metadata it must carry
    # A refusal CI made (an UpstreamError that is not retried): a run's watch ends with it.
    ends_watch: bool = False


CI_FIELDS = {"ci_request_id": "NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x", "ci_trace_id": "trace-1"}
HOSTILE = {
    "malformed-xml": Hostile(
        [http(200, b"<Response><Template><TemplateId>t</Template>")],
        UNAVAILABLE,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"http_status": "200", "ci_request_id": "RID-200"},
    ),
    "wrong-root": Hostile(
        [http(200, b"<Html><Body>maintenance</Body></Html>")],
        UNAVAILABLE,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"http_status": "200", "ci_request_id": "RID-200"},
    ),
    "json-200": Hostile(
        [http(200, b'{"Response": {"Template": {}}}', content_type="application/json")],
        UNAVAILABLE,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"http_status": "200"},
    ),
    "html-200": Hostile(
        [http(200, b"<!DOCTYPE html><html><body>login</body></html>", content_type="text/html")],
        UNAVAILABLE,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"http_status": "200"},
    ),
    "error-under-200": Hostile(
        [http(200, error_xml("InvalidArgument", "queue is not bound"))],
        grpc.StatusCode.INVALID_ARGUMENT,
        "UPSTREAM_REJECTED",
        metadata={"ci_code": "InvalidArgument", "ci_message": "queue is not bound", **CI_FIELDS},
        ends_watch=True,
    ),
    "unknown-code-under-200": Hostile(
        [http(200, error_xml("SomethingNew", "never seen"))],
        UNAVAILABLE,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"ci_code": "SomethingNew", "http_status": "200", **CI_FIELDS},
        ends_watch=True,
    ),
    "unknown-code-409": Hostile(
        [http(409, error_xml("ResourceConflict", "busy elsewhere"))],
        INTERNAL,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"ci_code": "ResourceConflict", "ci_message": "busy elsewhere", **CI_FIELDS},
        ends_watch=True,
    ),
    "unknown-code-503": Hostile(
        [http(503, error_xml("BackendBusy", "try later"))],
        UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
        retried=True,
        metadata={"ci_code": "BackendBusy", "http_status": "503", **CI_FIELDS},
    ),
    "redirect": Hostile(
        [http(302, b"", "Location: https://elsewhere.example/a?q-signature=0123abcd")],
        INTERNAL,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={
            "http_status": "302",
            "ci_message": "unexpected redirect 302 https://elsewhere.example/a?q-signature=[REDACTED]",
        },
        ends_watch=True,
    ),
    "html-502": Hostile(
        [http(502, b"<html><body>Bad Gateway</body></html>", reason="Bad Gateway")],
        UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
        retried=True,
        metadata={"http_status": "502", "ci_message": "Bad Gateway", "ci_request_id": "RID-502"},
    ),
    "html-403": Hostile(
        [http(403, b"<html><body>Forbidden</body></html>", content_type="text/html")],
        INTERNAL,
        "UPSTREAM_AUTH_FAILED",
        metadata={"http_status": "403"},
        ends_watch=True,
    ),
    "empty-500": Hostile(
        [http(500)],
        UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
        retried=True,
        metadata={"http_status": "500", "ci_request_id": "RID-500"},
    ),
    "empty-404": Hostile(
        [http(404)], grpc.StatusCode.NOT_FOUND, "UPSTREAM_NOT_FOUND", ends_watch=True
    ),
    "billion-laughs": Hostile(
        [http(200, BILLION_LAUGHS.replace(b"{root}", b"Response"))],
        UNAVAILABLE,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"http_status": "200"},
    ),
    "billion-laughs-error": Hostile(
        # Entities never expand: the error body is unreadable, so its HTTP status decides.
        [http(400, BILLION_LAUGHS.replace(b"{root}", b"Error"))],
        grpc.StatusCode.INVALID_ARGUMENT,
        "UPSTREAM_REJECTED",
        metadata={"http_status": "400"},
        ends_watch=True,
    ),
    "oversize-by-length": Hostile(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n<Response>", Act.HOLD],
        UNAVAILABLE,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"http_status": "200"},
    ),
    "oversize-chunked": Hostile(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            *[b"10000\r\n" + b"x" * 0x10000 + b"\r\n"] * (MAX_RESPONSE_BYTES // 0x10000 + 1),
            Act.HOLD,
        ],
        UNAVAILABLE,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"http_status": "200"},
    ),
    "reset-after-the-request": Hostile(
        [Act.CUT],
        UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
        retried=True,
        metadata={"request_sent": "true"},
    ),
    "cut-mid-body": Hostile(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<Response><Templ", Act.CUT],
        UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
        retried=True,
        metadata={"request_sent": "true"},
    ),
    "length-shorter-than-body": Hostile(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n<Response><RequestId>r</RequestId>"],
        UNAVAILABLE,
        "UPSTREAM_PROTOCOL_ERROR",
        metadata={"http_status": "200"},
    ),
    "bad-chunk-size": Hostile(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n<Response/>\r\n0\r\n\r\n",
            Act.HOLD,
        ],
        UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
        retried=True,
        metadata={"request_sent": "true"},
    ),
    "chunk-longer-than-said": Hostile(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<Response/>\r\n0\r\n\r\n",
            Act.HOLD,
        ],
        UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
        retried=True,
        metadata={"request_sent": "true"},
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_every_call_maps_a_hostile_answer_and_the_gateway_serves_on(kind: str) -> None:
    """Each call, answered `kind`: its code and reason, CI's fields in ErrorInfo and RequestInfo
    where CI sent them, as many sends as its retry rule allows (`sends`), a run's watch ended
    by a refusal of CI's; then the same gateway serves each call, answered well."""
    hostile = HOSTILE[kind]
    async with (
        hostile_ci(lambda seen: hostile.pieces) as peer,
        gateway_for(peer, CREDENTIALS) as (gateway, stubs),
    ):
        for call in CALLS:
            before = len(peer.requests)
            error = await refused(call, stubs)
            where = f"{kind} {call.name}"
            assert (error.code, error.error_info and error.error_info.reason) == (
                hostile.code,
                hostile.reason,
            ), f"{where}: {error}"
            assert error.error_info is not None
            metadata = dict(error.error_info.metadata)
            assert metadata.items() >= hostile.metadata.items(), f"{where}: {metadata}"
            if "ci_request_id" in hostile.metadata:
                assert error.request_info is not None
                assert error.request_info.request_id == hostile.metadata["ci_request_id"]
            if not call.batched:  # a describe's batches go out together; one failing ends it
                sent = sends(call, hostile.retried)
                assert (len(peer.requests) - before, metadata["attempts"]) == (sent, str(sent)), (
                    where
                )
        if hostile.ends_watch:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await watch(stubs)
            assert caught.value.code() is hostile.code
        # Still serving, and still CI's client: the same calls, answered well, succeed.
        peer.script = answering_well
        for call in CALLS:
            await call.invoke(stubs, TIMEOUT_S)
        assert [update.workflow_execution.state_text for update in await watch(stubs)] == [
            "Success"
        ]
    assert gateway.client.in_flight == 0


async def watch(stubs: Stubs) -> list[W.WatchWorkflowExecutionResponse]:
    call = stubs.workflows.WatchWorkflowExecution(
        W.WatchWorkflowExecutionRequest(run_id=RUN_ID), timeout=TIMEOUT_S
    )
    return [update async for update in call]


# ---- slow answers, and what is resent after them -------------------------------------------------

SOME = (
    "DescribeMediaQueues",
    "UpdateMediaQueue(reads first)",
    "CreateMediaTemplate",
    "UpdateMediaTemplate",
    "CreateMediaWorkflow",
    "TriggerMediaWorkflow",
    "ListWorkflowExecutions",
    "GetMediaInfo",
    "DescribeMediaJobs(3 batches)",
)


async def test_a_body_slower_than_the_deadline_ends_at_the_deadline_and_frees_its_connection() -> (
    None
):
    """A 200 trickled a byte at a time, slower than the caller's deadline: the call ends
    DEADLINE_EXCEEDED at that deadline (not when the body would end), the request towards CI
    is aborted (the peer sees its connection closed), and the gateway serves the next call."""
    async with (
        hostile_ci(lambda seen: [Act.TRICKLE]) as peer,
        gateway_for(peer, CREDENTIALS) as (gateway, stubs),
    ):
        for name in SOME:
            error = await refused(BY_NAME[name], stubs, timeout=0.5)
            assert error.code is grpc.StatusCode.DEADLINE_EXCEEDED, (name, error)
        await peer.until_closed(len(peer.requests))
        assert gateway.client.in_flight == 0
        peer.script = answering_well
        for name in SOME:
            await BY_NAME[name].invoke(stubs, TIMEOUT_S)


async def test_an_attempt_time_out_is_retried_only_where_a_resend_is_harmless() -> None:
    """The attempt's own read time-out (`timeouts.read_s`), well within the caller's deadline:
    CI may have acted on the request. Reads and PUTs send it again; a create or a trigger ends
    after its one send, UNAVAILABLE (UPSTREAM_TIMEOUT) with `request_sent`."""
    async with (
        hostile_ci(lambda seen: [Act.TRICKLE]) as peer,
        gateway_for(peer, CREDENTIALS, timeouts=Timeouts(read_s=0.1)) as (_, stubs),
    ):
        for name in SOME:
            if name == "DescribeMediaJobs(3 batches)":
                continue
            call = BY_NAME[name]
            before = len(peer.requests)
            error = await refused(call, stubs)
            assert error.code is UNAVAILABLE, (name, error)
            assert error.error_info is not None
            assert error.error_info.reason == "UPSTREAM_TIMEOUT"
            assert error.error_info.metadata["request_sent"] == "true"
            assert len(peer.requests) - before == sends(call, retried=True), name


async def test_a_throttled_create_is_resent_and_made_once() -> None:
    """Throttling (SlowDown 429, QueueSaturated) is CI refusing before it acts: the one outcome
    after which a create that reached CI is sent again."""

    def script(seen: Seen) -> Sequence[Piece]:
        first = sum(other.path == seen.path for other in peer.requests) == 1
        if first:
            return [http(429, error_xml("SlowDown", "slow down"), "Retry-After: 0")]
        return [good_answer(seen)]

    async with (
        hostile_ci(script) as peer,
        gateway_for(peer, CREDENTIALS) as (_, stubs),
    ):
        created = await BY_NAME["CreateMediaTemplate"].invoke(stubs, TIMEOUT_S)
        workflow = await BY_NAME["CreateMediaWorkflow"].invoke(stubs, TIMEOUT_S)
        run = await BY_NAME["TriggerMediaWorkflow"].invoke(stubs, TIMEOUT_S)
    assert created.template.template_id == "t1abc"
    assert workflow.media_workflow.workflow_id == "w1abc"
    assert run.instance_id
    assert [seen.path for seen in peer.requests] == [
        "/template",
        "/template",
        "/workflow",
        "/workflow",
        "/triggerworkflow",
        "/triggerworkflow",
    ]


async def test_a_create_that_never_left_is_sent_again() -> None:
    """No connection to CI: the request certainly never left, so a create is retried like a
    read (`request_sent` false), and fails only once every attempt failed."""
    async with hostile_ci(answering_well) as peer:
        url = peer.url
    closed = type(peer)(answering_well, url=url)  # nothing listens there any more
    async with gateway_for(closed, CREDENTIALS) as (_, stubs):
        for name in ("CreateMediaTemplate", "CreateMediaWorkflow", "TriggerMediaWorkflow"):
            error = await refused(BY_NAME[name], stubs)
            assert error.code is UNAVAILABLE, name
            assert error.error_info is not None
            metadata = error.error_info.metadata
            assert (metadata["request_sent"], metadata["attempts"]) == ("false", str(ATTEMPTS))


# ---- a peer that echoes the request --------------------------------------------------------------


def echoing(seen: Seen) -> Sequence[Piece]:
    """Every header the gateway sent, pasted into whatever CI's answer would pass on: the
    error's Code, Message, RequestId and TraceId, the request id header, a redirect's Location."""
    echo = "; ".join(f"{name}: {value}" for name, value in seen.headers.items())
    text = echo.replace("&", "&amp;").replace("<", "&lt;")
    body = (
        f"<Error><Code>{text}</Code><Message>{text}</Message><RequestId>{text}</RequestId>"
        f"<TraceId>{text}</TraceId><Resource>{text}</Resource></Error>"
    ).encode()
    header = echo.encode()
    if seen.method == "GET":
        return [http(302, b"", f"Location: https://x.example/?{echo}", request_id=header)]
    return [http(400, body, request_id=header)]


async def test_an_echoing_peer_hands_no_credential_to_the_caller_the_log_or_the_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11 item 8 for every call here, the COS host's GetMediaInfo (its token header is
    `x-cos-security-token`) included: what CI echoes of the signed request reaches neither the
    status (message, details, trailers), nor a log line, nor a metric."""
    caplog.set_level(logging.DEBUG)
    credentials = Credentials(
        "AKID" + secrets.token_hex(16), "SK-" + secrets.token_hex(16), "TOK" + secrets.token_hex(16)
    )
    shown: list[str] = []
    async with (
        hostile_ci(echoing) as peer,
        gateway_for(peer, credentials) as (gateway, stubs),
    ):
        for call in CALLS:
            invocation = call.invoke(stubs, TIMEOUT_S)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await invocation
            error = rich_error(caught.value)
            assert error.code is not grpc.StatusCode.UNKNOWN, call.name
            shown += [str(error), repr(caught.value.trailing_metadata())]
        shown.append(generate_latest(gateway.metrics.registry).decode())
    shown.append(log_text(caplog))
    text = "\n".join(shown)
    assert "[REDACTED]" in text
    signatures = [seen.headers["authorization"].split("q-signature=")[1] for seen in peer.requests]
    token = credentials.token or ""
    assert token in {seen.headers.get("x-cos-security-token") for seen in peer.requests}
    for secret in (credentials.secret_id, credentials.secret_key, token, *signatures):
        assert secret and secret not in text, f"{secret[:8]}... leaked"


# ---- CI's RequestId, whatever it is --------------------------------------------------------------

ODD_IDS = {
    "not-ascii": "请求\u00e9\tid".encode(),
    "huge": b"r" * 40_000,
}


@pytest.mark.parametrize("odd", sorted(ODD_IDS))
async def test_a_request_id_no_trailer_could_carry_still_reaches_the_caller(odd: str) -> None:
    """CI's RequestId travels in the `x-ci-request-id` trailer, on a success as on a failure.
    gRPC metadata is printable ASCII, and clients refuse a trailer over 16 KiB: a header or an
    `<Error>` with any other id turned every answer into INTERNAL "Invalid metadata" or
    RESOURCE_EXHAUSTED "Stream removed", CI's own status and details lost. The id is kept
    percent-encoded and bounded, the same in the trailer, RequestInfo and ErrorInfo."""
    raw = ODD_IDS[odd]
    body_id = raw.decode()
    error_body = error_xml("InvalidArgument", "bad").replace(
        b"NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x", raw
    )
    answers = {
        "success": lambda seen: [good_answer(seen, request_id=raw)],
        "error": lambda seen: [http(400, error_body)],
    }
    async with (
        hostile_ci(answers["success"]) as peer,
        gateway_for(peer, CREDENTIALS) as (_, stubs),
    ):
        for outcome, script in answers.items():
            peer.script = script
            for call in CALLS:
                invocation = call.invoke(stubs, TIMEOUT_S)
                if outcome == "success":
                    await invocation
                    trailers = dict(await invocation.trailing_metadata())
                    shown = trailers["x-ci-request-id"]
                else:
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await invocation
                    error = rich_error(caught.value)
                    assert error.code is grpc.StatusCode.INVALID_ARGUMENT, (call.name, error)
                    assert error.error_info is not None and error.request_info is not None
                    assert error.error_info.metadata["ci_code"] == "InvalidArgument"
                    shown = error.request_info.request_id
                    assert error.error_info.metadata["ci_request_id"] == shown
                    trailers = dict(cast(Pairs, caught.value.trailing_metadata() or ()))
                    assert trailers["x-ci-request-id"] == shown
                assert shown.isascii() and shown.isprintable(), (call.name, shown)
                # A describe in batches answers with each batch's id, comma-joined.
                for one in shown.split(",") if call.batched else [shown]:
                    assert len(one) <= MAX_CI_REQUEST_ID_CHARS
                    if odd == "not-ascii":
                        assert one == "%E8%AF%B7%E6%B1%82%C3%A9%09id", (call.name, shown)
                    else:
                        assert body_id.startswith(one.removesuffix("...")), call.name


# ---- an error body no parser should follow -------------------------------------------------------


async def test_a_json_error_nested_without_end_is_still_cis_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11's JSON error shape (`{"code": ...}`) is read when CI labels its error
    `application/json`. A million nested arrays stopped `json.loads` with RecursionError,
    which escaped as a gateway bug: INTERNAL, and a traceback per call in the log. It is an
    unreadable error body, mapped by its HTTP status; values that are not text are no code."""
    deep = http(400, b"[" * 200_000, content_type="application/json", reason="Bad Request")
    odd = http(
        409,
        b'{"code": {"x": 1}, "message": null, "request_id": 12}',
        content_type="application/json",
    )
    async with (
        hostile_ci(lambda seen: [deep]) as peer,
        gateway_for(peer, CREDENTIALS) as (_, stubs),
    ):
        for call in CALLS:
            error = await refused(call, stubs)
            assert error.code is grpc.StatusCode.INVALID_ARGUMENT, (call.name, error)
            assert error.error_info is not None
            assert error.error_info.reason == "UPSTREAM_REJECTED"
            assert error.error_info.metadata["ci_message"] == "Bad Request"
        peer.script = lambda seen: [odd]
        error = await refused(BY_NAME["CreateMediaTemplate"], stubs)
        assert error.error_info is not None
        metadata = dict(error.error_info.metadata)
        assert "ci_code" not in metadata and metadata["ci_request_id"] == "RID-409", metadata
    assert "Traceback" not in log_text(caplog)


# ---- an answer without what the operation returns ------------------------------------------------


def empty_response(seen: Seen) -> Sequence[Piece]:
    return [http(200, b"<Response><RequestId>RID-body</RequestId></Response>")]


async def test_an_answer_lacking_what_the_operation_returns_is_refused_not_an_empty_success() -> (
    None
):
    """A create told "done" without the template it made, a trigger without the run it
    started, a probe without the media info: the caller could neither use nor find what CI
    made. Each is UNAVAILABLE (UPSTREAM_PROTOCOL_ERROR) naming the missing node, and not
    resent (a create may have made something); a list may be empty, and a run CI does not
    list is NOT_FOUND, as before."""
    async with (
        hostile_ci(empty_response) as peer,
        gateway_for(peer, CREDENTIALS) as (_, stubs),
    ):
        for call in CALLS:
            before = len(peer.requests)
            if call.requires:
                error = await refused(call, stubs)
                assert (error.code, error.error_info and error.error_info.reason) == (
                    UNAVAILABLE,
                    "UPSTREAM_PROTOCOL_ERROR",
                ), call.name
                assert f"<{call.requires}>" in error.message, error.message
                assert error.error_info is not None
                assert error.error_info.metadata["http_status"] == "200"
                assert error.error_info.metadata["ci_request_id"] == "RID-200"
                assert len(peer.requests) - before == 1, call.name
            elif call.name in ("DescribeWorkflowExecution", "UpdateMediaQueue(reads first)"):
                error = await refused(call, stubs)
                assert error.code is grpc.StatusCode.NOT_FOUND, call.name
            else:
                await call.invoke(stubs, TIMEOUT_S)
        # A template or workflow without its id is no more usable than none.
        peer.script = lambda seen: [
            http(200, b"<Response><Template><Name>thumbs</Name></Template></Response>")
        ]
        error = await refused(BY_NAME["CreateMediaTemplate"], stubs)
        assert error.code is UNAVAILABLE and "<Template><TemplateId>" in error.message


async def test_activate_and_pause_take_an_empty_200_as_their_answer() -> None:
    """The Go SDK reads no answer to `PUT /workflow/<id>?active|paused` (as for a cancel, whose
    answer is documented empty) and the catalogue documents none: an empty 200 is theirs. Where
    CI documents a body (a delete: `<TemplateId>`), an empty 200 is still refused."""
    async with (
        hostile_ci(lambda seen: [http(200)]) as peer,
        gateway_for(peer, CREDENTIALS) as (_, stubs),
    ):
        await BY_NAME["ActivateMediaWorkflow"].invoke(stubs, TIMEOUT_S)
        await BY_NAME["PauseMediaWorkflow"].invoke(stubs, TIMEOUT_S)
        error = await refused(BY_NAME["DeleteMediaTemplate"], stubs)
        assert error.code is UNAVAILABLE
    assert [(seen.method, seen.target) for seen in peer.requests[:2]] == [
        ("PUT", "/workflow/w1abc?active"),
        ("PUT", "/workflow/w1abc?paused"),
    ]


# ---- a read, then a write ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("write", "code", "puts"),
    [
        (http(503, error_xml("ServiceUnavailable", "later")), UNAVAILABLE, ATTEMPTS),
        (http(400, error_xml("InvalidArgument", "no")), grpc.StatusCode.INVALID_ARGUMENT, 1),
        (Act.CUT, UNAVAILABLE, ATTEMPTS),
    ],
    ids=["5xx", "4xx", "reset"],
)
async def test_a_read_then_write_counts_the_read_in_its_attempts(
    write: Piece, code: grpc.StatusCode, puts: int
) -> None:
    """UpdateMediaQueue with an empty name or state reads the queue first: `attempts` counts
    every request the call sent towards CI (README, "Errors"), the read's too."""

    def script(seen: Seen) -> Sequence[Piece]:
        return [good_answer(seen)] if seen.method == "GET" else [write]

    async with (
        hostile_ci(script) as peer,
        gateway_for(peer, CREDENTIALS) as (_, stubs),
    ):
        error = await refused(BY_NAME["UpdateMediaQueue(reads first)"], stubs)
    assert [seen.method for seen in peer.requests] == ["GET"] + ["PUT"] * puts
    assert error.code is code
    assert error.error_info is not None
    assert error.error_info.metadata["attempts"] == str(1 + puts)
    # What was sent back is the queue as read, with the one field the caller changed.
    assert b"<Name>q</Name><State>Paused</State>" in peer.requests[1].body
    assert b"<Url>http://hooks.example/ci</Url>" in peer.requests[1].body
