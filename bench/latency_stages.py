"""The stages of one call, read from `perf script` output: what `bench.latency_trace` prints.

Pure functions over text, so they are tested without perf (`tests/test_bench_harness.py`).

Two recordings, both on CLOCK_MONOTONIC (`perf record -k mono`, the clock `time.perf_counter`
reads, so the client's own call windows line up with them):

* syscall tracepoints of the client, the gateway and the emulator (`SYSCALLS`): the moments a
  request or an answer is written or read, by which thread, on which file descriptor;
* `sched:sched_switch` on every CPU: which thread had each CPU at every moment, so each stage's
  time splits into the gateway's event loop, grpc's threads, the client, other processes of the
  machine (2 CPUs shared with other work) and idle (a CPU waiting for a wake-up).
"""

from __future__ import annotations

import bisect
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

SYSCALLS = ",".join(
    f"syscalls:sys_{edge}_{name}"
    for name in ("sendmsg", "recvmsg", "write", "writev", "read", "sendto", "recvfrom")
    for edge in ("enter", "exit")
)
SWITCHES = "sched:sched_switch"

GATEWAY_STAGES = (
    ("client sent", "the client's gRPC request written (sendmsg)"),
    ("gateway read", "read by grpc's threads in the gateway (recvmsg)"),
    ("loop woken", "the gateway's event loop woken by grpc.aio's poller"),
    ("CI request written", "the request to CI written, head and body in one write"),
    ("CI read", "read by the emulator"),
    ("CI answered", "the emulator's answer written"),
    ("answer read", "read by the gateway's event loop"),
    ("access line", "the access-log line written"),
    ("reply sent", "the gRPC reply written (sendmsg)"),
    ("client read", "read by the client's grpc threads"),
    ("done", "the client's call returned"),
)
DIRECT_STAGES = (
    ("client sent", "the client's HTTP request written"),
    ("CI read", "read by the emulator"),
    ("CI answered", "the emulator's answer written"),
    ("client read", "read by the client"),
    ("done", "the client's call returned"),
)
WHO = ("gateway loop", "gateway threads", "client", "emulator", "others", "idle")
"""Who had a CPU: the gateway's event-loop thread, its other threads (grpc's), the client
(every thread), the emulator, any other process, nobody."""

_SEND = frozenset({"sendmsg", "write", "writev", "sendto"})
_RECV = frozenset({"recvmsg", "read", "recvfrom"})
_SYSCALL = re.compile(r"^\s*(\d+)/(\d+)\s+([\d.]+):\s+syscalls:sys_(enter|exit)_(\w+):\s*(.*)$")
_SWITCH = re.compile(r"^\s*\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:.*\snext_pid=(\d+)")


@dataclass(frozen=True)
class Event:
    t: float
    pid: int
    tid: int
    edge: str  # "enter" | "exit"
    name: str
    fd: int  # an enter's fd; an exit carries its enter's (per thread); -1 if none
    value: int  # an enter's count/len, an exit's return value


def parse_syscalls(text: str) -> list[Event]:
    """`perf script -F pid,tid,time,event,trace` lines, e.g. `23/24 61768.358: syscalls:
    sys_exit_read: 0x340` or `... sys_enter_write: fd: 0x15, buf: 0x.., count: 0x285`,
    sorted by time."""
    events: list[Event] = []
    last_fd: dict[tuple[int, str], int] = {}
    for line in text.splitlines():
        match = _SYSCALL.match(line)
        if match is None:
            continue
        pid, tid, stamp, edge, name, args = match.groups()
        if edge == "enter":
            fields = dict(part.strip().split(": ", 1) for part in args.split(",") if ": " in part)
            fd = int(fields.get("fd", "-0x1"), 16)
            value = int(fields.get("count", fields.get("len", "0x0")), 16)
            last_fd[(int(tid), name)] = fd
        else:
            fd = last_fd.get((int(tid), name), -1)
            value = int(args.strip(), 16)
            if value >= 1 << 63:  # a negative errno, printed as unsigned
                value -= 1 << 64
        events.append(Event(float(stamp), int(pid), int(tid), edge, name, fd, value))
    events.sort(key=_at)
    return events


def _at(event: Event) -> float:
    return event.t


def _first(
    events: Sequence[Event], after: float, until: float, match: Callable[[Event], bool]
) -> Event | None:
    for index in range(bisect.bisect_left(events, after, key=_at), len(events)):
        event = events[index]
        if event.t > until:
            break
        if match(event):
            return event
    return None


def stages(
    events: Sequence[Event],
    windows: Sequence[tuple[float, float]],
    *,
    client: int,
    gateway: int | None,
    emulator: int,
) -> list[dict[str, float]]:
    """Per call (its [start, end] as the client timed it), each stage's time in seconds from
    its start, each found after the one before; a stage not found is left out of that call's
    row. `gateway` None: the direct call's stages."""
    out = []
    for start, end in windows:
        call = _Call(events, start, end)
        if gateway is None:
            _direct(call, client, emulator)
        else:
            _through_gateway(call, client, gateway, emulator)
        call.found["done"] = end
        out.append({name: at - start for name, at in call.found.items()})
    return out


class _Call:
    """One call's window, searched forward stage by stage."""

    def __init__(self, events: Sequence[Event], start: float, end: float) -> None:
        self.events = events
        self.cursor = start
        self.end = end
        self.found: dict[str, float] = {}

    def mark(self, name: str, match: Callable[[Event], bool]) -> Event | None:
        event = _first(self.events, self.cursor, self.end, match)
        if event is not None:
            self.found[name] = self.cursor = event.t
        return event


def _sent(pid: int) -> Callable[[Event], bool]:
    return lambda e: e.pid == pid and e.edge == "enter" and e.name in _SEND and e.value >= 64


