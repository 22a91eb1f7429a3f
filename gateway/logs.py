"""Log output: one line per event, JSON for machines or text for people, never a secret.

`configure` installs one stderr handler on the root logger with either formatter. Structured
fields travel in `extra={"fields": {...}}` (see `event`), so the message stays a fixed, greppable
string and the values stay typed; every line logged inside an RPC also carries that RPC's
`request_id` (from `gateway.rpc_context`). Nothing here reads credentials: secrets are kept out
of logs by never passing them to a logger, and the formatters add only the record's own fields.
Text that came from elsewhere (CI's errors, a library's exception) may still echo one, so both
formatters pass every line through `gateway.scrub.redact` as well.

`configure` also turns grpc's ERROR-with-traceback about a stream its client left mid-send into
one short, rate-limited WARNING (`_ClientGoneMidSend`): any caller can cause it at will.

`AttemptLog` is the `gateway.telemetry.Telemetry` sink that logs each upstream attempt at DEBUG
(and counts it on the current RPC's scope, for the access log's `attempts`).
"""

from __future__ import annotations

import contextlib
import json
import json.encoder
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

from gateway import rpc_context
from gateway._log_budget import OutsiderLines
from gateway.scrub import RE_FOLDED, may_hold_secrets, redact

ACCESS_LOGGER = "gateway.access"
UPSTREAM_LOGGER = "gateway.upstream.attempts"
# Where grpc's aio server logs what goes wrong around a servicer (its Cython core).
GRPC_CORE_LOGGER = "grpc._cython.cygrpc"

_FIELDS = "fields"


def event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log `message` with structured `fields` (rendered as JSON keys or `key=value`)."""
    if logger.isEnabledFor(level):
        lines = _sole_json_lines(logger)
        if lines is not None:
            lines.write_event(level, logger.name, message, fields)
        else:
            logger.log(level, message, extra={_FIELDS: fields})


def _sole_json_lines(logger: logging.Logger) -> JsonLines | None:
    """The handler `configure` installed, when it is the only one `logger`'s records reach and
    nothing could filter or alter them on the way: then `event` hands it the line itself,
    without a `LogRecord` and logging's dispatch (a third of an access line's cost). Any
    other set-up (a handler or filter added, as tests and embedders do) takes logging's path."""
    if logger.disabled:
        return None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        if current.handlers:
            handlers = current.handlers
            if len(handlers) != 1 or current.parent is not None:
                return None
            handler = handlers[0]
            if (
                type(handler) is not JsonLines
                or handler.filters
                or handler.formatter is not handler.json
            ):
                return None
            return handler
        if not current.propagate:
            return None
        current = current.parent
    return None


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    scope = rpc_context.current()
    if scope is not None:
        fields["request_id"] = scope.request_id
    given = record.__dict__.get(_FIELDS)
    if isinstance(given, Mapping):
        fields.update(given)
    return fields


class _UtcStamp:
    """`datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")`, with the date and
    time of day formatted once per second rather than once per line (every RPC logs one)."""

    def __init__(self) -> None:
        self._cached: tuple[int, str] = (-1, "")  # replaced whole: threads log too

    def __call__(self, created: float) -> str:
        # As datetime does: the fraction rounded half-even to microseconds, then cut to ms.
        fraction, whole = math.modf(created)
        micro = round(fraction * 1_000_000)
        second = int(whole)
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        cached = self._cached
        if cached[0] != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            cached = self._cached = (second, text)
        millis = micro // 1000
        if millis < 0:  # before 1970: as datetime's own text would read
            return f"{cached[1]}.{millis:03d}+00:00"
        return cached[1] + _MILLIS[millis]


# The tail of a stamp for each millisecond: one lookup, not a formatted integer, per line.
_MILLIS = tuple(f".{millis:03d}+00:00" for millis in range(1000))

# What a handler without a lock (`lock` set to None) holds while it writes: nothing.
_UNLOCKED = contextlib.nullcontext()

