"""The Redis `SubmitStore` against a real Redis: records round-trip and expire after 24 h."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from gateway.errors import SubmitStoreUnavailable
from gateway.jobs.redis_store import KEY_PREFIX, RedisSubmitStore
from gateway.jobs.submit import RETENTION_S, SubmitRecord


async def test_records_round_trip_with_a_24_hour_ttl(redis_client: aioredis.Redis) -> None:
    store = RedisSubmitStore(redis_client)
    in_doubt = SubmitRecord("f" * 64, None, 1700000000.5, 1700000000.5)
    done = SubmitRecord("f" * 64, b"\x0a\x03abc\x00\xff", 1700000000.5, 1700000009.25)

    assert await store.get("r1") is None
    await store.put("r1", in_doubt)
    assert await store.get("r1") == in_doubt
    await store.put("r1", done)
    assert await store.get("r1") == done
    ttl = await redis_client.ttl(KEY_PREFIX + "r1")
    assert RETENTION_S - 60 <= ttl <= RETENTION_S

    await store.delete("r1")
    assert await store.get("r1") is None
    assert await redis_client.exists(KEY_PREFIX + "r1") == 0


async def test_an_unreachable_redis_is_unavailable_not_a_crash() -> None:
    from tests.jobs.conftest import free_port

    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(SubmitStoreUnavailable) as caught:
            await RedisSubmitStore(client).get("r1")
    finally:
        await client.aclose()
    assert caught.value.status.name == "UNAVAILABLE"


async def test_claim_is_atomic_so_one_replica_leads(redis_client: aioredis.Redis) -> None:
    """Two replicas claiming one request_id at once: exactly one stores its record."""
    import asyncio

    replica_a, replica_b = RedisSubmitStore(redis_client), RedisSubmitStore(redis_client)
    ours = SubmitRecord("f" * 64, None, 1700000000.0, 1700000000.0, leader_until=1700000070.0)
    theirs = SubmitRecord("f" * 64, None, 1700000001.0, 1700000001.0, leader_until=1700000071.0)
    results = await asyncio.gather(
        replica_a.claim("r-claim", ours), replica_b.claim("r-claim", theirs)
    )
    assert results.count(None) == 1
    winner = ours if results[0] is None else theirs
    (existing,) = [r for r in results if r is not None]
    assert existing == winner  # the loser sees the winner's record, lease included
    assert await replica_a.get("r-claim") == winner
