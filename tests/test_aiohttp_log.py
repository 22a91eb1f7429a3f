"""`gateway._aiohttp_log.server_logger` in front of a real aiohttp server on loopback: requests
it cannot parse are logged one short line each up to the budget, then counted (one line says so
as it begins), and the next window opens with one line saying how many were suppressed. The
clock is the test's own."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from gateway._aiohttp_log import server_logger
from gateway._aiohttp_stop import start_site, stop_runner
from gateway._log_budget import LineBudget
from gateway.logs import JsonFormatter
from tests.fixtures.logs import rendered

WAIT_S = 10.0
SECRET = "tok-" + "s3cr3t" * 4  # stands for a callback token in the refused request's path
BUDGET = LineBudget(lines=3, per_s=60.0)
_names = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Served:
    host: str
    port: int
    clock: Clock
    logger: str


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    clock = Clock()
    name = f"tests.aiohttp_log.{next(_names)}"  # a logger of this test's own
    runner = web.AppRunner(
        web.Application(),
        access_log=None,
        logger=server_logger(name, "probe", budget=BUDGET, clock=clock),
        shutdown_timeout=1.0,
    )
    host, port = await start_site(runner, "127.0.0.1:0", "test.listen")
    try:
        yield Served(host, port, clock, name)
    finally:
        await stop_runner(runner)


async def malformed(served: Served) -> bytes:
    """One request aiohttp cannot parse (a version it refuses), read until the server closes."""
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        writer.write(f"POST /cb/{SECRET} HTTP/1.7\r\nHost: a\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), WAIT_S)
    finally:
        writer.close()


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_a_flood_of_malformed_requests_is_logged_up_to_the_budget_then_summed_up(
    served: Served,
) -> None:
    with rendered(JsonFormatter(), served.logger) as logs:
        for _ in range(BUDGET.lines + 5):
            assert (await malformed(served)).startswith(b"HTTP/1.0 400 ")
        first = lines(logs.getvalue())
        served.clock.now += BUDGET.per_s - 0.001  # still the same window
        await malformed(served)
        assert lines(logs.getvalue()) == first
        served.clock.now += 0.001  # the next window
        await malformed(served)
        everything = lines(logs.getvalue())
    *refused_lines, notice = first
    assert [line["msg"].split(":")[0] for line in refused_lines] == [
        "probe request refused (400)"
    ] * 3
    # Said when it begins, so that a flood which then stops never reads as three lines.
    assert notice["level"] == "WARNING"
    assert notice["msg"] == (
        "probe requests refused as malformed: more than 3 lines in 60 s; the rest are counted, "
        "not logged, until a line comes after the window"
    )
    summary, refused = everything[len(first) :]
    assert summary["level"] == "WARNING"
    assert summary["msg"] == (
        "probe requests refused as malformed: 6 more suppressed (at most 3 lines per 60 s)"
    )
    assert refused["msg"].startswith("probe request refused (400): malformed HTTP from 127.0.0.1")
    assert all(line["level"] == "WARNING" and "exc" not in line for line in everything)
    assert SECRET not in logs.getvalue()


async def test_the_new_window_has_the_whole_budget_and_no_summary_when_nothing_was_suppressed(
    served: Served,
) -> None:
    with rendered(JsonFormatter(), served.logger) as logs:
        for _ in range(BUDGET.lines):
            await malformed(served)
        served.clock.now += BUDGET.per_s
        for _ in range(BUDGET.lines):
            await malformed(served)
    logged = lines(logs.getvalue())
    assert len(logged) == 2 * BUDGET.lines
    assert all("(400): malformed HTTP" in line["msg"] for line in logged)


async def test_a_clock_stepping_back_opens_a_new_window_rather_than_silencing_for_good(
    served: Served,
) -> None:
    with rendered(JsonFormatter(), served.logger) as logs:
        for _ in range(BUDGET.lines + 1):
            await malformed(served)
        served.clock.now -= 1000.0
        await malformed(served)
    _, summary, refused = lines(logs.getvalue())[BUDGET.lines :]
    assert summary["msg"].startswith("probe requests refused as malformed: 1 more suppressed")
    assert "(400): malformed HTTP" in refused["msg"]


def test_each_server_started_gets_a_fresh_budget_not_a_second_filter() -> None:
    name = f"tests.aiohttp_log.{next(_names)}"
    first = server_logger(name, "probe", budget=BUDGET)
    again = server_logger(name, "probe", budget=BUDGET)
    assert first is again is logging.getLogger(name)
    assert len(again.filters) == 1
    again.filters.clear()
