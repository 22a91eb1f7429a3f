"""How a command ends: one exit code per outcome a script may want to tell apart.

`watch` and `wait` say how the job ended (succeeded, failed, cancelled, or not yet), and
`templates plan` whether the bucket matches its file (0) or has drifted (DRIFT), so a shell
script or a CI pipeline can branch on `$?` without parsing output; every other command is 0 when
it did what was asked. `MEANING` is the one list (a test keeps the README's table equal to
it); each command's `--help` prints the part of it that command can end with (`EVERY_COMMAND`
and its own outcomes), and a test keeps each such list equal to what the command's code can
return.
"""

from __future__ import annotations

import enum
import textwrap
from collections.abc import Iterable, Mapping

from gateway._proto import media_pb2


class ExitCode(enum.IntEnum):
    OK = 0
    JOB_FAILED = 1
    USAGE = 2
    JOB_CANCELLED = 3
    REFUSED = 4
    NOT_DONE = 5
    DRIFT = 6
    INTERRUPTED = 130
    OUTPUT_CLOSED = 141


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: (
        "done (watch, wait: the job succeeded; templates plan: the bucket matches the file)"
    ),
    ExitCode.JOB_FAILED: "watch, wait: the job failed",
    ExitCode.USAGE: (
        "bad arguments or environment, an unreadable TLS or token file, or no connection to "
        "the gateway (unknown host, refused, TLS handshake failed)"
    ),
    ExitCode.JOB_CANCELLED: "watch, wait: the job was cancelled",
    ExitCode.REFUSED: (
        "the gateway answered with an error status (INVALID_ARGUMENT, NOT_FOUND, "
        "UNAUTHENTICATED, ...), or describe named a job CI does not know"
    ),
    ExitCode.NOT_DONE: "watch, wait: --timeout ran out before the job ended",
    ExitCode.DRIFT: (
        "templates plan: the bucket's templates differ from the file (apply would change them)"
    ),
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
    ExitCode.OUTPUT_CLOSED: (
        "the output's reader went away (e.g. piped into `head`): the rest was not printed"
    ),
}

EVERY_COMMAND = (
    ExitCode.OK,
    ExitCode.USAGE,
    ExitCode.REFUSED,
    ExitCode.INTERRUPTED,
    ExitCode.OUTPUT_CLOSED,
)
"""How any console command may end: done (or `--help`), refused by argparse or unable to reach
the gateway, refused by the gateway, interrupted, its output closed. A command's own outcomes
(a job's end, a drift) come on top of these."""

JOB_ENDS = (ExitCode.JOB_FAILED, ExitCode.JOB_CANCELLED, ExitCode.NOT_DONE)
"""What `watch` and `wait` add: how the job ended, or that it had not yet (`for_job`)."""

_BY_FINAL_STATE = {
    media_pb2.JOB_STATE_SUCCESS: ExitCode.OK,
    media_pb2.JOB_STATE_FAILED: ExitCode.JOB_FAILED,
    media_pb2.JOB_STATE_CANCEL: ExitCode.JOB_CANCELLED,
}


def is_final(job: media_pb2.JobsDetail) -> bool:
    return job.state in _BY_FINAL_STATE


def for_job(job: media_pb2.JobsDetail) -> ExitCode:
    """How a watched or waited-for job ended; NOT_DONE while it has not."""
    return _BY_FINAL_STATE.get(job.state, ExitCode.NOT_DONE)


def reference(codes: Iterable[ExitCode], width: int = 92) -> str:
    """`codes` as `--help` lists them, in order, each wrapped to `width`."""
    return listing({code.value: MEANING[code] for code in codes}, width)


def listing(meanings: Mapping[int, str], width: int = 92) -> str:
    """Exit codes and what each means, as every `ci-gateway` command's `--help` lists them
    (the console's, `serve`'s and the emulator's): one per line, in order, wrapped."""
    return "\n".join(
        textwrap.fill(
            meanings[code], width, initial_indent=f"  {code:<4}", subsequent_indent=" " * 6
        )
        for code in sorted(meanings)
    )


class CommandFailed(Exception):
    """Ends a command with `code` after printing `message`: one line on stderr, no traceback."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
