"""A reflection stream whose client stops reading its answers holds its place until its
connection's age ends it (`server.max_connection_age_s` and its grace): the bound the gateway's
long-lived streams share (WatchMediaJob's too), not a write time-out of their own.

The client reads its socket (it answers grpc's pings, so keepalive never ends its connection)
but gives the stream no flow-control window, as a gRPC client that stops reading a call's
messages does once their window is full: grpc cannot write the stream's answer, the reflection
servicer waits at its `yield`, and no read of the next request is in progress, so the receive
time-out does not apply either. A real gateway in this process over loopback, its connections'
age short; the client speaks HTTP/2 itself (`tests.fixtures.raw_h2`), from 127.0.0.2.
"""

from __future__ import annotations

import asyncio
import time

import h2.settings
from grpc_reflection.v1alpha import reflection_pb2

from gateway.api.server import RunningGateway
from tests.api.conftest import Start
from tests.api.test_ops_reads import until
from tests.api.test_stream_cuts import writing
from tests.fixtures.raw_h2 import RawClient, frame

AGE_S = 1.0
GRACE_S = 1.0
# The age and its grace, grpc's jitter on the age (up to 10%) and room for a loaded machine.
CLOSED_WITHIN_S = AGE_S * 1.1 + GRACE_S + 10.0
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
LIST = frame(reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString())


def stalled_reflection(address: str) -> RawClient:
    """A reflection stream that asked for the service list and can be sent none of it."""
    client = RawClient(address, source="127.0.0.2")
    client.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    stream = client.open(REFLECTION)
    client.send(stream, LIST, end=False)
    client.headers(stream)  # grpc sends the answer's headers (no flow control on them)
    return client


async def test_a_reflection_stream_whose_client_stopped_reading_ends_with_its_connection(
    bounded: Start,
) -> None:
    gateway: RunningGateway = await bounded(
        max_connection_age_s=AGE_S, max_connection_age_grace_s=GRACE_S
    )
    assert gateway.guards is not None
    calls, reads = gateway.guards.api_calls, gateway.guards.api_reads
    client = await asyncio.to_thread(stalled_reflection, gateway.address)

    def stalled() -> bool:
        return (
            calls.held() == {"ipv4:127.0.0.2": 1}
            and writing("ServerReflectionInfo") == 1
            and reads.reading == 0
        )

    try:
        start = time.monotonic()
        # Its request read, its answer handed to grpc and never written: the stream holds its
        # place, with no read in progress; still so when its connection's age has come.
        await until(stalled, "the stream waiting to write its answer")
        await asyncio.to_thread(client.goaway_within, CLOSED_WITHIN_S)
        assert stalled()
        # Then the grace's end closes the connection, and the stream gives its place back.
        assert await asyncio.to_thread(client.closed, CLOSED_WITHIN_S)
        await until(lambda: calls.held() == {}, "the stalled stream's place given back")
        assert time.monotonic() - start < CLOSED_WITHIN_S
    finally:
        client.close()