def _read(pid: int) -> Callable[[Event], bool]:
    return lambda e: e.pid == pid and e.edge == "exit" and e.name in _RECV and e.value >= 64


def _direct(call: _Call, client: int, emulator: int) -> None:
    call.mark("client sent", _sent(client))
    call.mark("CI read", _read(emulator))
    call.mark("CI answered", _sent(emulator))
    call.mark("client read", _read(client))


def _through_gateway(call: _Call, client: int, gw: int, emulator: int) -> None:
    call.mark(
        "client sent", lambda e: e.pid == client and e.edge == "enter" and e.name == "sendmsg"
    )
    call.mark(
        "gateway read",
        lambda e: e.pid == gw and e.edge == "exit" and e.name == "recvmsg" and e.value > 0,
    )
    # grpc.aio's poller wakes the loop with one byte on a socket pair.
    call.mark("loop woken", lambda e: e.tid == gw and e.edge == "exit" and e.name == "recvfrom")
    request = call.mark(
        "CI request written",
        lambda e: e.tid == gw and e.edge == "enter" and e.name in ("write", "writev")
        and e.fd > 2 and e.value >= 64,
    )  # fmt: skip
    upstream = request.fd if request is not None else -1
    call.mark("CI read", _read(emulator))
    call.mark("CI answered", _sent(emulator))
    call.mark(
        "answer read",
        lambda e: e.tid == gw and e.edge == "exit" and e.name == "read" and e.fd == upstream
        and e.value > 0,
    )  # fmt: skip
    answered = call.cursor
    call.mark("access line", lambda e: e.pid == gw and e.edge == "enter" and e.fd == 2)
    call.cursor = answered  # the reply may leave before or after the line
    call.mark("reply sent", lambda e: e.pid == gw and e.edge == "enter" and e.name == "sendmsg")
    call.mark(
        "client read",
        lambda e: e.pid == client and e.edge == "exit" and e.name == "recvmsg" and e.value > 0,
    )


class Occupancy:
    """Who had each CPU when, from `perf script -F cpu,time,event,trace` lines of
    `sched:sched_switch`; `roles` maps a thread id to one of `WHO` (any other is "others", 0
    is "idle")."""

    def __init__(self, text: str, roles: Mapping[int, str]) -> None:
        self._roles = roles
        self._switches: dict[int, tuple[list[float], list[int]]] = {}
        for line in text.splitlines():
            match = _SWITCH.match(line)
            if match is not None:
                cpu, stamp, next_tid = match.groups()
                times, tids = self._switches.setdefault(int(cpu), ([], []))
                times.append(float(stamp))
                tids.append(int(next_tid))

    def _who(self, tid: int) -> str:
        return "idle" if tid == 0 else self._roles.get(tid, "others")

    def during(self, cpu: int, start: float, end: float) -> dict[str, float]:
        """Seconds of [start, end] each of `WHO` had `cpu` (nothing known before its first
        switch: that time is left out)."""
        times, tids = self._switches.get(cpu, ([], []))
        index = bisect.bisect_right(times, start) - 1
        held: dict[str, float] = dict.fromkeys(WHO, 0.0)
        if index < 0:
            if not times or times[0] >= end:
                return held
            index, start = 0, times[0]
        at, tid = start, tids[index]
        for switch in range(index + 1, len(times)):
            if times[switch] >= end:
                break
            held[self._who(tid)] += times[switch] - at
            at, tid = times[switch], tids[switch]
        held[self._who(tid)] += end - at
        return held


def table(
    rows: Sequence[dict[str, float]],
    named: Sequence[tuple[str, str]],
    occupancy: Occupancy | None = None,
    windows: Sequence[tuple[float, float]] = (),
    cpus: Mapping[str, int] | None = None,
) -> list[str]:
    """Markdown: each stage's median time from the call's start and from the stage before,
    and (with `occupancy`) the median µs each of `WHO` held each CPU of `cpus` (a label per
    CPU) in the interval since the stage before."""
    cpus = cpus or {}
    head = "| stage | what | ms from start (median) | +ms |"
    rule = "|---|---|---|---|"
    for label in cpus:
        head += f" {label} CPU: µs held (median) |"
        rule += "---|"
    lines = [head, rule]
    previous = 0.0
    for position, (stage, what) in enumerate(named):
        values = [row[stage] for row in rows if stage in row]
        if not values:
            lines.append(f"| {stage} | {what} | - | - |" + " - |" * len(cpus))
            continue
        at = statistics.median(values)
        line = f"| {stage} | {what} | {at * 1000:.3f} | +{(at - previous) * 1000:.3f} |"
        previous = at
        for cpu in cpus.values():
            line += f" {_held(rows, windows, named, position, occupancy, cpu)} |"
        lines.append(line)
    return lines


def _held(
    rows: Sequence[dict[str, float]],
    windows: Sequence[tuple[float, float]],
    named: Sequence[tuple[str, str]],
    position: int,
    occupancy: Occupancy | None,
    cpu: int,
) -> str:
    if occupancy is None:
        return "-"
    stage = named[position][0]
    spans: dict[str, list[float]] = {who: [] for who in WHO}
    for row, (start, _) in zip(rows, windows, strict=True):
        if stage not in row:
            continue
        before = max((row[name] for name, _ in named[:position] if name in row), default=0.0)
        for who, seconds in occupancy.during(cpu, start + before, start + row[stage]).items():
            spans[who].append(seconds * 1e6)
    medians = {who: statistics.median(v) for who, v in spans.items() if v}
    return ", ".join(f"{who} {us:.0f}" for who, us in medians.items() if us >= 5) or "-"
