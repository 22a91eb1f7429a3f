"""`gateway.status`: what a `GatewayError` becomes on the wire, detail by detail, and what
`abort` sends through a real grpc.aio server and notes on the RPC's scope."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from contextlib import asynccontextmanager
from typing import Any, cast

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway import rpc_context
from gateway.errors import (
    ClientRateLimited,
    FieldViolation,
    GatewayError,
    InvalidRequest,
    Overloaded,
    RetryBudgetExhausted,
    SubmitOutcomeUnknown,
    TrackerClosed,
    TrackerFailed,
    TransportError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamUnreachable,
)
from gateway.rpc_context import CI_REQUEST_ID_METADATA, REQUEST_ID_METADATA, RpcScope
from gateway.status import DEFAULT_THROTTLED_RETRY_S, DOMAIN, abort, release_frames, to_status

DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.BadRequest,
)


def details(status: status_pb2.Status) -> dict[str, Message]:
    """The status's details by type name; each type at most once."""
    found: dict[str, Message] = {}
    for packed in status.details:
        for kind in DETAIL_TYPES:
            if packed.Is(kind.DESCRIPTOR):
                message = kind()
                packed.Unpack(message)
                assert kind.__name__ not in found, f"two {kind.__name__}"
                found[kind.__name__] = message
                break
        else:
            raise AssertionError(f"unexpected detail {packed.type_url}")
    return found


def not_found(**overrides: Any) -> UpstreamError:
    fields: dict[str, Any] = {
        "http_status": 404,
        "code": "NoSuchKey",
        "message": "The specified key does not exist.",
        "request_id": "NjQ0ZjE2-ci",
        "trace_id": "trace-9",
        "attempts": 2,
    }
    return UpstreamError(**(fields | overrides))


def test_an_upstream_error_carries_cis_fields_as_error_info_and_request_info() -> None:
    error = not_found()
    error.extra["request_id"] = "submit-7"  # added on the error's way out (the submit's id)
    status = to_status(error)
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert (
        status.message
        == str(error)
        == ("CI error NoSuchKey: The specified key does not exist. (RequestId NjQ0ZjE2-ci)")
    )
    found = details(status)
    assert set(found) == {"ErrorInfo", "RequestInfo"}  # no RetryInfo, no BadRequest
    info = found["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("UPSTREAM_NOT_FOUND", DOMAIN)
    assert dict(info.metadata) == {
        "ci_code": "NoSuchKey",
        "ci_message": "The specified key does not exist.",
        "ci_request_id": "NjQ0ZjE2-ci",
        "ci_trace_id": "trace-9",
        "http_status": "404",
        "request_id": "submit-7",
        "attempts": "2",
    }
    request = found["RequestInfo"]
    assert isinstance(request, error_details_pb2.RequestInfo)
    assert (request.request_id, request.serving_data) == ("NjQ0ZjE2-ci", "CI")


def test_request_info_only_when_ci_gave_a_request_id() -> None:
    assert "RequestInfo" not in details(to_status(not_found(request_id="")))
    garbled = UpstreamProtocolError("not XML", http_status=200, request_id="ci-2")
    request = details(to_status(garbled))["RequestInfo"]
    assert isinstance(request, error_details_pb2.RequestInfo) and request.request_id == "ci-2"
    unreachable = TransportError("connection refused", sent=False)
    found = details(to_status(unreachable))
    assert set(found) == {"ErrorInfo"}
    info = found["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert dict(info.metadata) == {"request_sent": "false", "attempts": "1"}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda ci: SubmitOutcomeUnknown("rid-1", ci),
        lambda ci: RetryBudgetExhausted(ci, 3),
        lambda ci: SubmitOutcomeUnknown("rid-1", RetryBudgetExhausted(ci, 3)),
        lambda ci: UpstreamUnreachable("job j1", 90.0, 4, ci),
        lambda ci: UpstreamUnreachable("job j1", 90.0, 4, RetryBudgetExhausted(ci, 3)),
    ],
    ids=["outcome-unknown", "budget-exhausted", "both", "unreachable", "unreachable-budget"],
)
def test_an_error_wrapping_cis_answer_still_carries_its_request_id(
    wrap: Callable[[GatewayError], GatewayError],
) -> None:
    """SUBMIT_OUTCOME_UNKNOWN and RETRY_BUDGET_EXHAUSTED came from CI too: support needs the
    RequestId of CI's last answer there as much as on a plain CI error."""
    error = wrap(not_found(http_status=500, code="InternalError", request_id="ci-last"))
    request = details(to_status(error))["RequestInfo"]
    assert isinstance(request, error_details_pb2.RequestInfo)
    assert (request.request_id, request.serving_data) == ("ci-last", "CI")


