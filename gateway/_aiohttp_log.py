"""aiohttp's own log for a server of ours, with requests it cannot parse kept to one line.

aiohttp logs a request whose HTTP it cannot parse (`HttpProcessingError`) at ERROR with a
traceback whose exception text quotes the offending line. On the callback port that line holds
the path, and so the callback token; on any port, anyone who can connect can send such requests
as fast as they like and fill the log with tracebacks. Each becomes one line, WARNING at most,
naming the server, the status answered, the peer and the error's class, never its text.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


class _MalformedRequests(logging.Filter):
    def __init__(self, server: str) -> None:
        super().__init__()
        self._server = server

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
            record.msg = "%s request refused (%d): malformed HTTP from %s (%s)"
            record.args = (self._server, error.code, remote, type(error).__name__)
            record.exc_info = record.exc_text = None
            if record.levelno > logging.WARNING:  # aiohttp logs a few at DEBUG: kept there
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def server_logger(name: str, server: str) -> logging.Logger:
    """The logger to give an `AppRunner` (`logger=`) instead of aiohttp's `aiohttp.server`:
    `name`, with malformed requests reported as "`server` request refused ..."."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, _MalformedRequests) for f in logger.filters):
        logger.addFilter(_MalformedRequests(server))
    return logger
