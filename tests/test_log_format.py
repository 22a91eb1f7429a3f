"""The JSON formatter's fast paths write exactly what the plain ones did: the timestamp of
`datetime.isoformat`, and every text field redacted whenever any one may hold a secret."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from grpc._cython.cygrpc import ExecuteBatchError  # type: ignore[import-not-found]
from hypothesis import given
from hypothesis import strategies as st

from gateway import logs, rpc_context
from gateway.logs import JsonFormatter, TextFormatter, _UtcStamp
from gateway.scrub import REDACTED, may_hold_secrets
from tests.fixtures.logs import rendered

# `logs.configure` sets process-wide logging state: conftest's `logging_restored` gives the
# other tests theirs back.
pytestmark = pytest.mark.usefixtures("logging_restored")

# Rounding edges: a fraction that rounds up into the next second, and milliseconds' borders.
EDGES = [1_700_000_000.9999996, 1_700_000_000.9999994, 1_700_000_000.0005, 1_700_000_000.0004999]


def expected(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


@given(st.floats(min_value=0, max_value=4e9) | st.sampled_from(EDGES))
def test_the_cached_stamp_is_datetimes(created: float) -> None:
    assert _UtcStamp()(created) == expected(created)


def test_one_stamp_across_seconds_and_back() -> None:
    stamp = _UtcStamp()
    for created in (100.25, 100.75, 101.0, 99.5, 100.999):
        assert stamp(created) == expected(created)


def record(message: str, **fields: object) -> logging.LogRecord:
    made = logging.LogRecord("gateway.access", logging.INFO, __file__, 1, message, (), None)
    made.fields = fields
    return made


# Text that may or may not hold a trigger word, spelled in every way lower-casing can reach it
# (`\u212a` is Kelvin's K, `\u0130` a dotted capital I, `\u0131` a dotless i, `\u017f` a long
# s: `scrub.RE_FOLDED`), with characters JSON escapes.
_PIECES = st.sampled_from(
    [
        *("token", "TOKEN", "to\u212aen", "secret", "q-ak", "q-signature", "authorization"),
        *("akid", "A\u212aID", "ci-callback", "\u0130", "\u212a", "\u017f", '"', "\\", "\n"),
        *("\x00", "\u2028", "\u0131", "\u017fecret", "author\u0131zation", "se\u017fsion"),
    ]
)
_TEXTS = st.lists(_PIECES | st.characters(), max_size=12).map("".join)


@given(st.dictionaries(_TEXTS, _TEXTS | st.integers() | st.none(), max_size=4), _TEXTS)
def test_a_line_surely_free_of_secrets_has_no_text_that_may_hold_one(
    fields: dict[str, object], message: str
) -> None:
    """The one look at the written line (`_surely_no_secret`) never lets through a line whose
    texts the look over each (`may_hold_secrets`) would have redacted."""
    line: dict[str, object] = {"ts": "2026-01-01T00:00:00.000+00:00", "level": "INFO"}
    line.update(logger="x", msg=message)
    line.update(fields)
    texts = [
        v for k, v in line.items() if k not in ("ts", "level", "logger") and isinstance(v, str)
    ]
    if logs._surely_no_secret(logs._encode(line)):
        assert not may_hold_secrets("\n".join(texts))


def test_a_line_with_no_secret_is_written_as_is() -> None:
    line = json.loads(JsonFormatter().format(record("rpc", peer="ipv4:127.0.0.1:1", attempts=1)))
    assert (line["msg"], line["peer"], line["attempts"]) == ("rpc", "ipv4:127.0.0.1:1", 1)


def test_every_text_field_is_redacted_when_one_may_hold_a_secret() -> None:
    formatted = JsonFormatter().format(
        record(
            "upstream said: Authorization: q-sign-algorithm=sha1&q-ak=AKIDabcdefgh12345678",
            user_agent="x-cos-security-token: abc123",
            peer="ipv4:127.0.0.1:1",
            identities=["token=kept-as-before"],  # not a text: never redacted, as before
        )
    )
    line = json.loads(formatted)
    assert "AKIDabcdefgh12345678" not in formatted and REDACTED in line["msg"]
    assert line["user_agent"] == f"x-cos-security-token: {REDACTED}"
    assert line["peer"] == "ipv4:127.0.0.1:1"
    assert line["identities"] == ["token=kept-as-before"]
    assert line["logger"] == "gateway.access"


def _lines_of(fields: dict[str, object], *, through_logging: bool) -> str:
    """What `event` writes under `configure("INFO", "json")`, by its direct path or (a filter
    on the logger rules the direct path out) through logging's."""
    stream = io.StringIO()
    logs.configure("INFO", "json", stream=stream)
    logger = logging.getLogger("gateway.access")
    keep_all = logging.Filter()
    if through_logging:
        logger.addFilter(keep_all)
    try:
        logs.event(logger, logging.INFO, "rpc", **fields)
        logs.event(logger, logging.DEBUG, "not written", **fields)
    finally:
        logger.removeFilter(keep_all)
        logging.getLogger().handlers.clear()
    return stream.getvalue()


