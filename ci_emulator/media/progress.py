"""A worker's progress reports: whole percent, forwards only, at most ten a second.

The parent shows the latest as `<Progress>`; 100 is the parent's to set (on Success), so a
worker reports at most 99. With `hold` (the test control behind `EmulatorState.hold_workers`)
the worker stops after its first report until the parent sends `go`, bounded by
`HOLD_TIMEOUT_S` so a forgotten hold cannot keep a process alive for ever.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from typing import Final

from ci_emulator.media.errors import INTERNAL_ERROR, MediaFailure

MIN_INTERVAL_S: Final = 0.1
HOLD_TIMEOUT_S: Final = 120.0


class Progress:
    def __init__(self, conn: Connection | None, *, hold: bool = False) -> None:
        self._conn = conn
        self._hold = hold
        self._sent = -1
        self._last = 0.0

    def fraction(self, done: float) -> None:
        """Report that `done` (0..1) of the job's work is finished."""
        percent = max(0, min(99, int(done * 100)))
        now = time.monotonic()
        first = self._sent < 0
        if percent <= self._sent or (not first and now - self._last < MIN_INTERVAL_S):
            return
        self._sent, self._last = percent, now
        if self._conn is None:
            return
        self._conn.send(("progress", percent))
        if first and self._hold:
            self._wait_for_go()

    def _wait_for_go(self) -> None:
        assert self._conn is not None
        if not self._conn.poll(HOLD_TIMEOUT_S):
            raise MediaFailure(INTERNAL_ERROR, "the worker was held longer than allowed")
        self._conn.recv()
