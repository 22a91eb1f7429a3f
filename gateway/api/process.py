"""The serving process's event loop: uvloop by default where it is installed, else asyncio's.

Process-wide, so it belongs to the process that serves (`ci-gateway serve`, and the benchmarks'
gateway, which must run exactly as production does), never to `start_gateway`, which tests call
many times in one process. `auto` (the default) runs on uvloop when it is installed (a
dependency on Linux). Measured (bench/README, issue 16): 3-5% less gateway CPU per call, and
10-12% less on a bare grpc.aio server, in the parts of grpc.aio and aiohttp the loop runs (the
poller's wake-ups, socket reads and writes, timers); nothing in the gateway depends on which
loop it is. `asyncio` is the way back should uvloop ever misbehave.
"""

from __future__ import annotations

import asyncio
import importlib.util
import resource
from collections.abc import Coroutine
from typing import Any, TypeVar

from gateway.config.settings import EVENT_LOOPS

T = TypeVar("T")

# Where the hard limit is "unlimited", the kernel still refuses more than fs.nr_open (1,048,576
# unless raised): ask for that.
UNLIMITED_FILES = 1 << 20


def loop_name(choice: str) -> str:
    """The loop the `event_loop` setting `choice` means here: `auto` is uvloop when installed."""
    if choice == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if choice not in EVENT_LOOPS:
        raise ValueError(f"event_loop {choice!r} must be one of {EVENT_LOOPS}")
    return choice


def run(main: Coroutine[Any, Any, T], *, event_loop: str = "auto") -> T:
    """`asyncio.run(main)` on the loop `event_loop` names; ImportError for `uvloop` when it is
    not installed (asked for by name, its absence must not pass silently)."""
    if loop_name(event_loop) == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def raise_open_file_limit() -> tuple[int, int]:
    """Raise this process's soft limit on open files to its hard limit, as Go's runtime does
    for every Go server; returns the soft limit before and after.

    Every connection (a client's, one towards CI, a callback's) is a file descriptor. Container
    runtimes differ: some start processes at 1,048,576, others (containerd 2.x, systemd units)
    at a soft 1,024 under a far higher hard limit, where the 1,025th descriptor fails: a client
    would see its connection refused, and a call towards CI would fail to connect, long before
    `server.max_connections`. The soft limit exists for programs that use `select` (which
    cannot see descriptors past 1,023); grpc and the event loops use epoll. Failing to raise it
    (a sandbox refusing `setrlimit`) leaves it as it was: the caller compares it with what the
    settings need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = UNLIMITED_FILES if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            return soft, soft
        return soft, wanted
    return soft, soft
