"""The access line's prepared form (`gateway.logs.PreparedLine`, `_Call._access_line`) writes the
bytes the generic `event` writes for the same fields, which are `json.dumps`'s of the line's
dict; a line a text of which may hold a secret still goes through `event`, which redacts it.

Two ways: a property over the values a line holds (any text: non-ASCII, control characters,
lone surrogates, trigger words; odd types), the prepared line against the `event` call the
interceptor made before it; and lines written by a real gateway over a real channel, with
`configure`'s handler the sole one, as `ci-gateway serve` runs."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import logs, rpc_context
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.api import interceptors
from gateway.api.metrics import GatewayMetrics
from gateway.api.server import RunningGateway
from gateway.scrub import REDACTED, may_hold_secrets

# `logs.configure` sets process-wide logging state: conftest's `logging_restored` gives the
# other tests theirs back.
pytestmark = pytest.mark.usefixtures("logging_restored")

NOW = 1_700_000_000.1234
METHOD = "/ci.media.v1.MediaJobService/SubmitMediaJob"


class _Context:
    """What `_Call` reads of a grpc context when it starts."""

    def __init__(self, peer: Any) -> None:
        self._peer = peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def peer(self) -> Any:
        return self._peer

    def peer_identities(self) -> None:
        return None

    def time_remaining(self) -> None:
        return None


_METRICS = GatewayMetrics()
_INTERCEPTOR = interceptors.ObservabilityInterceptor(_METRICS, interceptors.InFlight())
_METHODS = {
    name: interceptors._Method(_METRICS, name, "unary")
    for name in (METHOD, "/grpc.health.v1.Health/Check", "/x.TokenService/Get")
}

# Texts of every kind a line may carry: trigger words in the spellings the redaction folds,
# characters JSON escapes (quotes, backslashes, control characters, U+2028), non-ASCII, lone
# surrogates (which a gRPC peer or user agent cannot hold, but a CI request id decoded with
# `surrogateescape` could).
_PIECES = st.sampled_from(
    [
        *("token", "TOKEN", "to\u212aen", "secret", "q-ak", "q-signature", "authorization"),
        *("akid", "ci-callback", "x-cos-security-token: abc", '"', "\\", "\n", "\x00", "\x7f"),
        *("\u2028", "\u0131", "\u017fecret", "ü", "\U0001f600", "\ud800", "\udfff", "ipv4:1"),
    ]
)
_ANY = st.characters(blacklist_categories=())  # surrogates included
_PLAIN = st.text(_ANY, max_size=16)
_TEXTS = st.one_of(
    _PLAIN, _PLAIN, _PLAIN, _PLAIN, st.lists(_PIECES | _ANY, max_size=8).map("".join)
)
# Texts or what `event` writes its own way.
_VALUES = _TEXTS | st.sampled_from([None, "", 0, 7, b"bytes"])


def _line_of(write: Any) -> str:
    """What `write()` writes under `configure("INFO", "json")`, at a frozen clock."""
    stream = io.StringIO()
    logs.configure("INFO", "json", stream=stream)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(time, "time", lambda: NOW)
            write()
    finally:
        logging.getLogger().handlers.clear()
    return stream.getvalue()


def _event_as_before(call: interceptors._Call, code: grpc.StatusCode, duration_ms: float) -> None:
    """The interceptor's `event` call before the prepared line: the old way."""
    scope = call.scope
    logs.event(
        interceptors.access_log,
        call._m.level,
        "rpc",
        grpc_method=call._m.full_method,
        grpc_code=code.name,
        duration_ms=duration_ms,
        peer=call._peer,
        client_identity=None,
        client=scope.client or None,
        user_agent=call.user_agent or None,
        ci_request_id=scope.ci_request_id or None,
        reason=scope.reason or None,
        attempts=scope.attempts,
    )


def _call(method: str, peer: Any, agent: str, scope_values: dict[str, Any]) -> interceptors._Call:
    call = interceptors._Call(_INTERCEPTOR, _METHODS[method], _Context(peer))  # type: ignore[arg-type]
    call.user_agent = agent
    for name, value in scope_values.items():
        setattr(call.scope, name, value)
    return call


def _written(call: interceptors._Call, in_scope: bool, write: Any) -> str:
    token = rpc_context.enter(call.scope) if in_scope else None
    try:
        return _line_of(write)
    finally:
        if token is not None:
            rpc_context.leave(token)


