"""How a command ends: one exit code per outcome a script may want to tell apart.

`watch` and `wait` say how the job ended (succeeded, failed, cancelled, or not yet), and
`templates plan` whether the bucket matches its file (0) or has drifted (DRIFT), so a shell
script or a CI pipeline can branch on `$?` without parsing output; every other command is 0 when
it did what was asked. `MEANING` is the one list: `ci-gateway jobs --help` prints it and a test
keeps the README's table equal to it.
"""

from __future__ import annotations

import enum
import textwrap

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
    ExitCode.OK: "done; for watch and wait: the job succeeded",
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


def reference(width: int = 92) -> str:
    """The codes as `--help` lists them, wrapped to `width`."""
    return "\n".join(
        textwrap.fill(
            MEANING[code], width, initial_indent=f"  {code.value:<4}", subsequent_indent=" " * 6
        )
        for code in ExitCode
    )


class CommandFailed(Exception):
    """Ends a command with `code` after printing `message`: one line on stderr, no traceback."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
