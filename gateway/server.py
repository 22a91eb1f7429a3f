"""Builds the gRPC server around the servicer and owns its lifecycle.

`start_gateway` returns a running server bound to its port (port 0 picks a free one, which is
what tests and the demo use); `RunningGateway.stop` refuses new RPCs, lets in-flight ones finish
within the grace period, then closes the HTTP session towards CI, in that order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc

from ci.media.v1 import service_pb2_grpc
from gateway.config import Settings
from gateway.credentials import CredentialsProvider
from gateway.service import MediaJobService
from gateway.telemetry import Telemetry
from gateway.transport import Transport
from gateway.upstream import CiClient

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass
class RunningGateway:
    server: grpc.aio.Server
    port: int
    address: str
    client: CiClient

    async def stop(self, grace_s: float = 5.0) -> None:
        await self.server.stop(grace_s)
        await self.client.close()


async def start_gateway(
    settings: Settings,
    credentials: CredentialsProvider,
    *,
    listen: str | None = None,
    telemetry: Telemetry | None = None,
) -> RunningGateway:
    """Start serving on `listen` (default `settings.listen`)."""
    client = CiClient(
        settings=settings,
        credentials=credentials,
        transport=Transport(max_body_bytes=settings.max_response_bytes),
        telemetry=telemetry,
    )
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    service_pb2_grpc.add_MediaJobServiceServicer_to_server(
        MediaJobService(client, settings), server
    )
    address = listen or settings.listen
    port = server.add_insecure_port(address)
    if port == 0:
        await client.close()
        raise OSError(f"cannot listen on {address}")
    await server.start()
    host = address.rsplit(":", 1)[0]
    bound = f"{host}:{port}"
    log.info("gateway listening on %s (credentials from %s)", bound, credentials.name)
    return RunningGateway(server, port, bound, client)
