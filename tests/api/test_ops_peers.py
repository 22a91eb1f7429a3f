"""One peer address cannot hold every stream place of health and reflection calls
(`gateway.api.ops_calls`, `may_hold_another`): it takes a place only while fewer than the places
still free are its own.

Before, one peer opened health Watches (their requests sent, as a real Watch's are: long-lived
by design, so neither the receive time-out nor the reads' bound ends them) until every stream
place of `server.max_ops_calls` was its own, and every other client's reflection and Watches
were refused at the gate for as long as it kept them open.

A real gateway in this process over loopback: the peers that hold places are hand-made HTTP/2
clients bound to 127.0.0.2 and 127.0.0.3 (a gRPC channel cannot choose its source address), the
other client gRPC channels from 127.0.0.1, grpc's own reflection client among them.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.api.ops_calls import OWN_STREAMS, OpsCallLimit, stream_places
from gateway.api.server import RunningGateway
from gateway.config.settings import Settings
from tests.api.conftest import Start
from tests.api.test_connection_bounds import rich_status
from tests.api.test_ops_reads import WAIT_S, describe, ended, until
from tests.fixtures.raw_h2 import RawClient, frame

CALLS = 20
STREAMS = stream_places(CALLS)  # 18, the other 2 kept for Checks
WATCH = "/grpc.health.v1.Health/Watch"
WATCH_REQUEST = frame(health_pb2.HealthCheckRequest().SerializeToString())
SERVING = health_pb2.HealthCheckResponse.SERVING
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def calls(gateway: RunningGateway, *, health_port: bool = False) -> OpsCallLimit:
    assert gateway.guards is not None
    guards = gateway.guards
    return guards.health_port_calls if health_port else guards.api_calls


def peer(address: str, source: str) -> RawClient:
    client = RawClient(address, source=source)
    client.ignore_stream_limit()
    return client


def watch(client: RawClient, count: int) -> list[int]:
    """`count` Watches, each sending its request at once, as a gRPC client's does, one after
    the other answered (its first state, or refused)."""
    streams = []
    for _ in range(count):
        streams.append(stream := client.open(WATCH))
        client.send(stream, WATCH_REQUEST)
        client.headers(stream)
    return streams


def refused_for_its_own(client: RawClient, streams: list[int], held: int) -> None:
    for stream in streams:
        answer = client.status(stream)
        status = rich_status(answer)
        assert (status.code, status.reason) == (RESOURCE_EXHAUSTED, "OVERLOADED")
        assert status.metadata["limit"] == str(held) and status.retry_delay_ns > 0
        assert OWN_STREAMS in answer["grpc-message"].replace("%20", " ")


async def fill(limit: OpsCallLimit, client: RawClient, taken: int, held: dict[str, int]) -> None:
    """`client` opens as many Watches as there are stream places: `taken` of them are held,
    the rest refused at once, and afterwards `held` (peer -> places) is what every peer holds."""
    streams = await asyncio.to_thread(watch, client, STREAMS)
    mine = held[f"ipv4:{client.sock.getsockname()[0]}"]
    refused = await asyncio.to_thread(ended, client, streams, STREAMS - taken)
    await asyncio.to_thread(refused_for_its_own, client, refused, mine)
    await until(lambda: limit.held() == held, f"places held as {held}")


async def test_one_peer_holding_watches_cannot_keep_other_clients_out(
    bounded: Start, settings: Settings
) -> None:
    """On each port: one peer (127.0.0.2) takes half the stream places at most (it holds no
    more than it leaves free), a second (127.0.0.3) half the rest, and a third client's
    Watches, reflection and Checks are still served; the places come back as a peer goes."""
    gateway = await bounded(
        base=replace(settings, health_listen="127.0.0.1:0"), max_ops_calls=CALLS
    )
    assert gateway.health_address is not None and gateway.guards is not None
    await shared_fairly(gateway.address, gateway.guards.api_calls, reflection=True)
    await shared_fairly(gateway.health_address, gateway.guards.health_port_calls, reflection=False)


async def shared_fairly(address: str, limit: OpsCallLimit, *, reflection: bool) -> None:
    first = await asyncio.to_thread(peer, address, "127.0.0.2")
    second = await asyncio.to_thread(peer, address, "127.0.0.3")
    try:
        # 18 places: the first peer takes 9 (a 10th would leave it holding more than the 8
        # then free), the second 5 of the 9 left (then 4 free).
        await fill(limit, first, 9, {"ipv4:127.0.0.2": 9})
        both = {"ipv4:127.0.0.2": 9, "ipv4:127.0.0.3": 5}
        await fill(limit, second, 5, both)

        # Another client (127.0.0.1) is served: a Watch, reflection (API port), a Check.
        async with grpc.aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            call = health.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
            assert (await call.read()).status == SERVING
            if reflection:
                inputs = await asyncio.to_thread(describe, address)
                assert "ci.media.v1.SubmitMediaJobRequest" in inputs
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
            assert answer.status == SERVING
            call.cancel()
        await until(lambda: limit.held() == both, "the other client's Watch given back")
    finally:
        first.close()
    try:
        # The first peer gone, its places are free again, and the second may take more: 4 (it
        # holds 9 then, with 9 free).
        await until(lambda: limit.held() == {"ipv4:127.0.0.3": 5}, "the first peer's places")
        await fill(limit, second, 4, {"ipv4:127.0.0.3": 9})
    finally:
        second.close()
