"""Log output: one line per event, JSON for machines or text for people, never a secret.

`configure` installs one stderr handler on the root logger with either formatter. Structured
fields travel in `extra={"fields": {...}}` (see `event`), so the message stays a fixed, greppable
string and the values stay typed; every line logged inside an RPC also carries that RPC's
`request_id` (from `gateway.rpc_context`). Nothing here reads credentials: secrets are kept out
of logs by never passing them to a logger, and the formatters add only the record's own fields.
Text that came from elsewhere (CI's errors, a library's exception) may still echo one, so both
formatters pass every line through `gateway.scrub.redact` as well.

`AttemptLog` is the `gateway.telemetry.Telemetry` sink that logs each upstream attempt at DEBUG
(and counts it on the current RPC's scope, for the access log's `attempts`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from gateway import rpc_context
from gateway.scrub import redact

ACCESS_LOGGER = "gateway.access"
UPSTREAM_LOGGER = "gateway.upstream.attempts"

_FIELDS = "fields"


def event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log `message` with structured `fields` (rendered as JSON keys or `key=value`)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={_FIELDS: fields})


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    scope = rpc_context.current()
    if scope is not None:
        fields["request_id"] = scope.request_id
    given = record.__dict__.get(_FIELDS)
    if isinstance(given, Mapping):
        fields.update(given)
    return fields


class JsonFormatter(logging.Formatter):
    """`{"ts": ..., "level": ..., "logger": ..., "msg": ..., <fields>}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in _fields_of(record).items():
            line.setdefault(key, redact(value) if isinstance(value, str) else value)
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger>: <message> key=value ...` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        pairs = " ".join(f"{key}={_text_value(value)}" for key, value in _fields_of(record).items())
        if not pairs:
            return redact(text)
        head, sep, tail = text.partition("\n")  # keep a traceback below the fields
        return redact(f"{head} {pairs}{sep}{tail}")


def _text_value(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text


def configure(level: str, fmt: str, *, stream: TextIO | None = None) -> None:
    """Route every logger to one stderr handler in `fmt` (`json` or `text`)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log would duplicate ours on the ops port; its errors still show.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class AttemptLog:
    """Telemetry sink: counts attempts on the current RPC and logs each one at DEBUG."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger(UPSTREAM_LOGGER)

    def attempt_started(self, operation: str) -> None:
        scope = rpc_context.current()
        if scope is not None:
            scope.attempts += 1

    def attempt_finished(self, operation: str, outcome: str, seconds: float) -> None:
        scope = rpc_context.current()
        event(
            self._log,
            logging.DEBUG,
            "upstream attempt",
            operation=operation,
            outcome=outcome,
            duration_ms=round(seconds * 1000, 1),
            attempt=scope.attempts if scope is not None else None,
        )

    def retry_scheduled(self, operation: str, reason: str, delay_s: float) -> None:
        event(
            self._log,
            logging.INFO,
            "upstream retry scheduled",
            operation=operation,
            reason=reason,
            delay_ms=round(delay_s * 1000, 1),
        )
