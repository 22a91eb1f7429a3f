"""The JSON formatter's fast paths write exactly what the plain ones did: the timestamp of
`datetime.isoformat`, and every text field redacted whenever any one may hold a secret."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.logs import JsonFormatter, _UtcStamp
from gateway.scrub import REDACTED

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
