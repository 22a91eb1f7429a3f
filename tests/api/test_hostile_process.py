"""Hostile clients against a real `ci-gateway serve` process: what only a process shows.

- A request of millions of empty messages: 8 MiB on the wire, over a gigabyte once parsed. The
  gateway must refuse it from its bytes, and its peak memory must not move by that much.
- A client that stops reading: a reflection stream (open to anyone) asked for answers far larger
  than the kernel's socket buffers, whose client never reads them. grpc cannot finish stopping
  while that connection's last write is pending, and it stays pending until the kernel gives up
  (TCP_USER_TIMEOUT, the keepalive time-out), or for ever if the client reads a little now and
  then. SIGTERM must still end the process within its grace (plus the bounded waits after it),
  with status 0. The client speaks HTTP/2 itself (`tests.fixtures.raw_h2`): a gRPC client
  library always reads its socket, so none can be told to stop.
- Bytes that are no TLS sent to the TLS port: grpc's C core logged a line of its own (not JSON)
  for each such connection, as often as anyone liked.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from ci_emulator.server import RunningEmulator
from gateway.api.malformed import MAX_REQUEST_ELEMENTS
from gateway.credentials import Credentials
from tests.access.helpers import token_access_file
from tests.conftest import BUCKET, REGION
from tests.fixtures.accounts import Pki
from tests.fixtures.raw_h2 import RawClient, frame
from tests.fixtures.serve_process import ServeProcess, StartServe, gateway_env
from tests.integration.helpers import rich_error

REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
# Each answer is the API's proto files, about 33 KiB: the 240 requests the gateway's 8 KiB
# window lets a client send before it is read (`REQUEST_WINDOW_OPTIONS`) ask for far more than
# the kernel buffers between the two sockets hold (4 MiB for the sender at most, here): 7.7 MiB.
GRACE_S = 1.0
# The exit's bound: the grace, grpc's cut margin and close wait (1 s each), and the
# interpreter's own exit, with room for a loaded machine. Without the bound on grpc's stop, the
# process waits for the stalled connection: here (keepalive time-out 120 s) for minutes.
EXIT_BOUND_S = 15.0
WAIT_S = 30.0


async def serve(
    start: StartServe, emulator: RunningEmulator, credentials: Credentials, *args: str
) -> tuple[ServeProcess, str]:
    process = await start(
        "--listen", "127.0.0.1:0",
        "--default-bucket", BUCKET,
        "--default-region", REGION,
        "--endpoint-url", emulator.url,
        "--shutdown-grace-s", str(GRACE_S),
        "--keepalive-timeout-s", "120",
        *args,
        credentials=credentials,
    )  # fmt: skip
    listening = await process.line("gateway listening")
    return process, str(listening["address"])


def bomb(count: int) -> bytes:
    """A SubmitMediaJobsRequest whose `request` holds `count` empty operations, as bytes: two
    bytes each on the wire, about 330 each once parsed."""
    operations = b"\x12\x00" * count  # field 2 (`operation`), length 0
    length = len(operations)
    varint = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    return b"\x1a" + bytes(varint) + operations  # field 3 (`request`)


def peak_memory_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def test_a_request_of_millions_of_empty_messages_is_refused_before_it_is_parsed(
    emulator: RunningEmulator, credentials: Credentials, serve_processes: StartServe
) -> None:
    # Requests as large as they were before they had their own limit (8 MiB; now 128 KiB by
    # default, within which a bomb holds 65,000 at most), for an operator who raises it.
    raised = ("--max-request-bytes", str(8 * 1024 * 1024), "--max-request-memory-mb", "320")
    process, address = await serve(serve_processes, emulator, credentials, *raised)
    data = bomb(3_999_990)
    assert len(data) < 8 * 1024 * 1024  # within that limit
    before = peak_memory_kib(process.process.pid)
    options = [("grpc.max_send_message_length", len(data) + 1024)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        submit = channel.unary_unary("/ci.media.v1.MediaJobService/SubmitMediaJobs", None, None)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await submit(data, timeout=WAIT_S)
    # Parsed, it took 1.4 GB (measured); the bytes themselves pass through grpc and Python a
    # few times (8 MiB each).
    assert peak_memory_kib(process.process.pid) - before < 200 * 1024
    error = rich_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.error_info is not None and error.error_info.reason == "MALFORMED_REQUEST"
    assert f"holds more than {MAX_REQUEST_ELEMENTS} fields and list items" in error.message
    assert sum(emulator.state.operations.values()) == 0


def server_send_queue(server_port: int, client_port: int) -> int:
    """Bytes the gateway's socket of this connection holds unsent (the kernel's own count)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)) == (
                server_port,
                client_port,
            ):
                return int(fields[4].split(":")[0], 16)
    return 0


