"""The memory the requests of API calls in progress hold, bounded (`server.max_request_memory_mb`).

Why a bound of its own: every other bound counts calls, and the requests of calls differ by a
factor of a thousand. grpc buffers a call's whole request before any of the gateway's code sees
it, for as long as the client takes to send it, and a request that has come is parsed and held
(with the XML and HTTP body built from it) until its call ends. Measured on a `serve` process:
20 calls each sending all but the last byte of an 8 MiB request held 162 MiB; 200 submits of
195 KiB held by a slow CI, 268 MiB; 100 of 2,000 empty unknown nodes (12 KiB each), 48 MiB. The
arrival cap lets 1,824 calls in, so requests alone could take many times a pod's memory.

How a call's request is counted (`RequestMemory`; `InFlight` keeps each call's count, from its
arrival to its end):

- from its arrival, before grpc reads anything: `server.max_request_bytes`, what grpc may buffer
  for it (it refuses a request that says it is larger from its length prefix). Python cannot
  see how much of a request has come, so the most that can is counted;
- once it has come, before it is parsed: `REQUEST_HELD_FACTOR` times its size, what a request
  held while CI answers costs (measured: up to 38.9 times, for the densest request validation
  takes). Mostly far less than the first count: a submit is ~200 bytes;
- at the call's end, nothing.

A call that does not fit is refused RESOURCE_EXHAUSTED (OVERLOADED, with RetryInfo), as at the
gateway's other bounds: at its arrival, before its request is read; or once its request has
come, which is then dropped unparsed. The calls already in progress keep what they hold.
"""

from __future__ import annotations

from gateway.config.settings import REQUEST_HELD_FACTOR, ServerLimits
from gateway.errors import Overloaded

__all__ = ["REQUEST_HELD_FACTOR", "RequestMemory"]

MIB = 2**20
WHAT = "memory held by requests (MiB)"


class RequestMemory:
    """What the requests of the calls in progress hold, as counted, against `limit_mb`."""

    __slots__ = ("_limit", "arriving", "limit_mb", "used")

    def __init__(self, limit_mb: int, max_request_bytes: int) -> None:
        self.limit_mb = limit_mb
        self._limit = limit_mb * MIB
        self.arriving = max_request_bytes
        """What a call counts for while its request is coming."""
        self.used = 0

    @classmethod
    def from_limits(cls, limits: ServerLimits) -> RequestMemory:
        return cls(limits.max_request_memory_mb, limits.max_request_bytes)

    def refusal(self) -> Overloaded:
        """The error a call that does not fit is refused with (a new one each time: an abort
        notes its attempts on it)."""
        return Overloaded(WHAT, self.limit_mb)

    def arrive(self) -> int | None:
        """Count a call whose request is to come: what it counts for, or None when that does
        not fit (refuse it)."""
        if self.used + self.arriving > self._limit:
            return None
        self.used += self.arriving
        return self.arriving

    def received(self, counted: int, size: int) -> int | None:
        """A call counted for `counted` has received its request of `size` bytes: what it counts
        for from now on, or None when that does not fit (it then counts for nothing: refuse it,
        without parsing its request)."""
        held = REQUEST_HELD_FACTOR * size
        if self.used - counted + held > self._limit:
            self.used -= counted
            return None
        self.used += held - counted
        return held

    def release(self, counted: int) -> None:
        """A call counted for `counted` has ended."""
        self.used -= counted
