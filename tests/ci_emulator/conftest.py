"""Fixtures for the emulator's own tests: a real emulator on loopback and a signing client.

The client signs with `gateway.upstream.signing` (the same steps Tencent documents) but lets a test
control every input of the signature separately from what is sent, so each way CI can reject a
signature is one keyword argument away. It sends the percent-encoded path and query exactly as
given (no re-encoding by aiohttp), and the real CI/COS Host header.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from lxml import etree
from multidict import CIMultiDictProxy
from yarl import URL

from ci_emulator.config import BucketConfig, Credential, EmulatorConfig
from ci_emulator.samples import make_h264_aac_mp4
from ci_emulator.server import RunningEmulator
from gateway.upstream import signing
from gateway.upstream.xml_codec import parse_document
from tests.fixtures.servers import StartEmulator

BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"
SECRET_ID = "AKIDemulatorTestPermanentKey000000"
SECRET_KEY = "emulator-test-secret-key"
TEMP_SECRET_ID = "AKIDemulatorTestTemporaryKey00000"
TEMP_SECRET_KEY = "emulator-test-temporary-secret"
TOKEN = "Xk9+/token=With.Specials~ABC/def+ghi=="
EXPIRED_SECRET_ID = "AKIDemulatorTestExpiredKey0000000"
EXPIRED_SECRET_KEY = "emulator-test-expired-secret"
OTHER_BUCKET = "otherbucket-1250000000"
OTHER_REGION = "ap-beijing"
VIDEO_KEY = "input/a.mp4"
VIDEO_WIDTH, VIDEO_HEIGHT = 320, 240
TEXT_KEY = "input/notes.txt"
MISSING_KEY = "input/missing.mp4"
DONE = frozenset({"Success", "Failed"})


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real H.264/AAC MP4 per session; tests copy it into their own bucket folder."""
    path = tmp_path_factory.mktemp("emulator-media") / "a.mp4"
    return make_h264_aac_mp4(path, seconds=1.0, width=VIDEO_WIDTH, height=VIDEO_HEIGHT)


@pytest.fixture
def bucket_root(tmp_path: Path, sample_video: Path) -> Path:
    root = tmp_path / "bucket"
    (root / "input").mkdir(parents=True)
    shutil.copyfile(sample_video, root / VIDEO_KEY)
    shutil.copyfile(sample_video, root / "input" / "视频 a+b.mp4")
    (root / TEXT_KEY).write_text("not a video\n")
    (tmp_path / "outside.mp4").write_bytes((root / VIDEO_KEY).read_bytes())
    return root


@pytest.fixture
def emulator_config(bucket_root: Path, tmp_path: Path) -> EmulatorConfig:
    other_root = tmp_path / "other-bucket"
    other_root.mkdir()
    return EmulatorConfig(
        buckets=(
            BucketConfig(BUCKET, REGION, bucket_root),
            BucketConfig(OTHER_BUCKET, OTHER_REGION, other_root),
        ),
        credentials={
            SECRET_ID: SECRET_KEY,
            TEMP_SECRET_ID: Credential(TEMP_SECRET_KEY, token=TOKEN),
            EXPIRED_SECRET_ID: Credential(
                EXPIRED_SECRET_KEY, token=TOKEN, expires_at=time.time() - 1
            ),
        },
    )


@pytest.fixture
async def emu(emulators: StartEmulator, emulator_config: EmulatorConfig) -> RunningEmulator:
    return await emulators(emulator_config)


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def xml(self) -> etree._Element:
        return parse_document(self.body)

    @property
    def code(self) -> str:
        return self.xml().findtext("Code") or ""

    def ok(self) -> Reply:
        assert self.status == 200, (self.status, self.body)
        return self