def ask_and_never_read(address: str) -> RawClient:
    """A client that tells the gateway it may send 2 GiB without waiting (both flow-control
    windows), shrinks its socket's receive buffer, sends as many reflection requests on one
    stream as its window takes, and from then on leaves its socket alone."""
    client = RawClient(address, receive_buffer=4096)
    client.open_window()
    request = reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="ci.media.v1.MediaJobService"
    ).SerializeToString()
    stream = client.open(REFLECTION)
    asked = client.h2.local_flow_control_window(stream) // len(frame(request))
    assert asked * 33 * 1024 > 4 * 1024 * 1024  # 240 requests, ~7.7 MiB of answers
    client.send(stream, frame(request) * asked, end=False)
    return client


async def stalled(reader: RawClient) -> None:
    """Until the gateway's socket holds over 64 KiB that the client does not read: the gateway
    is then blocked on the client (it has megabytes more to send). The kernel has no event for
    this; its count is read every 50 ms, for `WAIT_S` at most."""
    for _ in range(int(WAIT_S / 0.05)):
        if server_send_queue(reader.server_port, reader.client_port) > 64 * 1024:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway never filled the stalled client's connection")


async def test_sigterm_ends_the_process_in_time_though_a_client_stopped_reading(
    emulator: RunningEmulator, credentials: Credentials, serve_processes: StartServe
) -> None:
    process, address = await serve(serve_processes, emulator, credentials)
    reader = await asyncio.to_thread(ask_and_never_read, address)
    try:
        await stalled(reader)
        # Bounded: without the bound on grpc's stop, the process waits for the client.
        assert await process.terminate(timeout=EXIT_BOUND_S) == 0
        # Mostly grpc cannot close the stalled connection and the gateway says so before it
        # leaves; now and then grpc's stop gets it closed in time (seen about once in five
        # runs), and there is nothing to say. Either way the process ended in time.
        left_open = [
            line
            for line in process.lines
            if str(line.get("msg")).startswith("connections left open")
        ]
        assert all(line["level"] == "WARNING" for line in left_open)
        assert (await process.line("stopped", timeout=0.1))["cut_off"] == 0
    finally:
        reader.close()


async def test_connections_that_speak_no_tls_add_nothing_to_the_log(
    emulator: RunningEmulator,
    credentials: Credentials,
    serve_processes: StartServe,
    pki: Pki,
    tmp_path: Path,
) -> None:
    access = token_access_file(tmp_path / "access.toml", ("alpha", "tok-unused"), tls=pki.directory)
    env = gateway_env(credentials)
    env.pop("GRPC_VERBOSITY", None)  # the gateway's own default, whatever the test's is
    process = await serve_processes(
        "--listen", "127.0.0.1:0",
        "--endpoint-url", emulator.url,
        "--access-file", str(access),
        env=env,
    )  # fmt: skip
    host, port = str((await process.line("gateway listening"))["address"]).rsplit(":", 1)

    def speak_http() -> None:
        """What a misdirected HTTP probe or a scanner sends; read until the gateway closes."""
        with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n")
            while sock.recv(4096):  # bounded by the socket's time-out
                pass

    for _ in range(5):
        await asyncio.to_thread(speak_http)
    assert await process.terminate() == 0  # the whole log is read once the process is gone
    assert len(process.raw) == len(process.lines), "".join(
        line for line in process.raw if not line.startswith("{")
    )
