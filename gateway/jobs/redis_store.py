"""`SubmitStore` in Redis: a submit retried on another replica finds the first one's record.

The embedded store (`gateway.jobs.exactly_once.InMemorySubmitStore`) is per process, so behind
a load balancer a client's retry with the same request_id may reach a replica that never saw it
and would submit again. With this store every replica reads and writes the same records:
`ci-gateway:submit:<key>` -> JSON of the `SubmitRecord`, kept `RETENTION_S` (24 h) by a Redis
TTL, so Redis does the expiry and the memory bound (with its own eviction policy). The key is the
request_id in sidecar mode, `<client name>|<request_id>` in shared mode
(`gateway.jobs.exactly_once.RequestKey`).

Two replicas leading the same request_id at the same instant: `claim` is Redis `SET NX`, so
exactly one of them stores its record and sends; the other finds the record (with the leader's
lease) and waits for its outcome instead of sending in parallel. Taking over a record left in
doubt is atomic too (`take_over`: `WATCH`, compare, `MULTI`/`SET`), so of two replicas retrying
it at once one leads and the other waits.

A Redis failure is `SubmitStoreUnavailable` (UNAVAILABLE, reason SUBMIT_STORE_UNAVAILABLE):
retrying with the same request_id is safe, because the coordinator writes its in-doubt record
before it sends anything to CI, and reconciles with CI when a caller's request_id has no record
(Redis restarted empty, or evicted it). `ping` is the readiness probe
(`gateway.api.health.submit_store_check`): a replica whose Redis is down serves no submit and
leaves the rotation until it answers again.
"""

from __future__ import annotations

import base64
import json

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from gateway.errors import SubmitStoreUnavailable
from gateway.jobs.exactly_once import RETENTION_S, SubmitRecord

KEY_PREFIX = "ci-gateway:submit:"


def encode_record(record: SubmitRecord) -> bytes:
    detail = record.jobs_detail
    return json.dumps(
        {
            "fingerprint": record.fingerprint,
            "jobs_detail": None if detail is None else base64.b64encode(detail).decode(),
            "first_attempt_at": record.first_attempt_at,
            "updated_at": record.updated_at,
            "leader_until": record.leader_until,
        }
    ).encode()


def decode_record(data: bytes) -> SubmitRecord:
    document = json.loads(data)
    detail = document["jobs_detail"]
    return SubmitRecord(
        fingerprint=str(document["fingerprint"]),
        jobs_detail=None if detail is None else base64.b64decode(detail),
        first_attempt_at=float(document["first_attempt_at"]),
        updated_at=float(document["updated_at"]),
        leader_until=float(document.get("leader_until", 0.0)),
    )


class RedisSubmitStore:
    """Implements `gateway.jobs.exactly_once.SubmitStore` on a shared Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        retention_s: float = RETENTION_S,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self._redis = client
        self._ttl_s = max(int(retention_s), 1)
        self._prefix = prefix

    async def ping(self) -> None:
        """Raise `SubmitStoreUnavailable` unless Redis answers: the readiness probe."""
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise SubmitStoreUnavailable(exc) from exc

    async def get(self, request_id: str) -> SubmitRecord | None:
        try:
            data = await self._redis.get(self._prefix + request_id)
        except (RedisError, OSError) as exc:
            raise SubmitStoreUnavailable(exc) from exc
        return None if data is None else _decoded(data)

    async def claim(self, request_id: str, record: SubmitRecord) -> SubmitRecord | None:
        key = self._prefix + request_id
        for _ in range(3):  # bounded: only a record expiring between the two commands loops
            try:
                stored = await self._redis.set(key, encode_record(record), ex=self._ttl_s, nx=True)
            except (RedisError, OSError) as exc:
                raise SubmitStoreUnavailable(exc) from exc
            if stored:
                return None
            existing = await self.get(request_id)
            if existing is not None:
                return existing
        raise SubmitStoreUnavailable(RuntimeError("the record kept vanishing"))

    async def take_over(
        self, request_id: str, expected: SubmitRecord, record: SubmitRecord
    ) -> bool:
        """`WATCH` the key, compare, `MULTI`/`SET`: a write by another replica in between
        aborts the transaction, and that replica leads."""
        key = self._prefix + request_id
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                data = await pipe.get(key)
                if data is None or _decoded(data) != expected:
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                pipe.set(key, encode_record(record), ex=self._ttl_s)
                await pipe.execute()
        except WatchError:
            return False
        except (RedisError, OSError) as exc:
            raise SubmitStoreUnavailable(exc) from exc
        return True

    async def put(self, request_id: str, record: SubmitRecord) -> None:
        try:
            await self._redis.set(self._prefix + request_id, encode_record(record), ex=self._ttl_s)
        except (RedisError, OSError) as exc:
            raise SubmitStoreUnavailable(exc) from exc

    async def delete(self, request_id: str) -> None:
        try:
            await self._redis.delete(self._prefix + request_id)
        except (RedisError, OSError) as exc:
            raise SubmitStoreUnavailable(exc) from exc


def _decoded(data: object) -> SubmitRecord:
    """A stored record, whether the client hands back bytes or (decode_responses) text."""
    return decode_record(data if isinstance(data, bytes) else str(data).encode())