def test_attempts_is_always_the_errors_own_count() -> None:
    """`extra` adds metadata but cannot pass off another attempt count."""
    error = Overloaded("RPCs in flight", 3)
    error.extra["attempts"] = "99"
    info = details(to_status(error))["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert dict(info.metadata) == {"limit": "3", "attempts": "0"}


@pytest.mark.parametrize(
    "error",
    [
        TrackerClosed(),
        TrackerFailed(),
        UpstreamUnreachable("job j1", 90.0, 4, TransportError("reset", sent=True)),
    ],
    ids=["closed", "failed", "unreachable"],
)
def test_a_watch_ended_by_the_tracker_sent_no_attempt_of_its_own(error: GatewayError) -> None:
    """The tracker polls CI for every watcher at once; the README's `attempts` counts the
    requests the call itself sent towards CI, and a watch sends none."""
    info = details(to_status(error))["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.metadata["attempts"] == "0"


def test_invalid_input_names_every_field_in_bad_request() -> None:
    error = InvalidRequest(
        [
            FieldViolation("request.input.object", "must not be empty"),
            FieldViolation("job_ids[3]", "not a job id"),
        ]
    )
    status = to_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = details(status)["BadRequest"]
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("request.input.object", "must not be empty"),
        ("job_ids[3]", "not a job id"),
    ]


@pytest.mark.parametrize(
    ("error", "delay_s"),
    [
        (ClientRateLimited(0.25), 0.25),  # the rate limiter's next token, exactly
        (not_found(http_status=429, code="SlowDown", retry_after_s=3.0), 3.0),  # CI's Retry-After
        (Overloaded("RPCs in flight", 3), DEFAULT_THROTTLED_RETRY_S),  # nobody said: the default
    ],
)
def test_resource_exhausted_always_says_when_to_retry(error: GatewayError, delay_s: float) -> None:
    status = to_status(error)
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    info = details(status)["RetryInfo"]
    assert isinstance(info, error_details_pb2.RetryInfo)
    assert info.retry_delay.ToNanoseconds() == round(delay_s * 1e9)


def test_no_retry_info_for_other_codes_even_with_a_retry_after() -> None:
    unavailable = not_found(http_status=503, code="ServiceUnavailable", retry_after_s=2.0)
    assert to_status(unavailable).code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert "RetryInfo" not in details(to_status(unavailable))


# abort, through a real server ------------------------------------------------------------------

Behavior = Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], Awaitable[bytes]]