@dataclass
class SignedClient:
    """Send CI/COS requests to the emulator, signed (or mis-signed) on demand."""

    session: aiohttp.ClientSession
    base_url: str
    secret_id: str = SECRET_ID
    secret_key: str = SECRET_KEY
    extra_headers: dict[str, str] = field(default_factory=dict)
    now: Callable[[], float] = time.time
    """The clock signature windows are cut from (pin it together with the emulator's)."""
    bucket: str = BUCKET
    region: str = REGION

    def host(self, service: str = "ci") -> str:
        return f"{self.bucket}.{service}.{self.region}.myqcloud.com"

    async def send(
        self,
        method: str,
        path: str,
        *,
        service: str = "ci",
        params: Mapping[str, str | None] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        raw_path: str | None = None,
        sign: bool = True,
        signed_path: str | None = None,
        signed_params: Mapping[str, str | None] | None = None,
        signed_headers: Mapping[str, str] | None = None,
        window: tuple[int, int] | None = None,
        authorization: str | None = None,
    ) -> Reply:
        """`path` is the decoded path the client signs; it goes on the wire percent-encoded.

        `signed_*` replace what goes into the signature (default: what is sent), which is how a
        test produces a mismatch; `authorization` replaces the whole header.
        """
        params = dict(params or {})
        sent = {"Host": self.host(service), **self.extra_headers, **(headers or {})}
        if body is not None:
            sent.setdefault("Content-Type", "application/xml")
            sent["Content-Length"] = str(len(body))
        if sign and authorization is None:
            now = int(self.now())
            start, end = window or (now - 60, now + 600)
            authorization = signing.authorization(
                secret_id=self.secret_id,
                secret_key=self.secret_key,
                method=method,
                host=None,
                path=signed_path if signed_path is not None else path,
                params=params if signed_params is None else signed_params,
                headers=signing.select_signed_headers(
                    sent if signed_headers is None else signed_headers
                ),
                start=start,
                end=end,
            )
        if authorization is not None:
            sent["Authorization"] = authorization
        query = "&".join(
            quote(name, safe="-_.~") + ("" if value is None else "=" + quote(value, safe="-_.~"))
            for name, value in params.items()
        )
        wire_path = raw_path if raw_path is not None else quote(path, safe="/-_.~")
        url = URL(self.base_url + wire_path + ("?" + query if query else ""), encoded=True)
        # A file-like body: aiohttp warns (an error here) about large raw bytes bodies.
        data = None if body is None else io.BytesIO(body)
        async with self.session.request(
            method, url, data=data, headers=sent, skip_auto_headers=("Content-Type",)
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    # Typical calls, so tests read as the operations they exercise.

    async def submit(self, key: str = VIDEO_KEY, **extra: str) -> Reply:
        return await self.send("POST", "/jobs", body=submit_body(key, **extra))

    async def submit_ok(self, key: str = VIDEO_KEY, **extra: str) -> str:
        reply = (await self.submit(key, **extra)).ok()
        job_id = reply.xml().findtext("JobsDetail/JobId")
        assert job_id
        return job_id

    async def describe(self, *job_ids: str) -> Reply:
        return await self.send("GET", "/jobs/" + ",".join(job_ids))

    async def list_jobs(self, params: Mapping[str, str] | None = None, **send: Any) -> Reply:
        """`GET /jobs` with tag=MediaInfo unless `params` says otherwise."""
        return await self.send(
            "GET", "/jobs", params={"tag": "MediaInfo", **(params or {})}, **send
        )

    async def cancel(self, job_id: str) -> Reply:
        return await self.send("PUT", f"/jobs/{job_id}", params={"cancel": None})


def pairs(element: etree._Element | None, path: str = ".") -> list[tuple[str, str | None]]:
    """(tag, text) of each child of the node at `path`, in document order."""
    assert element is not None
    node = element.find(path)
    assert node is not None, path
    return [(str(child.tag), child.text) for child in node]


def submit_body(key: str = VIDEO_KEY, **extra: str) -> bytes:
    """A MediaInfo submit; `extra` adds top-level nodes, `UserData`/`JobLevel` go in Operation."""
    operation = "".join(
        f"<{name}>{extra.pop(name)}</{name}>" for name in ("UserData", "JobLevel") if name in extra
    )
    nodes = "".join(f"<{name}>{value}</{name}>" for name, value in extra.items())
    return (
        f"<Request><Tag>MediaInfo</Tag><Input><Object>{key}</Object></Input>"
        f"{f'<Operation>{operation}</Operation>' if operation else ''}{nodes}</Request>"
    ).encode()


@pytest.fixture
async def client(emu: RunningEmulator) -> AsyncIterator[SignedClient]:
    async with aiohttp.ClientSession() as session:
        yield SignedClient(session, emu.url)


@pytest.fixture
async def temp_client(emu: RunningEmulator) -> AsyncIterator[SignedClient]:
    """Signs with the temporary credential and sends its token, as the Python SDK does."""
    async with aiohttp.ClientSession() as session:
        yield SignedClient(
            session,
            emu.url,
            secret_id=TEMP_SECRET_ID,
            secret_key=TEMP_SECRET_KEY,
            extra_headers={"x-ci-security-token": TOKEN},
        )


async def raw_exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send bytes no HTTP library would, read the whole answer (requests say Connection: close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def raw_request(method: str, target: str, headers: list[bytes], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode(), *headers, b"Connection: close", b"", body]
    return b"\r\n".join(lines)
