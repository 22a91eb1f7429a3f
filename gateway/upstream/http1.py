"""One HTTP/1.1 connection towards CI: an asyncio `Protocol` that writes a request and reads
its answer with `httptools` (llhttp, the C parser uvicorn and Node.js use), for `transport`.

Why not aiohttp's client: inside the gateway a bare aiohttp request cost ~195 µs of CPU per
call (bench/README, "Where the CPU goes"), most of it machinery the gateway never uses (cookie
jars, redirects, tracing signals, streamed readers, timeout objects). Here an exchange is one
`transport.write`, one future, one `loop.call_at` timer (cancelled when the answer is in:
~1 µs, where `asyncio.timeout` costs ~3 and 3.11's `wait_for` ~5, a task each) and the parser's
callbacks. `python -m bench.transport`: ~20 µs of client CPU per request, aiohttp's ~85. Framing
and hostile input (bad status lines, conflicting lengths, chunk syntax) are llhttp's, which is
fuzzed and kept by others, not a parser of our own.

What an answer may not do, and what it becomes (`transport` maps nothing else):

    head over MAX_HEAD_BYTES / MAX_HEADERS,        TransportError(sent=True): no answer could
    not HTTP, bad chunks, chunk framing (size       be read, so CI's outcome is unknown (the
    lines, extensions, trailers) over its budget,   exactly-once submit reconciles)
    101 Switching Protocols
    closed before its first byte                    TransportError("... before answering")
    closed before its end                           TransportError("... cut short")
    a body over max_body_bytes (on the wire or      UpstreamProtocolError(http_status): an
    decoded), a coding we do not read, or two       answer that came, refused (as before)
    stacked (Content- or Transfer-Encoding)
    a compressed body that does not decompress      TransportError(sent=True): unreadable
    no answer by the exchange's deadline            UpstreamTimeout(sent=True)

(An UpstreamProtocolError on a 2xx still counts as "CI may have acted" for the exactly-once
submit: `gateway.jobs.exactly_once.is_ambiguous`.)

Every message is fixed text: nothing of the request (its headers hold a signature and maybe an
STS token) or of the answer is echoed.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import GatewayError, TransportError, UpstreamProtocolError, UpstreamTimeout

MAX_HEAD_BYTES: Final = 64 * 1024
"""Status lines and headers of one exchange together (interim 1xx answers included), counted
as bytes arrive: a peer sending endless headers is refused at this size, not buffered."""

MAX_HEADERS: Final = 128
"""Header fields of one answer; CI sends about a dozen."""

MAX_FRAMING_BYTES: Final = 128 * 1024
"""Chunk framing (size lines, extensions, trailers) of one answer, plus
FRAMING_BYTES_PER_BODY_BYTE per body byte, counted as bytes arrive. llhttp bounds none of a
chunk-size line (leading zeros), a chunk extension or a trailer field (which httptools buffers
whole): without a budget a peer could stream them until the deadline while the body stays
empty. Exceeding it is refused as framing that is not valid HTTP."""

FRAMING_BYTES_PER_BODY_BYTE: Final = 8
"""One-byte chunks cost 5 bytes of framing each (`1\\r\\n` and `\\r\\n`): even the most
fragmented plain chunking fits, whatever the body's size."""

_NOT_HTTP: Final = "CI's answer was not valid HTTP"
_CUT_SHORT: Final = "CI's answer was cut short"
_NO_ANSWER: Final = "CI closed the connection before answering"
_UNUSED_LOST: Final = "CI closed the connection before it was used"


@dataclass(slots=True, unsafe_hash=True)
class HttpResponse:
    """A complete answer: its headers read case-insensitively (`headers.get("retry-after")`),
    its body whole, decompressed and at most `max_body_bytes`."""

    # Read-only by type (`Final`), not `frozen=True`: a frozen dataclass sets each field through
    # `object.__setattr__`, ~3x the cost of building a plain one, and every answer builds one.
    # `unsafe_hash` keeps the hash the frozen class had.
    status: Final[int]
    reason: Final[str]
    headers: Final[CIMultiDictProxy[str]]
    body: Final[bytes]


