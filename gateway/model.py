"""What CI calls things, and the limits CI itself enforces: facts every layer shares.

A bucket and region name a CI endpoint (`Target`); which host of it a call goes to depends on the
operation (`HostKind`: `ci` for jobs and queues, `cos` for the synchronous object probes). The
naming rules and limits here are CI's and COS's, not settings: a gateway cannot relax them, so
they sit below both the settings and the validation that applies them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

HostKind = Literal["ci", "cos"]

# UNCONFIRMED: CI documents comma-joined ids for DescribeMediaJob but no maximum. The tolerant
# reading sends at most 10 a request (a path under 700 bytes, far from any URL limit) rather than
# guess CI's bound: DescribeMediaJobs splits longer lists into batches (`gateway.jobs.describe`),
# the tracker polls in requests of 10, and the emulator refuses more, so a request that would
# break this fails in the tests.
MAX_DESCRIBE_JOB_IDS = 10
CALLBACK_PATH_PREFIX = "/ci-callback"
"""Where the gateway receives CI's callbacks: `<public_url>/ci-callback/<token>/<bucket>/<region>`
(`gateway.jobs.callbacks`). The token in it is a secret: no answer shows the URL."""
GATEWAY_CALLBACK = "ci-gateway:callback"
"""What answers show instead of the gateway's own callback URL. A workflow sent back with it
unchanged gets the real URL again (`MediaWorkflowService._use_gateway_callback`)."""

_BUCKET = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?-[0-9]{1,20}$")
_REGION = re.compile(r"^[a-z]{2,}(?:-[a-z0-9]+){1,3}$")


def is_valid_bucket(value: str) -> bool:
    """`name-APPID`: lower-case letters, digits and dashes, then a dash and the numeric APPID."""
    return bool(_BUCKET.fullmatch(value))


def is_valid_region(value: str) -> bool:
    """`ap-guangzhou`, `na-siliconvalley`, `ap-shanghai-fsi`, ..."""
    return bool(_REGION.fullmatch(value))


@dataclass(frozen=True)
class Target:
    """One bucket in one region: the `<Bucket-APPID>.<kind>.<Region>.myqcloud.com` endpoint."""

    bucket: str
    region: str

    def host(self, kind: HostKind) -> str:
        return f"{self.bucket}.{kind}.{self.region}.myqcloud.com"


TARGETS_REMEMBERED = 64
"""Targets `known_target` keeps: a gateway serves a default bucket and a few named ones."""


@functools.lru_cache(maxsize=TARGETS_REMEMBERED)
def known_target(bucket: str, region: str) -> Target:
    """`Target(bucket, region)`, the same instance for the same names while remembered: a
    target is a frozen value, so sharing one is building it again (equal, hashing alike) for
    a cache lookup instead of a frozen dataclass's `__init__` (~1.8k instructions against ~5.3k,
    once per validated call). For names already checked (or the configured defaults): their
    rules bound their length, so the cache stays small whatever callers send."""
    return Target(bucket, region)
