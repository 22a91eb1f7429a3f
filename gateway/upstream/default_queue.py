"""The `queueId` a job listing sends when its caller names no queue.

Every version of CI's DescribeMediaJobs page marks `queueId` required ("是" / "Yes", notes §5.2),
while the official SDKs send it only when set (Python 1.9.44: `QueueId=None`; Go: `omitempty`),
so a listing without it evidently works on today's CI. UNCONFIRMED which is right: the tolerant
reading is to send the documented form wherever it means the same as leaving it out.

* A caller's listing (ListMediaJobs) asks for every job of a kind in the bucket. Naming a queue
  means the same when the bucket has exactly one media queue (the usual case: the queue comes
  with the bucket's binding, catalogue §2.4) and the kind runs in media queues: the typed kinds
  (`gateway.kinds`, the media-processing tags). Jobs of the others (AI, speech, picture tags)
  may run in their families' queues (`/ai_queue`, `/asrqueue`, `/picqueue`), which a media
  queue's id would hide: their listings go without, as before. The queue is looked up once per
  bucket (`GET /queue?category=Transcoding&state=All`: CI's media-processing queues, paused
  ones included) and remembered for `TTL_S`; with several queues, or when the look-up fails,
  the listing goes without `queueId`, as the SDKs send it. Listings that come while a look-up
  is in flight wait for that one (single flight, `CiClient._only_queue`), each half its own time
  left at most; it runs under its own deadline (`LOOKUP_TIMEOUT_S`), so neither a hurried nor a
  cancelled caller cuts it short for the others. The look-up is one attempt, and a
  failed one is remembered for `FAILED_TTL_S`: while CI fails (or refuses the gateway its
  queues), a listing costs one request more at most once a minute, not a retried look-up each
  time.
* A refusal of the look-up's keys (AccessDenied, SignatureDoesNotMatch, SecretidNotExist, ...)
  counts as a refusal of the keys, as on any call: the look-up is signed with the same keys, so
  CI refusing them is the same evidence. What that evidence does is only ever local and cheap:
  the provider looks at its source again (`CredentialsProvider.renew`: a mounted Secret is
  re-read, nothing remote is asked, no key is marked bad, readiness is untouched), and when it
  holds other keys the look-up is resent once with them, so a rotation seen first by the
  look-up is taken up before the listing is signed. Keys that are still current but may not
  describe queues (a CAM policy granting the job actions only: AccessDenied here alone) cost a
  look of the source and one refused request per bucket per `FAILED_TTL_S`, and change nothing.
  Both pinned in tests/credentials/test_refused_keys.py.
* The exactly-once recovery looks for a job a submit without `QueueId` may have made. That job
  is in CI's default queue for its kind, which the answer to an earlier such submit of the kind
  named (`learn`): naming it finds the job under either reading, whatever the bucket's other
  queues. The recovery never looks the queue up itself (a request more, at the moment CI is
  failing), but takes a looked-up single queue when one is at hand and the kind is typed. A
  submit with a `QueueType` (SpeedTranscoding) runs in that type's queue, not the default: it
  teaches nothing, and its recovery names no queue.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.model import Target

LOOKUP_QUERY: Final = {"category": "Transcoding", "state": "All"}
"""The look-up's query: CI's media-processing queues (the documented default category, the
queues jobs without a `QueueId` run in), paused ones included."""

TTL_S: Final = 600.0
"""How long an answer is trusted. A bucket's queues change only when an operator binds or
unbinds it (queue creation is not an API), and a stale id costs a listing, not a job."""

LOOKUP_TIMEOUT_S: Final = 10.0
"""The look-up's own deadline. It runs for every listing waiting on it, each waiting half its
own time left at most, so no one caller's deadline bounds it; a look-up that outlives its
callers still answers the next listings."""

FAILED_TTL_S: Final = 60.0
"""How long a failed look-up stands: the listings meanwhile go without `queueId`."""

MAX_BUCKETS: Final = 256
"""Buckets remembered per kind of answer, least recently noted dropped first: a few dozen bytes
each, bounded whatever the callers name."""

_Key = tuple[str, ...]


@dataclass(frozen=True)
class _Entry:
    queue_id: str | None  # None: the bucket has no single media queue (none, or several)
    expires_at: float


class DefaultQueues:
    """Per bucket: its only media queue (looked up); per bucket and kind: CI's default queue
    (learnt)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._only: OrderedDict[_Key, _Entry] = OrderedDict()
        self._default: OrderedDict[_Key, _Entry] = OrderedDict()

    def only_queue(self, target: Target) -> tuple[bool, str | None]:
        """(whether a look-up's answer is at hand, the bucket's only media queue or None)."""
        entry = self._fresh(self._only, _key(target))
        return (False, None) if entry is None else (True, entry.queue_id)

    def for_recovery(self, target: Target, tag: str, *, media: bool) -> str | None:
        """The queue a job of `tag` submitted without `QueueId` is in, when known; the bucket's
        only media queue counts for a `media` kind."""
        entry = self._fresh(self._default, _key(target, tag))
        if entry is None and media:
            entry = self._fresh(self._only, _key(target))
        return None if entry is None else entry.queue_id

    def remember(self, target: Target, queue_ids: list[str], total_count: str) -> str | None:
        """Note what a look-up answered (its queues' ids and `TotalCount`); returns the queue
        to name, or None. `TotalCount` guards against a page that shows one queue of several."""
        single = len(queue_ids) == 1 and total_count.strip() in ("", "1")
        queue_id = queue_ids[0] if single and queue_ids[0] else None
        self._note(self._only, _key(target), queue_id)
        return queue_id

    def failed(self, target: Target) -> None:
        """The look-up failed: name no queue for `FAILED_TTL_S`."""
        self._note(self._only, _key(target), None, FAILED_TTL_S)

    def learn(self, target: Target, tag: str, queue_id: str) -> None:
        """CI put a job of `tag` submitted without `QueueId` in `queue_id`: its default queue."""
        if not (tag and queue_id):
            return
        key = _key(target, tag)
        entry = self._default.get(key)
        # Every such submit answers its queue: the same one is renewed at half its time, not
        # noted anew each time (a frozen dataclass built per submit, ~1% of one).
        if (
            entry is not None
            and entry.queue_id == queue_id
            and entry.expires_at - self._clock() > TTL_S / 2
        ):
            self._default.move_to_end(key)
            return
        self._note(self._default, key, queue_id)

    def _fresh(self, entries: OrderedDict[_Key, _Entry], key: _Key) -> _Entry | None:
        entry = entries.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            del entries[key]
            return None
        return entry

    def _note(
        self,
        entries: OrderedDict[_Key, _Entry],
        key: _Key,
        queue_id: str | None,
        ttl_s: float = TTL_S,
    ) -> None:
        entries[key] = _Entry(queue_id, self._clock() + ttl_s)
        entries.move_to_end(key)
        while len(entries) > MAX_BUCKETS:
            entries.popitem(last=False)


def _key(target: Target, *kind: str) -> _Key:
    """A bucket's key (its only queue), or a bucket's and a kind's (CI's default for it)."""
    return (target.bucket, target.region, *kind)
