"""aiohttp's own log for a server of ours, with requests it cannot parse kept to few short lines.

aiohttp logs a request whose HTTP it cannot parse (`HttpProcessingError`) at ERROR with a
traceback whose exception text quotes the offending line. On the callback port that line holds
the path, and so the callback token; on any port, anyone who can connect can send such requests
as fast as they like and fill the log with tracebacks. Each becomes one line, WARNING at most,
naming the server, the status answered, the peer and the error's class, never its text.

Those lines are rate-limited too (`gateway._log_budget`): past the budget they are counted, not
logged, and the next window opens with one line saying how many were suppressed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

from gateway._log_budget import DEFAULT_BUDGET, LineBudget, LineWindow


class _MalformedRequests(logging.Filter):
    def __init__(
        self,
        server: str,
        logger: logging.Logger,
        budget: LineBudget,
        clock: Callable[[], float],
    ) -> None:
        super().__init__()
        self._server = server
        self._window = LineWindow(logger, f"{server} requests refused as malformed", budget, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        if not self._window.admit():
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg = "%s request refused (%d): malformed HTTP from %s (%s)"
        record.args = (self._server, error.code, remote, type(error).__name__)
        record.exc_info = record.exc_text = None
        if record.levelno > logging.WARNING:  # aiohttp logs a few at DEBUG: kept there
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


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
    logger = logging.getLogger(name)
    for old in [f for f in logger.filters if isinstance(f, _MalformedRequests)]:
        logger.removeFilter(old)
    logger.addFilter(_MalformedRequests(server, logger, budget, clock))
    return logger
