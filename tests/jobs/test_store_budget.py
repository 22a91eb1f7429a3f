"""The embedded submit store is bounded by memory, not by a record count: callers that send
their own request_id on every submit must not grow a gateway past its pod's memory limit. What
it evicts early is recovered by the reconcile (tests/integration/test_resilience.py)."""

from __future__ import annotations

import logging
import os
import tracemalloc
from dataclasses import replace

import pytest

from gateway.config.settings import Settings, Shared
from gateway.jobs.exactly_once import (
    DEFAULT_STORE_MAX_BYTES,
    InMemorySubmitStore,
    SubmitRecord,
    record_bytes,
)
from gateway.jobs.runtime import start_tracking
from tests.conftest import BUCKET, REGION

NOW = 1_700_000_000.0


def record(detail_bytes: int | None, at: float = NOW) -> SubmitRecord:
    detail = None if detail_bytes is None else os.urandom(detail_bytes)
    return SubmitRecord(os.urandom(32).hex(), detail, at, at)


@pytest.mark.parametrize("detail_bytes", [None, 120, 700, 6000])
async def test_the_budget_counts_what_the_records_really_hold(detail_bytes: int | None) -> None:
    """`record_bytes` within 15% of what tracemalloc sees, for in-doubt records and for small
    and large answers alike: a budget that undercounts would not bound anything."""
    store = InMemorySubmitStore(clock=lambda: NOW)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):  # each key, fingerprint, answer and record made here, kept there
            await store.put(f"req-{os.urandom(16).hex()}", record(detail_bytes))
        real = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert abs(store.held_bytes - real) / real < 0.15, (store.held_bytes, real)


async def test_past_its_budget_the_store_evicts_the_oldest_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    size = record_bytes("req-0000", record(700))
    store = InMemorySubmitStore(max_bytes=size * 10, clock=lambda: NOW)
    with caplog.at_level(logging.WARNING, logger="gateway.jobs.exactly_once"):
        for i in range(25):
            await store.claim(f"req-{i:04d}", record(700))
            assert store.held_bytes <= store.max_bytes
    assert len(store) == 10
    assert await store.get("req-0014") is None  # the oldest went first
    assert [await store.get(f"req-{i:04d}") is not None for i in range(15, 25)] == [True] * 10
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # at most one every few minutes, not one per eviction
    assert "submit store full: 1 records evicted" in warnings[0]
    assert "req-" not in warnings[0]  # no caller's id in the log


async def test_replacing_and_deleting_keep_the_count_exact() -> None:
    store = InMemorySubmitStore(clock=lambda: NOW)
    await store.claim("req-a", record(None))  # in doubt
    await store.put("req-a", record(900))  # its answer came: replaced, not added
    await store.put("req-b", record(300))
    assert store.held_bytes == record_bytes("req-a", record(900)) + record_bytes(
        "req-b", record(300)
    )
    await store.delete("req-a")
    await store.delete("req-a")  # twice: nothing more to take off
    assert store.held_bytes == record_bytes("req-b", record(300))


async def test_expired_records_go_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    now = [NOW]
    store = InMemorySubmitStore(retention_s=60, clock=lambda: now[0])
    for i in range(5):
        await store.put(f"old-{i}", record(500, at=NOW))
    now[0] = NOW + 61
    with caplog.at_level(logging.WARNING, logger="gateway.jobs.exactly_once"):
        await store.put("new", record(500, at=now[0]))
    assert len(store) == 1 and store.held_bytes == record_bytes("new", record(500))
    assert not caplog.records


async def test_the_setting_sizes_the_embedded_store() -> None:
    settings = Settings(default_bucket=BUCKET, default_region=REGION)
    assert settings.shared.submit_store_max_mb * 2**20 == DEFAULT_STORE_MAX_BYTES
    sized = replace(settings, shared=Shared(submit_store_max_mb=1.5))
    runtime = await start_tracking(sized, client=None)  # type: ignore[arg-type]
    try:
        store = runtime.submit_store
        assert isinstance(store, InMemorySubmitStore)
        assert store.max_bytes == int(1.5 * 2**20)
    finally:
        await runtime.close()
    with pytest.raises(ValueError, match="submit_store_max_mb"):
        Shared(submit_store_max_mb=0)
