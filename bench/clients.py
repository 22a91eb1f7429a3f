"""The three ways to call CI that the benchmarks compare, each doing the same three operations.

* `GatewayClient`: gRPC (`grpc.aio`, one channel) to the gateway, which calls the emulator.
* `DirectClient`: the floor. One aiohttp session straight to the emulator, every request signed
  with `gateway.upstream.signing` as the gateway signs it (same headers, Content-MD5, a fresh
  time window per call); the answer is read and its status checked, but not decoded.
* `TransportDirectClient`: the same direct signed call made through the gateway's own HTTP
  client (`gateway.upstream.transport.Transport`) instead of aiohttp: the floor of the gateway's
  own stack, reported beside the aiohttp floor the issue defines so neither flatters the other.
* `SdkClient`: the official `cos-python-sdk-v5` (`qcloud_cos`), pointed at the emulator as an
  HTTP proxy (`Scheme="http", Proxies={"http": url}`, as `tests/ci_emulator/test_official_sdk.py`
  does), with a `requests` connection pool as large as its thread pool. Synchronous.

  One correction keeps that fair: urllib3 opens *proxy* connections without its default
  `TCP_NODELAY`, and the SDK writes a POST's headers and body in two writes, so through a proxy
  every submit waits ~40 ms for loopback's delayed ACK (Nagle). Talking to CI directly, urllib3
  sets `TCP_NODELAY`; `_NoDelayAdapter` restores it, so the SDK is measured as it really runs.

Every client raises on anything but a successful answer, so the load loops count it as an error.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import aiohttp
import grpc
import requests
import requests.adapters
from urllib3.connection import HTTPConnection

from bench.common import BUCKET, CI_HOST, OBJECT_KEY, REGION, SECRET_ID, SECRET_KEY, signed
from gateway._proto import media_pb2, service_pb2, service_pb2_grpc
from gateway.upstream import signing, xml_codec
from gateway.upstream.transport import HttpRequest, Transport

LIST_SIZE = 10
RPC_TIMEOUT_S = 30.0

SUBMIT_RPC = service_pb2.SubmitMediaJobRequest(
    request=media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object=OBJECT_KEY))
)
SUBMIT_BODY = xml_codec.encode(
    media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object=OBJECT_KEY)), root="Request"
)
# What the gateway sends for ListMediaJobs(size=10): validation.validate_list's parameters.
LIST_PARAMS: dict[str, str] = {"tag": "MediaInfo", "size": str(LIST_SIZE), "nextToken": ""}


def _submit_body(user_data: str, object_key: str = OBJECT_KEY) -> bytes:
    request = media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object=object_key))
    if user_data:
        request.operation.user_data = user_data
    return xml_codec.encode(request, root="Request")


class CallFailed(RuntimeError):
    """A call answered, but not with success."""


class GatewayClient:
    def __init__(self, address: str) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = service_pb2_grpc.MediaJobServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close(None)

    async def submit(
        self, timeout_s: float = RPC_TIMEOUT_S, user_data: str = "", object_key: str = OBJECT_KEY
    ) -> str:
        rpc = SUBMIT_RPC
        if user_data or object_key != OBJECT_KEY:
            rpc = service_pb2.SubmitMediaJobRequest()
            rpc.CopyFrom(SUBMIT_RPC)
            rpc.request.input.object = object_key
            if user_data:
                rpc.request.operation.user_data = user_data
        reply = await self._stub.SubmitMediaJob(rpc, timeout=timeout_s)
        return reply.jobs_detail.job_id

    async def describe(self, job_id: str) -> None:
        reply = await self._stub.DescribeMediaJobs(
            service_pb2.DescribeMediaJobsRequest(job_ids=[job_id]), timeout=RPC_TIMEOUT_S
        )
        if len(reply.jobs_detail) != 1:
            raise CallFailed(f"describe found {len(reply.jobs_detail)} jobs")

    async def list(self) -> None:
        reply = await self._stub.ListMediaJobs(
            service_pb2.ListMediaJobsRequest(size=LIST_SIZE), timeout=RPC_TIMEOUT_S
        )
        if not reply.jobs_detail:
            raise CallFailed("list found no jobs")


def _signed_headers(
    method: str, path: str, params: dict[str, str], body: bytes | None
) -> dict[str, str]:
    """The headers `gateway.upstream.CiClient._send` sends, signed the same way."""
    headers = {"Host": CI_HOST}
    if body is not None:
        headers["Content-Type"] = "application/xml"
        headers["Content-Length"] = str(len(body))
        headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - CI's integrity check
    return signed(headers, method=method, path=path, params=params, valid_s=600)


class _DirectCalls:
    """The three operations as signed requests; subclasses say how a request is sent."""

    _base: str

    async def _call(
        self, method: str, path: str, params: dict[str, str], body: bytes | None
    ) -> bytes:
        headers = _signed_headers(method, path, params, body)
        status, data = await self._send(method, _url(self._base, path, params), headers, body)
        if status != 200:
            raise CallFailed(f"{method} {path}: HTTP {status} {data[:200]!r}")
        return data

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        raise NotImplementedError

    async def submit(self, user_data: str = "", object_key: str = OBJECT_KEY) -> None:
        plain = not user_data and object_key == OBJECT_KEY
        body = SUBMIT_BODY if plain else _submit_body(user_data, object_key)
        await self._call("POST", "/jobs", {}, body)

    async def describe(self, job_id: str) -> None:
        await self._call("GET", f"/jobs/{job_id}", {}, None)

    async def list(self) -> None:
        await self._call("GET", "/jobs", LIST_PARAMS, None)


def _url(base: str, path: str, params: dict[str, str]) -> str:
    if not params:
        return base + path
    return (
        base
        + path
        + "?"
        + "&".join(f"{signing.encode(k)}={signing.encode(v)}" for k, v in params.items())
    )


class DirectClient(_DirectCalls):
    def __init__(self, emulator_url: str) -> None:
        self._base = emulator_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        await self._session.close()

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        async with self._session.request(method, url, headers=headers, data=body) as response:
            return response.status, await response.read()


class TransportDirectClient(_DirectCalls):
    """`DirectClient`'s calls through the gateway's `Transport` (what `CiClient` sends with)."""

    def __init__(self, emulator_url: str) -> None:
        self._base = emulator_url.rstrip("/")
        self._transport = Transport(max_body_bytes=16 * 1024 * 1024)

    async def close(self) -> None:
        await self._transport.close()

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        response = await self._transport.send(
            HttpRequest(method, url, headers, body), connect_timeout=5.0, total_timeout=30.0
        )
        return response.status, response.body


class _NoDelayAdapter(requests.adapters.HTTPAdapter):
    """Proxy connections with urllib3's usual socket options (TCP_NODELAY), as direct ones."""

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs.setdefault("socket_options", HTTPConnection.default_socket_options)
        return super().proxy_manager_for(proxy, **proxy_kwargs)