# The line's own keys: never redacted (no text from elsewhere can be in them).
_OWN_KEYS = frozenset({"ts", "level", "logger"})
# How an ASCII-only JSON encoder writes the non-ASCII characters a trigger may be spelled with.
_FOLDED_ESCAPES = tuple(f"\\u{ord(c):04x}" for c in RE_FOLDED)
# The keys every line starts with: a field of the same name is left out.
_HEAD_KEYS = _OWN_KEYS | {"msg"}
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
# What `_ENCODER.encode` ends in for a dict (None where the C accelerator is missing).
_C_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)


def _encode(line: dict[str, Any]) -> str:
    """`_ENCODER.encode(line)`, without the Python steps on its way to the C encoder (a closure
    and a configuration check per call): the same encoder, made afresh as each call makes it."""
    if _C_MAKE_ENCODER is None:
        return _ENCODER.encode(line)
    e = _ENCODER
    encoder = _C_MAKE_ENCODER(
        {}, e.default, encode_basestring_ascii, None,
        e.key_separator, e.item_separator, e.sort_keys, e.skipkeys, e.allow_nan,
    )  # fmt: skip
    return "".join(encoder(line, 0))


def _surely_no_secret(encoded: str) -> bool:
    """Whether no text of the line JSON `encoded` can hold a secret: then `may_hold_secrets`
    is False for the texts themselves, and this one look at the line replaces picking them
    out and joining them (the ordinary access line's case, every RPC).

    Why it is safe: each trigger word is lower-case ASCII letters and `-`. A text holds one
    only through characters `may_hold_secrets` reads as those: ASCII letters and `-`, which
    JSON writes as they are, or the few others of `scrub.RE_FOLDED`, which an ASCII-only
    encoder writes as `\\u` escapes (`_FOLDED_ESCAPES`). So a line free of triggers and of
    those escapes has no trigger in any of its texts. A trigger in a key or another value only
    sends the line the longer way, which decides as before."""
    if may_hold_secrets(encoded):
        return False
    return "\\u" not in encoded or not any(e in encoded for e in _FOLDED_ESCAPES)


class JsonFormatter(logging.Formatter):
    """`{"ts": ..., "level": ..., "logger": ..., "msg": ..., <fields>}` on one line."""

    def __init__(self) -> None:
        super().__init__()
        self.stamp = _UtcStamp()

    def format(self, record: logging.LogRecord) -> str:
        exc = self.formatException(record.exc_info) if record.exc_info else None
        return self.render(
            record.created, record.levelname, record.name, record.getMessage(),
            _fields_of(record), exc,
        )  # fmt: skip

    def render(
        self,
        created: float,
        level_name: str,
        logger_name: str,
        message: str,
        fields: Mapping[str, Any],
        exc: str | None = None,
    ) -> str:
        """The line of a record with these parts (`format`'s, and `JsonLines.write_event`'s)."""
        line = self.head(created, level_name, logger_name, message)
        for key, value in fields.items():
            line.setdefault(key, value)
        if exc:
            line["exc"] = exc
        return self.finish(line)

    def head(
        self, created: float, level_name: str, logger_name: str, message: str
    ) -> dict[str, Any]:
        """The keys every line starts with (`_HEAD_KEYS`), in their order."""
        return {
            "ts": self.stamp(created),
            "level": level_name,
            "logger": logger_name,
            "msg": message,
        }

    @staticmethod
    def finish(line: dict[str, Any]) -> str:
        """`line` (a `head` and its fields) as JSON. Every text but the line's own keys is
        redacted; one look over all of them at once finds out whether any needs it (the
        ordinary access-log line: none does), and first one look at the line as written."""
        encoded = _encode(line)
        if _surely_no_secret(encoded):
            return encoded
        texts = [v for k, v in line.items() if k not in _OWN_KEYS and isinstance(v, str)]
        if not may_hold_secrets("\n".join(texts)):
            return encoded
        for key, value in line.items():
            if key not in _OWN_KEYS and isinstance(value, str):
                line[key] = redact(value)
        return _encode(line)


