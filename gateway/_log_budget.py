"""A budget of log lines for events anyone outside can cause, and the window that spends it.

Some lines are written whenever a peer does something: a request aiohttp cannot parse
(`gateway._aiohttp_log`), a stream grpc fails to write to because its client left
(`gateway.logs`). One line each lets whoever can connect fill the disk and bury every other
line. A `LineWindow` lets `LineBudget.lines` through per `per_s` seconds and counts the rest;
the first line of a later window is preceded by one line saying how many were suppressed. The
window opens with a line, so a flood that stops is summed up with the next line, however much
later: no timer, as logging is synchronous and has no event loop to use.
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
    """The budget of one kind of line (`what`, as its summary names it), logged on `logger`."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        budget: LineBudget = DEFAULT_BUDGET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._what = what
        self._budget = budget
        self._clock = clock
        self._start: float | None = None
        self._logged = 0
        self._suppressed = 0

    def admit(self) -> bool:
        """Whether this line may be logged. A line that opens a new window after lines were
        suppressed is preceded by the summary, logged here through `logger` (its handlers and
        level apply; a filter calling this sees the summary pass through it first, so it must
        let through what it does not rewrite)."""
        now = self._clock()
        start = self._start
        if start is None or not 0 <= now - start < self._budget.per_s:  # a clock stepped back too
            suppressed, self._suppressed = self._suppressed, 0
            self._start, self._logged = now, 0
            if suppressed:
                self._logger.warning(
                    "%s: %d more suppressed (at most %d lines per %g s)",
                    self._what,
                    suppressed,
                    self._budget.lines,
                    self._budget.per_s,
                )
        if self._logged >= self._budget.lines:
            self._suppressed += 1
            return False
        self._logged += 1
        return True
