"""Identifiers shaped like CI's, so clients that log, store or pattern-match them see real forms.

RequestId looks like CI's (`NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x` is base64 of
`62f3292d_90fa5064_6703_1`: hex seconds, hex host part, hex process part, a counter). JobId is
`j` + 32 hex digits and QueueId `p` + 32 hex digits, as in every CI sample (an observed
convention, not a documented contract). Randomness comes from `secrets` so ids from two
emulators never collide in a shared log.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets

_counter = itertools.count(1)
_HOST_PART = secrets.token_hex(4)
_PROCESS_PART = secrets.token_hex(2)
"""Drawn once: a draw per request cost a getrandom syscall on every answer, and the counter
already makes each id unique."""


def request_id(now: float) -> str:
    raw = f"{int(now):08x}_{_HOST_PART}_{_PROCESS_PART}_{next(_counter):x}"
    return base64.b64encode(raw.encode()).decode()


def trace_id() -> str:
    # COS/CI trace ids are long base64 strings of a hex digest.
    return base64.b64encode(secrets.token_hex(32).encode()).decode()


def job_id() -> str:
    return "j" + secrets.token_hex(16)


def queue_id() -> str:
    return "p" + secrets.token_hex(16)


def default_queue_id(bucket_name: str) -> str:
    # Deterministic per bucket, so a restarted emulator keeps the queue id a client configured.
    return "p" + hashlib.sha256(f"default-queue:{bucket_name}".encode()).hexdigest()[:32]


def named_queue_id(bucket_name: str, queue_name: str) -> str:
    """A configured queue's stable id, for the same reason."""
    return "p" + hashlib.sha256(f"queue:{bucket_name}:{queue_name}".encode()).hexdigest()[:32]