class JsonLines(logging.StreamHandler):  # type: ignore[type-arg]
    """The JSON handler `configure` installs: a `StreamHandler` with a `JsonFormatter`, which
    `event` may also give a line's parts directly (see `_sole_json_lines`)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.json = JsonFormatter()
        self.setFormatter(self.json)

    def write_event(
        self, level: int, logger_name: str, message: str, given: Mapping[str, Any]
    ) -> None:
        """What `logger.log(level, message, extra={"fields": given})` would have written
        through this handler: the same line (`JsonFormatter.render`), the same lock, the
        same write and flush, errors reported as `emit` reports them."""
        if level < self.level:
            return
        created = time.time()  # as `LogRecord` reads it
        scope = rpc_context.current()
        # `self.acquire()` and `release()`, without their two calls.
        with self.lock or _UNLOCKED:
            try:
                json_ = self.json
                if _HEAD_KEYS.isdisjoint(given):
                    # `render`'s line, built in place: the scope's id, then the fields in
                    # their order (a field `request_id` takes the id's place, as `update` does).
                    line = json_.head(created, logging.getLevelName(level), logger_name, message)
                    if scope is not None:
                        line["request_id"] = scope.request_id
                    line.update(given)
                    text = json_.finish(line)
                else:
                    fields: dict[str, Any] = {}
                    if scope is not None:
                        fields["request_id"] = scope.request_id
                    fields.update(given)
                    text = json_.render(
                        created, logging.getLevelName(level), logger_name, message, fields
                    )
                self._write_locked(text)
            except RecursionError:
                raise
            except Exception:
                self._report(level, logger_name, message)

    def _write_locked(self, text: str) -> None:
        stream = self.stream
        stream.write(text + self.terminator)
        stream.flush()  # `self.flush()` would take the lock held here a second time

    def _report(self, level: int, logger_name: str, message: str) -> None:
        """A line failed: reported as `emit` reports its errors."""
        self.handleError(logging.LogRecord(logger_name, level, "", 0, message, None, None))


class PreparedLine:
    """Lines of one logger, level and message whose fields their caller writes as JSON itself
    (`write`), when the line's fields are the same keys every time and their values plain:
    what `event(logger, level, message, **fields)` writes, byte for byte, without a dict built
    for the fields and encoded whole. The line's head (level, logger, message) is encoded once
    here. The access line, every RPC, spent ~70k of its ~95k instructions in those steps.

    A line that may hold a secret is not written here (`write` says so): its caller logs it
    through `event`, which redacts it. So is every line while `configure`'s JSON handler is not
    the sole one (`handler`), as `event` then takes logging's path."""

    def __init__(self, logger: logging.Logger, level: int, message: str) -> None:
        self.logger = logger
        self.level = level
        level_name = logging.getLevelName(level)
        # `JsonFormatter.head`'s keys after "ts", as the encoder writes them.
        self._head = (
            f',"level":{encode_basestring_ascii(level_name)}'
            f',"logger":{encode_basestring_ascii(logger.name)}'
            f',"msg":{encode_basestring_ascii(message)}'
        )
        self._message = message
        # The message is one of the line's texts the redaction looks at (the rest: `write`).
        self._plain = not may_hold_secrets(message)

    def handler(self) -> JsonLines | None:
        """The handler to `write` to now, or None when the line must go through `event`: the
        logger not enabled for the level, `configure`'s handler not the sole one, the message
        one the redaction must look at."""
        if not self._plain or not self.logger.isEnabledFor(self.level):
            return None
        lines = _sole_json_lines(self.logger)
        if lines is None or self.level < lines.level:
            return None
        return lines

    def write(self, lines: JsonLines, fields: str, texts: str) -> bool:
        """Write the line to `lines` (`handler`'s), its fields encoded as `fields`: `,"key":value`
        for each, in their order, as `json.dumps` writes them, no key one of the head's or
        `request_id`. `texts`: every text value of `fields` the redaction looks at (each but
        the line's own keys'), joined by newlines. False, nothing written, when the request id
        or one of `texts` may hold a secret (or the id is no text): then `event` must write the
        line, redacted. The level's name is the one it had when the line was prepared."""
        created = time.time()  # as `write_event` reads it
        scope = rpc_context.current()
        if scope is not None:
            request_id = scope.request_id
            if type(request_id) is not str or may_hold_secrets(texts + "\n" + request_id):
                return False
        elif may_hold_secrets(texts):
            return False
        with lines.lock or _UNLOCKED:
            try:
                stamp = encode_basestring_ascii(lines.json.stamp(created))
                if scope is not None:
                    text = (
                        f'{{"ts":{stamp}{self._head},"request_id":'
                        f"{encode_basestring_ascii(request_id)}{fields}}}"
                    )
                else:
                    text = f'{{"ts":{stamp}{self._head}{fields}}}'
                lines._write_locked(text)
            except RecursionError:
                raise
            except Exception:
                lines._report(self.level, self.logger.name, self._message)
        return True


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
    """A field's value as `key=value` shows it: quoted (JSON, so escaped) when it is empty, holds
    a space, a quote or `=` (which would let a caller's value forge fields), or any character
    that is not printable (a terminal escape sequence in a user agent would recolour or rewrite
    the operator's screen)."""
    text = str(value)
    if not text or any(c.isspace() or c in '"=' or not c.isprintable() for c in text):
        return json.dumps(text)
    return text