@asynccontextmanager
async def serving(behavior: Behavior) -> AsyncIterator[grpc.aio.Channel]:
    """A loopback grpc.aio server whose one method `/test.Status/Call` runs `behavior`."""
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "test.Status", {"Call": grpc.unary_unary_rpc_method_handler(behavior)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


async def failed_call(channel: grpc.aio.Channel) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Status/Call", None, None)(b"", timeout=10)
    return caught.value


def trailing(error: grpc.aio.AioRpcError) -> list[tuple[str, str | bytes]]:
    """The error's trailing metadata as pairs (grpc's stubs type the items loosely)."""
    return list(cast("Iterable[tuple[str, str | bytes]]", error.trailing_metadata() or ()))


async def test_abort_sends_the_rich_status_and_notes_it_on_the_scope() -> None:
    error = not_found()
    error.extra["request_id"] = "submit-7"
    scopes: list[RpcScope] = []

    async def behavior(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        scope = RpcScope("/test.Status/Call", "caller-id-1")
        scopes.append(scope)
        rpc_context.enter(scope)  # this handler's own task: its context ends with the call
        context.set_trailing_metadata(
            (("x-kept", "set before the abort"), ("x-ci-request-id", "an earlier answer's"))
        )
        await abort(context, error)

    async with serving(behavior) as channel:
        failed = await failed_call(channel)
    assert failed.code() == grpc.StatusCode.NOT_FOUND
    assert failed.details() == str(error)
    assert rpc_status.from_call(failed) == to_status(error)  # type: ignore[arg-type]
    pairs = trailing(failed)
    assert (REQUEST_ID_METADATA, "caller-id-1") in pairs
    # What the handler set before failing is kept (a submit's id to retry with), except where
    # the abort sends its own value under the same name.
    assert ("x-kept", "set before the abort") in pairs
    assert [value for name, value in pairs if name == "x-ci-request-id"] == ["NjQ0ZjE2-ci"]
    (scope,) = scopes
    assert (scope.reason, scope.ci_request_id) == ("UPSTREAM_NOT_FOUND", "NjQ0ZjE2-ci")


async def test_a_failure_ci_answered_carries_cis_request_id_in_the_trailer_too() -> None:
    """The README promises `x-ci-request-id` for every call CI answered, failures included."""
    wrapped = SubmitOutcomeUnknown("rid-1", not_found(http_status=500, code="InternalError"))

    async def behavior(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        await abort(context, wrapped)

    async with serving(behavior) as channel:
        failed = await failed_call(channel)
    assert dict(trailing(failed))[CI_REQUEST_ID_METADATA] == "NjQ0ZjE2-ci"

    async def unanswered(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        await abort(context, TransportError("connection refused", sent=False))

    async with serving(unanswered) as channel:
        failed = await failed_call(channel)
    assert CI_REQUEST_ID_METADATA not in dict(trailing(failed))  # CI never answered


async def test_abort_outside_an_rpc_scope_still_sends_the_rich_status() -> None:
    """A servicer served without the interceptor (as some tests do) aborts just the same."""
    error = ClientRateLimited(0.5)

    async def behavior(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        await abort(context, error)

    async with serving(behavior) as channel:
        failed = await failed_call(channel)
    assert failed.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert rpc_status.from_call(failed) == to_status(error)  # type: ignore[arg-type]
    assert REQUEST_ID_METADATA not in dict(trailing(failed))


# ---- what an aborted error keeps alive ----------------------------------------------------------


class _Payload:
    """Stands for CI's answer: something big that only a frame's local refers to."""


def _refuse(payload: _Payload) -> None:
    raise UpstreamProtocolError("CI's answer could not be parsed")


def test_release_frames_drops_what_finished_functions_held() -> None:
    payload = _Payload()
    alive = weakref.ref(payload)
    try:
        _refuse(payload)
    except UpstreamProtocolError as caught:
        error = caught
    del payload
    assert alive() is not None  # the traceback's frame still holds it...
    release_frames(error)
    assert alive() is None  # ...until released, without waiting for the cyclic collector


def test_release_frames_never_closes_a_suspended_coroutine_on_the_errors_path() -> None:
    """An error may travel between tasks (the job poller hands one to every watcher); the
    frame that caught it may still be suspended, and clearing it would close that task."""

    def poller() -> Generator[GatewayError, None, None]:
        try:
            _refuse(_Payload())
        except UpstreamProtocolError as caught:
            error = caught
        while True:  # suspended here, still alive, with the error's frame in the traceback
            yield error

    running = poller()
    error = next(running)
    release_frames(error)
    assert next(running) is error  # still running
    running.close()