Key = tuple[str, str, int, str]
"""What a pooled connection may be reused for: (scheme, host, port) of its origin and the
`host:port` of the proxy it is tunnelled through ("" when direct)."""


class _Refused(Exception):
    """Raised from a parser callback to stop llhttp; the error itself is in `_failure`."""


_DECODED: Final = frozenset({"gzip", "x-gzip", "deflate"})
"""The codings read (never asked for: see `transport`); any other is refused."""


def _decoder(coding: str) -> zlib._Decompress:
    """A decompressor for one of `_DECODED`. `deflate` is read zlib-wrapped, as the RFC
    defines it (or gzip-wrapped); a raw deflate stream does not decompress and is refused as
    such."""
    if coding == "deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib or gzip header, detected
    return zlib.decompressobj(16 + zlib.MAX_WBITS)


def _chunked(transfer_lines: Sequence[str]) -> bool:
    """Whether llhttp frames the body in chunks: when the last Transfer-Encoding line ends in
    `chunked` (RFC 9112 §6.3: chunked last). Measured with httptools 0.9.0's llhttp: lines
    `gzip` + `chunked` are chunked; `chunked` + `gzip`, `chunked,` or `chunked;x` are read to
    the close (the tests pin each case through the transport)."""
    return bool(transfer_lines) and (
        transfer_lines[-1].rpartition(",")[2].strip().lower() == "chunked"
    )


def _codings(lines: Sequence[str]) -> list[str]:
    """The codings of every line of one field, in the order applied: repeated lines are one
    list (RFC 9110 §5.3), empty elements and `identity` (no coding) are dropped."""
    codings = []
    for line in lines:
        for element in line.split(","):
            coding = element.strip().lower()
            if coding and coding != "identity":
                codings.append(coding)
    return codings


