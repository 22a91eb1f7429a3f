"""CI's error codes as the emulator answers them: one table, one exception.

Every refusal in the emulator is `raise CiError(code, message)`; the front end turns it into CI's
`<Error>` body with the status looked up here. Keeping the table in one place means the status of
a code cannot drift between endpoints, and a reader can check it against the notes (§6.2) at a
glance. COS-host codes (videoinfo and COS-style auth failures) live in the same table because
the code names do not collide.
"""

from __future__ import annotations

from typing import Final

ERROR_STATUS: Final[dict[str, int]] = {
    # CI media-processing error table (notes §6.2).
    "InvalidArgument": 400,
    "MissingContent": 400,
    "InvalidContent": 400,  # 413 when the body is too large: pass status explicitly.
    "InvalidHost": 400,
    "ResourceNotFound": 400,
    "ResourceAccessDenied": 400,
    "MissingAuthorization": 401,
    "InvalidAuthorization": 401,
    "SecretidNotExist": 401,
    "SignatureExpired": 401,
    "AccessDenied": 403,
    "QueueSaturated": 403,
    "QueuePaused": 403,
    "InvalidUrl": 404,
    "MissingContentLength": 411,
    "SlowDown": 429,
    "InternalError": 500,
    "NotImplemented": 501,
    "ServiceUnavailable": 503,
    # COS error table (notes §6.2, COS-host codes). CI's own table has no signature-mismatch
    # code; CI fronts the COS signature check, and SignatureDoesNotMatch 403 is what the
    # gateway's error mapping expects for it on both hosts.
    "SignatureDoesNotMatch": 403,
    "RequestTimeTooSkewed": 403,
    "InvalidAccessKeyId": 403,
    "ExpiredToken": 403,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "MethodNotAllowed": 405,
}


class CiError(Exception):
    """A request CI would refuse: the `Code`, `Message` and HTTP status of its `<Error>` body."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_STATUS[code]


def invalid_argument(message: str) -> CiError:
    return CiError("InvalidArgument", message)
