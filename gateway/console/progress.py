"""`watch`'s live view of a job: one redrawn line on a terminal, plain lines anywhere else.

On a terminal the line is rewritten in place (carriage return, erase line), so a long job
takes one line of the screen. Piped into a file or a CI log, the same updates become one
timestamped line each, with no control characters to garble the log; `--json` makes them JSON
Lines (each the `WatchMediaJobResponse` as it came). The gateway sends an update only when the
state or `Progress` changed, so no view needs to filter duplicates.
"""

from __future__ import annotations

import time
from typing import Protocol, TextIO

from gateway._proto import media_pb2, service_pb2
from gateway.console import render

BAR_WIDTH = 30
ERASE_LINE = "\r\x1b[2K"


class ProgressView(Protocol):
    def update(self, job: media_pb2.JobsDetail) -> None: ...

    def close(self) -> None: ...


def bar(job: media_pb2.JobsDetail, width: int = BAR_WIDTH) -> str:
    """`[#########.....................]`; all dots while CI reports no progress."""
    value = render.percent(job) or 0.0
    filled = round(width * value / 100)
    return f"[{'#' * filled}{'.' * (width - filled)}]"


def _summary(job: media_pb2.JobsDetail) -> str:
    parts = [job.job_id, render.state_name(job), render.percent_text(job), render.result(job)]
    return "  ".join(part for part in parts if part)


class TerminalBar:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._drawn = False

    def update(self, job: media_pb2.JobsDetail) -> None:
        line = f"{job.job_id}  {bar(job)} {render.percent_text(job):>4}  {render.state_name(job)}"
        failure = render.result(job)
        self._out.write(f"{ERASE_LINE}{line}{'  ' + failure if failure else ''}")
        self._out.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._out.write("\n")
            self._out.flush()
            self._drawn = False


class PlainLines:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def update(self, job: media_pb2.JobsDetail) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._out.write(f"{stamp}  {_summary(job)}\n")
        self._out.flush()

    def close(self) -> None:
        pass


class JsonLines:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def update(self, job: media_pb2.JobsDetail) -> None:
        message = service_pb2.WatchMediaJobResponse(jobs_detail=job)
        self._out.write(render.to_json_line(message) + "\n")
        self._out.flush()

    def close(self) -> None:
        pass


def view_for(out: TextIO, *, as_json: bool) -> ProgressView:
    if as_json:
        return JsonLines(out)
    return TerminalBar(out) if out.isatty() else PlainLines(out)
