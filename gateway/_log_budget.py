"""A budget of log lines for events anyone outside can cause, and the filter that spends it.

Some lines are written whenever a peer does something: a request aiohttp cannot parse
(`gateway._aiohttp_log`), a stream grpc fails to write to because its client left
(`gateway.logs`). Each comes from a library as an ERROR with a traceback, which is no fault of
ours, and one each lets whoever can connect fill the disk and bury every other line.
`OutsiderLines`, a filter on the library's logger, makes each such record one short WARNING
(its subclass says which records and what the line says), and a `LineWindow` lets
`LineBudget.lines` of them through per `per_s` seconds and counts the rest.

Logging is synchronous and has no event loop, so there is no timer: a window opens with a line,
and how many were suppressed is said before the first line of a later window, however much
later. So the first line suppressed says at once that the rest are counted: else a flood that
stops would read as a few lines and silence, its count written only when the next one comes,
maybe never.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LineBudget:
    """At most `lines` lines per `per_s` seconds."""

    lines: int = 10
    per_s: float = 60.0


DEFAULT_BUDGET = LineBudget()


class LineWindow:
    """The budget of one kind of line: whether each may be logged, and how many were not. It
    logs nothing itself: each user words its lines (`OutsiderLines` as notices of their own,
    `gateway.api.malformed` as a field of its next line)."""

    def __init__(
        self, budget: LineBudget = DEFAULT_BUDGET, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget
        self._clock = clock
        self._start: float | None = None
        self._logged = 0
        self.suppressed = 0
        """The lines suppressed since the last one logged (1: this window's first)."""

    def admit(self) -> int | None:
        """None: this line is over the budget (counted in `suppressed`). Else it may be logged,
        and the count is of the lines suppressed before it, said now (0: none), and so no
        longer counted."""
        now = self._clock()
        start = self._start
        reported = 0
        if start is None or not 0 <= now - start < self.budget.per_s:  # a clock stepped back too
            reported, self.suppressed = self.suppressed, 0
            self._start, self._logged = now, 0
        if self._logged >= self.budget.lines:
            self.suppressed += 1
            return None
        self._logged += 1
        return reported


class OutsiderLines(logging.Filter):
    """The records of one event outsiders cause, logged on `logger`, each one WARNING line
    (never above: a lower level stays) without its traceback, within a budget; other records
    pass untouched.

    A subclass's `line` tells its records apart by their exception and words the line; the
    exception's own text is never kept (it may quote what the peer sent). The two notices (the
    first line suppressed: the rest are counted; the first line of a later window: how many
    were) name the event as `what`, logged through `logger` (its handlers and level apply; this
    filter sees them pass, and lets them through as records it does not rewrite)."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        budget: LineBudget = DEFAULT_BUDGET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._logger = logger
        self._what = what
        self._window = LineWindow(budget, clock)

    def line(
        self, record: logging.LogRecord, error: BaseException
    ) -> tuple[str, tuple[object, ...]] | None:
        """The line (format, args) for a record logged with `error`; None: not one of ours."""
        raise NotImplementedError

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        line = self.line(record, error) if error is not None else None
        if line is None:
            return True
        if not self._admit():
            return False
        record.msg, record.args = line
        record.exc_info = record.exc_text = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True

    def _admit(self) -> bool:
        """Whether the budget lets this line through; the notices are logged here."""
        window = self._window
        budget = window.budget
        before = window.admit()
        if before is None:
            if window.suppressed == 1:
                self._logger.warning(
                    "%s: more than %d lines in %g s; the rest are counted, not logged, until a "
                    "line comes after the window",
                    self._what,
                    budget.lines,
                    budget.per_s,
                )
            return False
        if before:
            self._logger.warning(
                "%s: %d more suppressed (at most %d lines per %g s)",
                self._what,
                before,
                budget.lines,
                budget.per_s,
            )
        return True

    def install(self) -> logging.Logger:
        """Put this filter on its logger in place of any earlier one of its class (a server
        started again, `configure` run again): one budget, starting afresh, never two filters."""
        logger = self._logger
        for old in [f for f in logger.filters if type(f) is type(self)]:
            logger.removeFilter(old)
        logger.addFilter(self)
        return logger
