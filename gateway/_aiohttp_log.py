"""aiohttp's own log for a server of ours, with requests it cannot parse kept to few short lines.

aiohttp logs a request whose HTTP it cannot parse (`HttpProcessingError`) at ERROR with a
traceback whose exception text quotes the offending line. On the callback port that line holds
the path, and so the callback token; on any port, anyone who can connect can send such requests
as fast as they like and fill the log with tracebacks. Each becomes one line, WARNING at most,
naming the server, the status answered, the peer and the error's class, never its text.

Those lines are rate-limited too (`gateway._log_budget`): past the budget they are counted, not
logged (one line says so as it begins), and the next window opens with their count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

from gateway._log_budget import DEFAULT_BUDGET, LineBudget, OutsiderLines


class _MalformedRequests(OutsiderLines):
    def __init__(
        self, server: str, logger: logging.Logger, budget: LineBudget, clock: Callable[[], float]
    ) -> None:
        super().__init__(logger, f"{server} requests refused as malformed", budget, clock)
        self._server = server

    def line(
        self, record: logging.LogRecord, error: BaseException
    ) -> tuple[str, tuple[object, ...]] | None:
        if not isinstance(error, HttpProcessingError):
            return None
        # aiohttp's "Error handling request from %s": its one argument is the peer.
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return "%s request refused (%d): malformed HTTP from %s (%s)", (
            self._server,
            error.code,
            remote,
            type(error).__name__,
        )


def server_logger(
    name: str,
    server: str,
    *,
    budget: LineBudget = DEFAULT_BUDGET,
    clock: Callable[[], float] = time.monotonic,
) -> logging.Logger:
    """The logger to give an `AppRunner` (`logger=`) instead of aiohttp's `aiohttp.server`:
    `name`, with malformed requests reported as "`server` request refused ...", at most
    `budget`. Call it once per server started: the budget starts afresh (a filter left by an
    earlier server of the same name is replaced, not stacked)."""
    return _MalformedRequests(server, logging.getLogger(name), budget, clock).install()