@pytest.mark.parametrize(
    "fields",
    [
        {"grpc_code": "OK", "duration_ms": 0.3, "client_identity": None, "attempts": 1},
        {"peer": "x-cos-security-token: abc123", "ts": "not ours", "msg": "nor this"},
        {"reason": "Authorization: q-sign-algorithm=sha1&q-ak=AKIDabcdefgh12345678"},
        {"identities": ["token=kept-as-before"], "user_agent": 'ü \u2028 "quoted"'},
    ],
)
def test_event_writes_the_same_bytes_with_or_without_a_log_record(
    fields: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.1234)
    scope = rpc_context.RpcScope(method="/x/Y", request_id="rid-1")
    token = rpc_context.enter(scope)
    try:
        direct = _lines_of(fields, through_logging=False)
        logged = _lines_of(fields, through_logging=True)
    finally:
        rpc_context.leave(token)
    assert direct == logged
    assert direct.count("\n") == 1 and "AKIDabcdefgh12345678" not in direct
    assert json.loads(direct)["request_id"] == "rid-1"


@pytest.mark.parametrize(
    "value",
    ["\x1b[2J\x1b[31mred", "a\x07b", "a\u202eb", "x\x00y"],
    ids=["escape-sequence", "bell", "bidi-override", "nul"],
)
def test_the_text_format_shows_no_unprintable_character_of_a_field(value: str) -> None:
    """A field carries what a caller sent (user agent, request id): raw, an escape sequence
    would act on the operator's terminal. Quoted as JSON, it is escaped."""
    with rendered(TextFormatter(), "gateway.access", logging.INFO) as stream:
        logs.event(logging.getLogger("gateway.access"), logging.INFO, "rpc", user_agent=value)
    line = stream.getvalue()
    assert f"user_agent={json.dumps(value)}" in line
    assert all(c.isprintable() for c in line.rstrip("\n"))


# ---- grpc's lines about clients gone mid-send ----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def grpc_core() -> Iterator[logging.Logger]:
    """grpc's own logger, without the filter `configure` leaves on it once the test is over."""
    core = logging.getLogger(logs.GRPC_CORE_LOGGER)
    saved = list(core.filters)
    yield core
    core.filters[:] = saved


def grpc_logs_a_failed_send(core: logging.Logger, method: str) -> None:
    """What grpc's `_handle_exceptions` logs when a write fails as its client cancels."""
    try:
        raise ExecuteBatchError('Failed "execute_batch": (<SendMessageOperation at 0x1>,)')
    except ExecuteBatchError:
        core.exception("ExecuteBatchError raised in core by servicer method [%s]" % method)  # noqa: UP031


def test_grpc_failing_to_send_to_a_client_gone_is_a_short_rate_limited_warning(
    grpc_core: logging.Logger,
) -> None:
    stream, clock = io.StringIO(), Clock()
    logs.configure("INFO", "json", stream=stream, clock=clock)
    method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    for _ in range(13):
        grpc_logs_a_failed_send(grpc_core, method)
    clock.now += 60.0
    grpc_logs_a_failed_send(grpc_core, method)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    # Ten, the notice that the rest are counted, the count of the three suppressed, and the
    # next window's first.
    assert len(lines) == 13
    assert all(line["level"] == "WARNING" and "exc" not in line for line in lines)
    assert all(line["logger"] == logs.GRPC_CORE_LOGGER for line in lines)
    assert lines[0]["msg"] == (
        f"ExecuteBatchError raised in core by servicer method [{method}]: the client most likely"
        " cancelled or left mid-send (ExecuteBatchError)"
    )
    assert lines[10]["msg"] == (
        "grpc sends to clients gone mid-stream: more than 10 lines in 60 s; the rest are "
        "counted, not logged, until a line comes after the window"
    )
    assert lines[11]["msg"] == (
        "grpc sends to clients gone mid-stream: 3 more suppressed (at most 10 lines per 60 s)"
    )
    assert lines[12]["msg"] == lines[0]["msg"]
    assert "Traceback" not in stream.getvalue()


def test_grpc_errors_of_other_kinds_keep_their_level_and_traceback(
    grpc_core: logging.Logger,
) -> None:
    stream = io.StringIO()
    logs.configure("INFO", "json", stream=stream)
    logs.configure("INFO", "json", stream=stream)  # again: one filter, not two
    assert len(grpc_core.filters) == 1
    try:
        raise ValueError("a servicer's bug")
    except ValueError:
        grpc_core.exception("Unexpected [ValueError] raised by servicer method [/a.B/C]")
    (line,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert line["level"] == "ERROR" and "ValueError: a servicer's bug" in line["exc"]
