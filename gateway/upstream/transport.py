"""HTTP I/O towards CI: the only module that imports aiohttp's client.

It sends one request and returns status, headers and a size-capped body, nothing more: no
signing, no retries, no XML. Every aiohttp/asyncio failure is translated here, in one place,
into `TransportError` with `sent` telling whether the request may have reached CI (which decides
whether a job submit may be replayed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from gateway.errors import TransportError, UpstreamProtocolError, UpstreamTimeout

_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class HttpRequest:
    method: str
    # Already percent-encoded; sent as is.
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    body: bytes


class Transport:
    """One shared aiohttp session with a bounded connection pool."""

    def __init__(self, *, max_body_bytes: int, pool_size: int = 100) -> None:
        self._max_body_bytes = max_body_bytes
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=60)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # No cookies: CI sets none and a shared jar would mix callers.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
                # No Content-Type of aiohttp's own either: it would label a body-less PUT (CI's
                # cancel) `application/octet-stream`; a body's type is set, and signed, by the
                # client.
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, request: HttpRequest, *, connect_timeout: float, total_timeout: float
    ) -> HttpResponse:
        """Send once. `total_timeout` bounds the whole exchange, body included."""
        session = self._ensure_session()
        timeout = aiohttp.ClientTimeout(
            total=total_timeout, sock_connect=min(connect_timeout, total_timeout)
        )
        try:
            async with session.request(
                request.method,
                URL(request.url, encoded=True),
                headers=dict(request.headers),
                data=request.body,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                body = await self._read_capped(response)
                return HttpResponse(response.status, response.reason or "", response.headers, body)
        except aiohttp.ConnectionTimeoutError as exc:
            raise UpstreamTimeout("timed out connecting to CI", sent=False) from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(
                f"cannot connect to CI: {exc.strerror or 'refused'}", sent=False
            ) from exc
        except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
            raise UpstreamTimeout("timed out waiting for CI's answer", sent=True) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise TransportError("CI closed the connection before answering", sent=True) from exc
        except aiohttp.ClientPayloadError as exc:
            raise TransportError("CI's answer was cut short", sent=True) from exc
        except (aiohttp.ClientResponseError, aiohttp.ClientOSError) as exc:
            raise TransportError(
                f"connection to CI failed: {type(exc).__name__}", sent=True
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"HTTP client error: {type(exc).__name__}", sent=True) from exc

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._max_body_bytes
        if response.content_length is not None and response.content_length > limit:
            raise UpstreamProtocolError(
                f"CI's answer of {response.content_length} bytes exceeds the {limit}-byte limit",
                http_status=response.status,
            )
        chunks: list[bytes] = []
        size = 0
        # Bounded: stops at EOF or one chunk past the limit, whichever comes first.
        while True:
            chunk = await response.content.read(_READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise UpstreamProtocolError(
                    f"CI's answer exceeds the {limit}-byte limit", http_status=response.status
                )
            chunks.append(chunk)
