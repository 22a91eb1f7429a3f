"""How long a tracked job or workflow run has gone unread: the bound on a watch CI cannot serve.

Watchers of a job (WatchMediaJob, WaitMediaJob) or of a workflow run (WatchWorkflowExecution)
wait on the gateway's polls. A poll that fails retryably (CI answering 5xx or 429, CI out of
reach, a time-out) is simply made again later; unbounded, that left a client watching without a
deadline waiting for ever, with no sign that the gateway could not see its job. A terminal
refusal (no such bucket, the gateway's keys) ends the watchers at once and is not counted here.

`ReadFailures` is kept per tracked job (per followed run): when its reads began to fail, how
many failed, and the last failure. Once they have failed for `tracking.unreachable_s`, the
poller ends every watcher of it with `UpstreamUnreachable` (UNAVAILABLE, reason
UPSTREAM_UNREACHABLE, CI's last Code, Message and RequestId in the details) and stops tracking
it. The job itself may well be running: a client that watches again starts a new tracking.

The clock:

- It starts when the first failed read was *sent* (the state has been unknown since then, even
  if the read took its whole time-out to fail), and any read that succeeds stops it: a poll's,
  or the describe behind a verified callback. A failed read sent before the latest success says
  nothing new and is ignored.
- It belongs to the tracked job, not to a watcher: a watcher that joins a job whose reads are
  already failing shares the job's clock (it sees the same CI, and gets the last state read at
  once, as any late watcher does). It never inherits an expired clock: the watchers of an
  expired job are ended and the job forgotten, so one that comes after starts a new tracking,
  whose clock starts at its own first failed read.
- The next poll is never scheduled past the bound, so the watchers end about `unreachable_s`
  after the first failure (plus the last read's own time), not up to a poll interval later;
  that last read may still succeed and keep the watch going.

A batched describe that fails counts as a failed read for every job in it.
"""

from __future__ import annotations

import math

from gateway.errors import GatewayError, UpstreamUnreachable


class ReadFailures:
    """The consecutive failed reads of one tracked job or run, against `bound_s`."""

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self.since: float | None = None  # when the first failed read of this run of them was sent
        self.count = 0
        self.last: GatewayError | None = None
        self._read_at = -math.inf  # when the latest successful read was taken

    def failed(self, sent_at: float, error: GatewayError) -> None:
        """A read sent at `sent_at` failed retryably with `error`."""
        if sent_at < self._read_at:
            return  # a success came in since this read was sent: the state is known
        if self.since is None:
            self.since = sent_at
        self.count += 1
        self.last = error

    def succeeded(self, at: float) -> None:
        """CI answered with the state (at `at`): the clock stops."""
        self._read_at = max(self._read_at, at)
        self.since, self.count, self.last = None, 0, None

    def expired(self, now: float) -> bool:
        return self.since is not None and now - self.since >= self.bound_s

    def cap(self, due: float) -> float:
        """`due`, or the bound if that comes first: the last read is made at the bound."""
        return due if self.since is None else min(due, self.since + self.bound_s)

    def error(self, what: str, now: float) -> UpstreamUnreachable:
        """What the watchers of `what` ("job <id>") end with, once `expired(now)`."""
        assert self.since is not None and self.last is not None
        return UpstreamUnreachable(what, now - self.since, self.count, self.last)