@settings(max_examples=400)  # a third of them take the prepared form
@given(
    code=st.sampled_from(list(grpc.StatusCode)),
    request_id=_TEXTS,
    peer=_TEXTS,
    agent=_TEXTS,
    client=_TEXTS,
    ci_request_id=_TEXTS,
    reason=_TEXTS,
    attempts=st.integers(min_value=0, max_value=10**6),
    duration_ms=st.floats(min_value=0, max_value=1e7).map(lambda x: round(x, 1)),
    in_scope=st.booleans(),
)
def test_the_prepared_line_is_json_dumps_of_the_lines_dict(
    code: grpc.StatusCode,
    request_id: str,
    peer: str,
    agent: str,
    client: str,
    ci_request_id: str,
    reason: str,
    attempts: int,
    duration_ms: float,
    in_scope: bool,
) -> None:
    """Any texts: the prepared line writes `json.dumps`'s bytes for the line's dict unless a
    text may hold a secret, and then leaves the line to `event`, which redacts it."""
    values = {"client": client, "ci_request_id": ci_request_id, "reason": reason}
    call = _call(METHOD, peer, agent, {"request_id": request_id, "attempts": attempts, **values})
    prepared = _written(call, in_scope, lambda: call._access_line(code, duration_ms))
    now = _written(call, in_scope, lambda: call.log_access(code, duration_ms))
    assert now == _written(call, in_scope, lambda: _event_as_before(call, code, duration_ms))
    texts = [peer, agent, client, ci_request_id, reason] + ([request_id] if in_scope else [])
    if may_hold_secrets("\n".join(texts)):
        assert prepared == ""
        return
    line: dict[str, Any] = {
        "ts": logs._UtcStamp()(NOW),
        "level": "INFO",
        "logger": "gateway.access",
        "msg": "rpc",
    }
    if in_scope:
        line["request_id"] = request_id
    line.update(
        grpc_method=METHOD,
        grpc_code=code.name,
        duration_ms=duration_ms,
        peer=peer,
        client_identity=None,
        client=client or None,
        user_agent=agent or None,
        ci_request_id=ci_request_id or None,
        reason=reason or None,
        attempts=attempts,
    )
    assert prepared == now == json.dumps(line, separators=(",", ":")) + "\n"


@given(
    method=st.sampled_from(sorted(_METHODS)),
    code=st.sampled_from(list(grpc.StatusCode)),
    peer=_VALUES,
    client=_VALUES,
    ci_request_id=_VALUES,
    reason=_VALUES,
    request_id=_VALUES,
    attempts=st.integers() | st.just(True),
    duration_ms=st.floats().map(lambda x: round(x, 1)),
    in_scope=st.booleans(),
)
def test_any_line_is_the_line_event_wrote(
    method: str,
    code: grpc.StatusCode,
    peer: Any,
    client: Any,
    ci_request_id: Any,
    reason: Any,
    request_id: Any,
    attempts: int,
    duration_ms: float,
    in_scope: bool,
) -> None:
    """Any values, of any type, any method (health's at DEBUG, not logged; a name that may
    hold a secret): the line is the one the interceptor's `event` call wrote before."""
    values = {"client": client, "ci_request_id": ci_request_id, "reason": reason}
    call = _call(method, peer, "agent", {"attempts": attempts, "request_id": request_id, **values})
    now = _written(call, in_scope, lambda: call.log_access(code, duration_ms))
    assert now == _written(call, in_scope, lambda: _event_as_before(call, code, duration_ms))


def test_an_ordinary_line_takes_the_prepared_form() -> None:
    """The property above compares something: an ordinary access line is the prepared one."""
    call = interceptors._Call(_INTERCEPTOR, _METHODS[METHOD], _Context("ipv4:127.0.0.1:5"))  # type: ignore[arg-type]
    call.user_agent = "grpc-python/1.66"
    written = _line_of(lambda: call._access_line(grpc.StatusCode.OK, 0.7))
    assert json.loads(written)["user_agent"] == "grpc-python/1.66"
    # A method whose name may hold a secret never does; nor a line at a level not logged.
    assert _METHODS["/x.TokenService/Get"].access is None
    health = interceptors._Call(
        _INTERCEPTOR,
        _METHODS["/grpc.health.v1.Health/Check"],
        _Context("ipv4:127.0.0.1:5"),  # type: ignore[arg-type]
    )
    assert _line_of(lambda: health._access_line(grpc.StatusCode.OK, 0.7)) == ""


async def test_a_served_calls_line_is_json_dumps_and_redacted(
    ops_gateway: RunningGateway,
) -> None:
    """A real gateway with `configure`'s handler the sole one (as `ci-gateway serve` runs):
    each access line is the line's dict as `json.dumps` writes it, and a user agent holding a
    credential-shaped text is still redacted."""
    stream = io.StringIO()
    logs.configure("INFO", "json", stream=stream)
    agent = 'probe "quoted" \\ x-cos-security-token: abc123'
    target = ops_gateway.address
    options = [("grpc.primary_user_agent", agent)]
    try:
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            request = media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object="a.mp4"))
            await stub.SubmitMediaJob(service_pb2.SubmitMediaJobRequest(request=request))
        async with grpc.aio.insecure_channel(target) as channel:
            stub = service_pb2_grpc.MediaJobServiceStub(channel)
            await stub.SubmitMediaJob(service_pb2.SubmitMediaJobRequest(request=request))
    finally:
        logging.getLogger().handlers.clear()
    texts = [t for t in stream.getvalue().splitlines() if '"logger":"gateway.access"' in t]
    assert len(texts) == 2
    lines = [json.loads(text) for text in texts]
    for text, line in zip(texts, lines, strict=True):
        assert text == json.dumps(line, separators=(",", ":"))
        assert line["grpc_code"] == "OK" and line["attempts"] == 1
    assert lines[0]["user_agent"].startswith(f'probe "quoted" \\ x-cos-security-token: {REDACTED}')
    assert "abc123" not in stream.getvalue()
    assert lines[1]["user_agent"].startswith("grpc-python")
