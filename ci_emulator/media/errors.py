"""How a media job fails: one exception carrying a CI job-failure `Code` and `Message`.

CI's catalogue of job-level failure codes is UNCONFIRMED (API notes §6.2, §11). The emulator
reuses the probe's codes for input problems (`ResourceNotFound`, `InvalidMedia`, ...) so that
every kind fails alike on the same input, and CI's request-level names for the rest:

* `InvalidArgument`: the request passed validation but cannot be carried out on this input
  (a codec the container cannot hold, a stream index the file does not have, an output that
  would be empty);
* `InternalError`: the worker crashed; the traceback is in the emulator's log, not the job.
"""

from __future__ import annotations

from typing import Final

INVALID_ARGUMENT: Final = "InvalidArgument"
INTERNAL_ERROR: Final = "InternalError"
INVALID_MEDIA: Final = "InvalidMedia"
RESOURCE_NOT_FOUND: Final = "ResourceNotFound"


class MediaFailure(Exception):
    """The job ends Failed with this Code and Message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def invalid(message: str) -> MediaFailure:
    return MediaFailure(INVALID_ARGUMENT, message)