class SdkClient:
    def __init__(
        self, emulator_url: str, pool_size: int, *, nodelay: bool = True, retry: int = 0
    ) -> None:
        from qcloud_cos import CosConfig, CosS3Client

        self._session = requests.Session()
        adapter_type = _NoDelayAdapter if nodelay else requests.adapters.HTTPAdapter
        adapter = adapter_type(pool_connections=1, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        config = CosConfig(
            Region=REGION,
            SecretId=SECRET_ID,
            SecretKey=SECRET_KEY,
            Scheme="http",
            Proxies={"http": emulator_url},
        )
        # retry=0 by default: a failure shows as an error at once instead of after the SDK's
        # sleep(1), sleep(2), ...; the fault benchmark passes the SDK's own default (3).
        self._client: Any = CosS3Client(config, retry=retry, session=self._session)

    def close(self) -> None:
        self._session.close()

    def submit(self, user_data: str = "", object_key: str = OBJECT_KEY) -> None:
        job: dict[str, Any] = {"Tag": "MediaInfo", "Input": {"Object": object_key}}
        if user_data:
            job["Operation"] = {"UserData": user_data}
        created = self._client.ci_create_media_jobs(Bucket=BUCKET, Jobs=job)
        if created["JobsDetail"][0]["State"] != "Submitted":
            raise CallFailed("SDK submit did not create a job")

    def describe(self, job_id: str) -> None:
        self._client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)

    def list(self) -> None:
        self._client.ci_list_media_jobs(Bucket=BUCKET, Tag="MediaInfo", Size=LIST_SIZE)