class Http1Connection(asyncio.Protocol):
    """One TCP (or TLS) connection, one exchange at a time. `transport.Transport` owns it:
    takes it from its pool, calls `exchange`, awaits the future, and puts it back only when
    `reusable` (a complete answer, keep-alive, nothing unsolicited after it)."""

    def __init__(self, key: Key, on_lost: Callable[[Http1Connection], None]):
        self.key = key
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.reusable = False
        self.idle_since = 0.0
        self.holds_slot = True
        self.in_pool = False
        self._lost_waiter: asyncio.Future[None] | None = None
        # The exchange in progress (None between exchanges).
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._max_body = 0
        self._head_request = False
        self._failure: GatewayError | None = None
        self._received = False
        self._read_bytes = 0  # of this exchange's answer (interim answers and head included)
        self._headers_done = False
        self._interim = False
        self._until_eof = False
        self._status = 0
        self._reason = ""
        self._fields: list[tuple[str, str]] = []
        self._headers: CIMultiDictProxy[str] | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._wire_size = 0
        self._decompress: zlib._Decompress | None = None

    # asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as `asyncio.Transport`, only duck-typed.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for, on an idle connection or after the answer: whatever they
            # are, the next exchange could not tell them from its own answer.
            self.reusable = False
            self._abort()
            return
        self._received = True
        read = self._read_bytes
        self._read_bytes = read + len(data)
        try:
            if self._headers_done:
                self._parser.feed_data(data)
            else:
                room = MAX_HEAD_BYTES - read
                if len(data) <= room:
                    self._parser.feed_data(data)
                else:
                    self._parser.feed_data(data[:room])
                    if not self._headers_done:
                        raise self._refuse(
                            TransportError("CI's answer headers are too large", sent=True)
                        )
                    self._parser.feed_data(data[room:])
            if self._headers_done and not waiter.done():
                # What is neither body nor head (at most MAX_HEAD_BYTES) is chunk framing.
                body = self._wire_size
                if self._read_bytes - body > (
                    MAX_HEAD_BYTES + MAX_FRAMING_BYTES + FRAMING_BYTES_PER_BODY_BYTE * body
                ):
                    raise self._refuse(TransportError(_NOT_HTTP, sent=True))
        except (_Refused, httptools.HttpParserCallbackError):
            self._fail(self._failure or TransportError(_NOT_HTTP, sent=True))
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if waiter.done():
                # Garbage after a complete answer: the answer stands, the connection does not.
                self.reusable = False
                self._abort()
            else:
                self._fail(TransportError(_NOT_HTTP, sent=True))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.reusable = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._until_eof and exc is None and self._failure is None:
                # A body delimited by the close, as HTTP/1.0 allows: complete, unless it was
                # compressed and its stream did not end.
                if self._unfinished_stream():
                    self._fail(self._undecodable())
                else:
                    self._complete()
            elif self._received:
                self._fail(TransportError(_CUT_SHORT, sent=True))
            else:
                self._fail(TransportError(_NO_ANSWER, sent=True))
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)
        self._on_lost(self)

    # The pool's side -----------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Known alive: no close, EOF or error seen (checked before every reuse, so a dead
        pooled connection is skipped while the request certainly has not left)."""
        transport = self.transport
        return not self.lost and transport is not None and not transport.is_closing()

    def exchange(
        self,
        payload: bytes,
        *,
        head_request: bool,
        max_body: int,
        deadline: float,
        loop: asyncio.AbstractEventLoop,
    ) -> asyncio.Future[HttpResponse]:
        """Write the whole request at once and return the future of its answer, failed with
        `UpstreamTimeout` at `deadline` (a timer handle, cancelled when the answer is in).

        On a connection already known closed, raise `TransportError(sent=False)` at once:
        nothing is written, so the request may be retried safely. Writing would not tell
        (asyncio drops the bytes and the exchange waits out its deadline; uvloop raises
        RuntimeError)."""
        if not self.usable:
            raise TransportError(_UNUSED_LOST, sent=False)
        assert self.transport is not None
        self.reusable = False
        self._head_request = head_request
        self._max_body = max_body
        self._failure = None
        self._received = False
        self._read_bytes = 0
        self._headers_done = False
        self._begin()
        waiter = self._waiter = loop.create_future()
        self._timer = loop.call_at(deadline, self._time_out)
        self.transport.write(payload)
        return waiter

    def abort(self) -> None:
        """Close at once (an error, a cancelled caller): the exchange, if any, is abandoned."""
        self.reusable = False
        self._abort()

    def close_idle(self) -> None:
        """Close an idle connection politely (FIN; a TLS close_notify), unless part of the
        request is still unwritten (CI answered early and reads no more): a polite close would
        wait to flush it for as long as CI keeps the connection, so it is aborted."""
        self.reusable = False
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size():
                self._abort()
            else:
                transport.close()

    async def wait_lost(self) -> None:
        if not self.lost:
            if self._lost_waiter is None:
                self._lost_waiter = asyncio.get_running_loop().create_future()
            await self._lost_waiter

    # httptools callbacks (one answer; interim 1xx answers reset it) -----------------------

    def on_message_begin(self) -> None:
        waiter = self._waiter
        if waiter is not None and waiter.done():
            # Another message after the answer: nothing asked for it, and it would become the
            # next exchange's "answer". The connection goes once this one is delivered.
            self.reusable = False

    # Reason and fields may hold any octet (obs-text): each one that is not UTF-8 becomes
    # U+FFFD. Never a lone surrogate, which every later encoding (a gRPC status message, a log
    # line) refuses: the answer must still map to an error.

    def on_status(self, status: bytes) -> None:
        self._reason = status.decode("utf-8", "replace")

    def on_header(self, name: bytes, value: bytes) -> None:
        fields = self._fields
        if len(fields) >= MAX_HEADERS:
            raise self._refuse(TransportError("CI's answer has too many headers", sent=True))
        fields.append((name.decode("utf-8", "replace"), value.decode("utf-8", "replace")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._interim = True  # 100 Continue, 103 Early Hints: skipped (101 raises Upgrade)
            return
        self._status = status
        self._headers_done = True
        headers = self._headers = CIMultiDictProxy(CIMultiDict(self._fields))
        if self._head_request:
            self._complete()
            raise self._refuse(None)  # a HEAD answer has no body, whatever its length says
        if status in (204, 304):
            return  # llhttp reads no body for these
        transfer_lines = headers.getall("Transfer-Encoding", ())
        chunked = _chunked(transfer_lines)
        length = headers.get("Content-Length")
        if length is not None:
            if int(length) > self._max_body:
                raise self._refuse(self._too_large())
        elif not chunked:
            # Neither length nor chunks: the body ends when CI closes (llhttp reads the same).
            self._until_eof = True
        content_lines = headers.getall("Content-Encoding", ())
        if transfer_lines or content_lines:
            self._decompress = self._decompressor(transfer_lines, chunked, content_lines)

    def _decompressor(
        self, transfer_lines: Sequence[str], chunked: bool, content_lines: Sequence[str]
    ) -> zlib._Decompress | None:
        """What undoes the body's codings once llhttp has undone the chunks: Content-Encoding
        first applied, then Transfer-Encoding's codings before `chunked` (or all of them when
        the body is read to the close). One coding at most: a body coded twice, or with a
        coding we do not read, is refused, never returned still coded as if plain."""
        transfer = _codings(transfer_lines)
        if chunked:
            transfer.pop()  # the framing, llhttp's
        content = _codings(content_lines)
        if not transfer and not content:
            return None
        status = self._status
        for field, codings in (("Transfer-Encoding", transfer), ("Content-Encoding", content)):
            if not _DECODED.issuperset(codings):
                raise self._refuse(
                    UpstreamProtocolError(
                        f"CI's answer has an unsupported {field}", http_status=status
                    )
                )
        if len(transfer) + len(content) > 1:
            raise self._refuse(
                UpstreamProtocolError(
                    "CI's answer is compressed more than once", http_status=status
                )
            )
        return _decoder((transfer or content)[0])

    def on_body(self, body: bytes) -> None:
        self._wire_size += len(body)
        if self._wire_size > self._max_body:
            raise self._refuse(self._too_large())
        decompress = self._decompress
        if decompress is not None:
            room = self._max_body - self._size
            try:
                # At most one byte past the limit: a bomb stops here, its rest never inflated.
                body = decompress.decompress(body, room + 1)
            except zlib.error:
                raise self._refuse(self._undecodable()) from None
            if decompress.unconsumed_tail:
                raise self._refuse(self._too_large())
        self._size += len(body)
        if self._size > self._max_body:
            raise self._refuse(self._too_large())
        if body:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._begin()  # the real answer follows on the same connection
            return
        if self._unfinished_stream():
            raise self._refuse(self._undecodable())
        transport = self.transport
        self.reusable = (
            not self._until_eof
            and not self._head_request
            and self._parser.should_keep_alive()
            # An answer before the whole request was written (a 413 on a large body): the rest
            # would reach CI as the start of the next request.
            and transport is not None
            and not transport.get_write_buffer_size()
        )
        self._complete()

    # Internals ----------------------------------------------------------------------------

    def _begin(self) -> None:
        self._interim = False
        self._until_eof = False
        self._status = 0
        self._reason = ""
        self._fields = []
        self._headers = None
        self._chunks = []
        self._size = 0
        self._wire_size = 0
        self._decompress = None

    def _unfinished_stream(self) -> bool:
        """A compressed body whose stream did not end. An empty body is not one: no bytes at
        all is no stream (servers label empty error answers with their usual encoding)."""
        decompress = self._decompress
        return decompress is not None and self._wire_size > 0 and not decompress.eof

    def _too_large(self) -> UpstreamProtocolError:
        return UpstreamProtocolError(
            f"CI's answer exceeds the {self._max_body}-byte limit", http_status=self._status
        )

    def _undecodable(self) -> TransportError:
        return TransportError("CI's answer could not be decompressed", sent=True)

    def _refuse(self, error: GatewayError | None) -> _Refused:
        if error is not None and self._failure is None:
            self._failure = error
        return _Refused()

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        assert self._headers is not None
        body = b"".join(self._chunks)
        self._chunks = []
        self._cancel_timer()
        waiter.set_result(HttpResponse(self._status, self._reason, self._headers, body))

    def _fail(self, error: GatewayError) -> None:
        self.reusable = False
        waiter = self._waiter
        self._cancel_timer()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._abort()

    def _time_out(self) -> None:
        self._timer = None
        self._fail(UpstreamTimeout("timed out waiting for CI's answer", sent=True))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _abort(self) -> None:
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()