def configure(
    level: str,
    fmt: str,
    *,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Route every logger to one stderr handler in `fmt` (`json` or `text`). `clock` paces the
    lines outsiders can cause (`_ClientGoneMidSend`)."""
    handler: logging.Handler
    if fmt == "json":
        handler = JsonLines(stream or sys.stderr)
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Where a record was logged from, and its thread and process, are in no line either
    # formatter writes: skip looking them up for every record (the Logging HOWTO's
    # "Optimization"), which an access-log line per RPC would otherwise pay.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # aiohttp's access log would duplicate ours on the ops port; its errors still show.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # A logger's filters see only the records logged on it, not its children's: on the very
    # logger grpc uses.
    _ClientGoneMidSend(logging.getLogger(GRPC_CORE_LOGGER), clock=clock).install()


class _ClientGoneMidSend(OutsiderLines):
    """grpc's `ExecuteBatchError` records as one WARNING line each, without the traceback, within
    the default budget.

    grpc's aio server logs "ExecuteBatchError raised in core by servicer method [...]" at ERROR
    with a traceback when a write of a streaming RPC fails in grpc's core because the client
    cancelled (or dropped the connection) while the server was sending. grpc means to ignore
    that case (`_handle_exceptions` returns quietly when `rpc_state.client_closed`), but the
    flag is set by another task, woken by the same cancellation, which may run after the
    handler's: a race. Reproduced against `ci-gateway serve` with server reflection's stream
    and clients cancelling while it sent (about one in a thousand cancellations in some runs,
    none in others, on both event loops); any RPC whose send meets a cancellation can hit it.
    Nothing is wrong with the gateway, and any caller can repeat it at will, so it is no ERROR
    and no traceback. grpc's one other record with that exception, "Failed sending error status
    from server" (after a servicer's own error, which keeps its traceback), is a send to a
    client gone too.

    Matched by the exception's class name: it is grpc's private Cython class, and only
    `service`, `server` and `errors` import grpc."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float]) -> None:
        super().__init__(logger, "grpc sends to clients gone mid-stream", clock=clock)

    def line(
        self, record: logging.LogRecord, error: BaseException
    ) -> tuple[str, tuple[object, ...]] | None:
        if type(error).__name__ != "ExecuteBatchError":
            return None
        return "%s: the client most likely cancelled or left mid-send (%s)", (
            record.getMessage(),
            type(error).__name__,
        )


class AttemptLog:
    """Telemetry sink: counts attempts on the current RPC and logs each one at DEBUG."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger(UPSTREAM_LOGGER)

    def attempt_started(self, operation: str) -> None:
        scope = rpc_context.current()
        if scope is not None:
            scope.attempts += 1

    def attempt_finished(self, operation: str, outcome: str, seconds: float) -> None:
        if not self._log.isEnabledFor(logging.DEBUG):
            return  # before the fields are worked out: every attempt comes here
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
