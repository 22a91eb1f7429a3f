"""`ci-gateway jobs list | head`: the reader closes the pipe early. The command ends with its
own exit code and nothing on stderr, never Python's BrokenPipeError traceback."""

from __future__ import annotations

import subprocess
import sys

from gateway.console.exits import ExitCode

# A command that prints far more than a pipe holds, run as `main_with` runs the `jobs` and
# `templates` commands.
PRINTS_A_LOT = """
import sys
from gateway.console.commands import main_with

async def command(argv: list[str]) -> int:
    for index in range(200_000):
        print(f"j{index:032x}  MediaInfo  Success  100%  input/demo.mp4")
    return 0

sys.exit(main_with(command, []))
"""


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PRINTS_A_LOT], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().startswith(b"j")  # like `head -1`, then away
        process.stdout.close()
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=60) == ExitCode.OUTPUT_CLOSED
    assert stderr == ""
