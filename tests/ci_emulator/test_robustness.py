"""Bad input never takes the emulator down: each gets CI's error XML, then a good request works.

Some cases cannot be produced by an HTTP client library (a POST with no length, raw non-UTF-8
header bytes), so they are written to a socket by hand.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_emulator.config import EmulatorConfig
from ci_emulator.errors import CiError
from ci_emulator.hosts import Target
from ci_emulator.ids import default_queue_id
from ci_emulator.probe_types import MediaInfo
from ci_emulator.server import RunningEmulator
from gateway.upstream import signing
from gateway.upstream.xml_codec import parse_document
from tests.ci_emulator.conftest import (
    BUCKET,
    DONE,
    REGION,
    SECRET_ID,
    SECRET_KEY,
    Reply,
    SignedClient,
    raw_exchange,
    raw_request,
    submit_body,
)
from tests.fixtures.servers import StartEmulator


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()  # noqa: S324 - Content-MD5 is what the protocol uses


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Request><Tag>MediaInfo</Tag><Input><Object>&lol3;</Object></Input></Request>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Request><Tag>MediaInfo</Tag><Input><Object>&xxe;</Object></Input></Request>"""

BODY_REFUSALS: list[tuple[str, bytes, int, str]] = [
    ("malformed", b"<Request><Tag>MediaInfo</Tag>", 400, "InvalidContent"),
    ("not xml", b"{\"Tag\": \"MediaInfo\"}", 400, "InvalidContent"),
    ("wrong root", b"<Response><Tag>MediaInfo</Tag></Response>", 400, "InvalidArgument"),
    ("entity bomb", BILLION_LAUGHS, 400, "InvalidContent"),
    ("external entity", XXE, 400, "InvalidContent"),
    ("non-UTF-8 bytes", submit_body().replace(b"MediaInfo", b"Media\xff\xfeInfo"), 400,
     "InvalidContent"),
    ("empty", b"", 400, "MissingContent"),
    ("whitespace", b"   \n", 400, "InvalidContent"),
    ("too large", b"<Request>" + b" " * (1024 * 1024) + b"</Request>", 413, "InvalidContent"),
]  # fmt: skip


async def assert_still_serving(client: SignedClient) -> None:
    (await client.submit()).ok()


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), BODY_REFUSALS, ids=[r[0] for r in BODY_REFUSALS]
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/jobs"), ("POST", "/mediainfo"), ("PUT", f"/queue/{default_queue_id(BUCKET)}")],
)
async def test_bad_bodies(
    client: SignedClient, method: str, path: str, case: str, body: bytes, status: int, code: str
) -> None:
    reply = await client.send(method, path, body=body)
    assert (reply.status, reply.code) == (status, code), reply.body
    assert reply.headers["Content-Type"] == "application/xml"
    await assert_still_serving(client)


async def test_an_oversized_chunked_body_is_cut_off(client: SignedClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"<Request>"
        for _ in range(64):  # 4 MiB in total, far past the 1 MiB limit
            yield b" " * 65536

    headers = {"Host": client.host(), "Authorization": _sign("POST", "/jobs", {}, client.host())}
    async with client.session.post(
        f"{client.base_url}/jobs", data=chunks(), headers=headers
    ) as response:
        assert response.status == 413
        assert parse_document(await response.read()).findtext("Code") == "InvalidContent"
    await assert_still_serving(client)


async def test_a_small_chunked_body_is_accepted(client: SignedClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield submit_body()

    headers = {"Host": client.host(), "Authorization": _sign("POST", "/jobs", {}, client.host())}
    async with client.session.post(
        f"{client.base_url}/jobs", data=chunks(), headers=headers
    ) as response:
        assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    ("case", "md5", "status"),
    [
        ("matching", base64.b64encode(_md5(submit_body())).decode(), 200),
        ("other body", base64.b64encode(_md5(b"other")).decode(), 400),
        ("not base64", "not base64!", 400),
        ("hex, not base64", _md5(submit_body()).hex(), 400),
    ],
)
async def test_content_md5(client: SignedClient, case: str, md5: str, status: int) -> None:
    reply = await client.send("POST", "/jobs", body=submit_body(), headers={"Content-MD5": md5})
    assert reply.status == status, reply.body
    if status != 200:
        assert reply.code == "InvalidContent"
    await assert_still_serving(client)


async def test_any_content_type_is_tolerated(client: SignedClient) -> None:
    for content_type in ("text/xml", "application/octet-stream", "application/json"):
        headers = {"Content-Type": content_type}
        (await client.send("POST", "/jobs", body=submit_body(), headers=headers)).ok()


ROUTING_REFUSALS: list[tuple[str, str, str, str | None, int, str]] = [
    # (case, method, path, host (None: the bucket's CI host), status, code)
    ("unknown path", "GET", "/nothing/here", None, 404, "InvalidUrl"),
    ("root", "GET", "/", None, 404, "InvalidUrl"),
    ("PATCH /jobs", "PATCH", "/jobs", None, 405, "MethodNotAllowed"),
    ("DELETE /jobs/<id>", "DELETE", "/jobs/j1", None, 405, "MethodNotAllowed"),
    ("GET /mediainfo", "GET", "/mediainfo", None, 405, "MethodNotAllowed"),
    ("unknown method token", "PURGE", "/jobs", None, 405, "MethodNotAllowed"),
    ("unknown method on a queue", "PURGE", "/queue", None, 405, "MethodNotAllowed"),
    ("picture queue API", "GET", "/picqueue", None, 501, "NotImplemented"),
    ("GET /queue/<id>", "GET", "/queue/p1", None, 405, "MethodNotAllowed"),
    ("POST /queue", "POST", "/queue", None, 405, "MethodNotAllowed"),
    ("unknown host", "GET", "/jobs", "example.com", 400, "InvalidHost"),
    ("ip host", "GET", "/jobs", "127.0.0.1", 400, "InvalidHost"),
    ("unknown bucket", "GET", "/jobs", "nobucket-1250000000.ci.ap-guangzhou.myqcloud.com", 404,
     "NoSuchBucket"),
    ("wrong region", "GET", "/jobs", f"{BUCKET}.ci.ap-beijing.myqcloud.com", 404,
     "NoSuchBucket"),
    ("CI on the new domain", "GET", "/jobs", f"{BUCKET}.ci.{REGION}.tencentcos.cn", 400,
     "InvalidHost"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "method", "path", "host", "status", "code"),
    ROUTING_REFUSALS,
    ids=[r[0] for r in ROUTING_REFUSALS],
)
async def test_routing_refusals(
    client: SignedClient,
    case: str,
    method: str,
    path: str,
    host: str | None,
    status: int,
    code: str,
) -> None:
    headers = {"Host": host} if host else None
    reply = await client.send(method, path, headers=headers, params={"tag": "MediaInfo"})
    assert (reply.status, reply.code) == (status, code), reply.body
    await assert_still_serving(client)


async def test_a_host_with_a_port_and_upper_case_is_routed(client: SignedClient) -> None:
    host = f"{BUCKET}.CI.{REGION}.myqcloud.com:80"
    (await client.list_jobs(headers={"Host": host})).ok()


async def test_invalid_utf8_in_the_path_and_query(client: SignedClient) -> None:
    reply = await client.send("GET", "/jobs/x", raw_path="/jobs/%ff%fe")
    assert (reply.status, reply.code) == (404, "InvalidUrl")
    url = f"{client.base_url}/jobs?tag=%ff"
    async with client.session.get(
        url, headers={"Host": client.host(), "Authorization": "x"}
    ) as response:
        assert response.status == 400
        assert parse_document(await response.read()).findtext("Code") == "InvalidArgument"
    await assert_still_serving(client)


# ---- raw sockets -------------------------------------------------------------------------------


def _sign(method: str, path: str, headers: dict[str, str], host: str) -> str:
    now = int(time.time())
    return signing.authorization(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        method=method,
        host=host,
        path=path,
        params={},
        headers=headers,
        start=now - 60,
        end=now + 600,
    )


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/jobs", ""),
        ("PUT", f"/queue/{default_queue_id(BUCKET)}", ""),
        # Without a body too: CI wants a Content-Length on every PUT and POST.
        ("PUT", "/jobs/jsomejob", "?cancel"),
        ("PUT", "/workflow/wsomeworkflow", "?active"),
        ("POST", "/triggerworkflow", "?workflowId=wsomeworkflow&object=input%2Fa.mp4"),
    ],
)
async def test_a_put_or_post_without_content_length_is_missing_content_length(
    emu: RunningEmulator, client: SignedClient, method: str, path: str, query: str
) -> None:
    host = client.host()
    auth = _sign(method, path, {}, host)  # the query is carried unsigned
    head = [f"Host: {host}".encode(), f"Authorization: {auth}".encode()]
    status, body = await raw_exchange(emu.port, raw_request(method, path + query, head))
    assert status == 411
    assert parse_document(body).findtext("Code") == "MissingContentLength"
    # The same request declaring its (empty) length gets past the check to the operation.
    status, body = await raw_exchange(
        emu.port, raw_request(method, path + query, [*head, b"Content-Length: 0"])
    )
    assert parse_document(body).findtext("Code") != "MissingContentLength", body
    await assert_still_serving(client)


async def test_non_utf8_header_values(emu: RunningEmulator, client: SignedClient) -> None:
    host = client.host()
    # Unsigned: the odd header is ignored like any unsigned header.
    auth = _sign("GET", "/jobs/j1", {}, host)
    request = raw_request(
        "GET",
        "/jobs/j1",
        [f"Host: {host}".encode(), f"Authorization: {auth}".encode(), b"X-Ci-Odd: \xff\xfe"],
    )
    status, body = await raw_exchange(emu.port, request)
    assert status == 200, body
    # Listed as signed: no client can have signed those bytes, so it cannot match.
    auth = _sign("GET", "/jobs/j1", {"x-ci-odd": "??"}, host)
    request = raw_request(
        "GET",
        "/jobs/j1",
        [f"Host: {host}".encode(), f"Authorization: {auth}".encode(), b"X-Ci-Odd: \xff\xfe"],
    )
    status, body = await raw_exchange(emu.port, request)
    assert (status, parse_document(body).findtext("Code")) == (403, "SignatureDoesNotMatch")
    # In the Host header: not a host CI serves.
    request = raw_request("GET", "/jobs/j1", [b"Host: \xff\xfe.ci.ap-guangzhou.myqcloud.com"])
    status, body = await raw_exchange(emu.port, request)
    assert (status, parse_document(body).findtext("Code")) == (400, "InvalidHost")
    # In the Authorization header itself.
    request = raw_request("GET", "/jobs/j1", [f"Host: {host}".encode(), b"Authorization: \xff\xfe"])
    status, body = await raw_exchange(emu.port, request)
    assert (status, parse_document(body).findtext("Code")) == (401, "InvalidAuthorization")
    await assert_still_serving(client)


async def test_a_malformed_request_line_does_not_stop_the_server(
    emu: RunningEmulator, client: SignedClient
) -> None:
    # Raw bytes in the request target are not HTTP; aiohttp answers its own plain-text 400
    # before the application sees anything. Why that is not CI-shaped: see `server`'s docstring.
    status, _ = await raw_exchange(emu.port, b"GET /\xe8\xa7\x86 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400
    status, _ = await raw_exchange(emu.port, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert status == 400
    await assert_still_serving(client)


# ---- fault hooks and internal faults -----------------------------------------------------------


async def test_request_hooks_inject_faults(emu: RunningEmulator, client: SignedClient) -> None:
    seen: list[str] = []

    async def slow_down(request: web.Request, target: Target) -> web.StreamResponse | None:
        seen.append(target.path)
        if target.path == "/jobs" and request.method == "POST":
            raise CiError("SlowDown", "Please reduce your request rate.", status=503)
        return None

    async def bare_502(request: web.Request, target: Target) -> web.StreamResponse | None:
        return web.Response(status=502) if target.path.startswith("/jobs/") else None

    emu.state.request_hooks.extend([slow_down, bare_502])
    reply = await client.submit()
    assert (reply.status, reply.code) == (503, "SlowDown")
    assert (await client.describe("j1")).status == 502
    (await client.list_jobs()).ok()
    assert seen == ["/jobs", "/jobs/j1", "/jobs"]
    assert emu.state.errors["SlowDown"] == 1
    emu.state.request_hooks.clear()
    await assert_still_serving(client)


async def test_an_internal_fault_is_internal_error(
    emu: RunningEmulator, client: SignedClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: web.Request, target: Target) -> web.StreamResponse | None:
        raise RuntimeError("a bug")

    emu.state.request_hooks.append(broken)
    reply = await client.list_jobs()
    assert (reply.status, reply.code) == (500, "InternalError")
    assert b"a bug" not in reply.body and b"Traceback" not in reply.body
    assert "unexpected fault" in caplog.text
    emu.state.request_hooks.clear()
    await assert_still_serving(client)


async def test_a_crashing_probe_fails_the_job_not_the_emulator(
    emulators: StartEmulator, emulator_config: EmulatorConfig, caplog: pytest.LogCaptureFixture
) -> None:
    async def crashing_probe(path: Path) -> MediaInfo:
        raise RuntimeError("probe bug")

    emu = await emulators(replace(emulator_config, probe=crashing_probe))
    async with aiohttp.ClientSession() as session:
        client = SignedClient(session, emu.url)
        job_id = await client.submit_ok()
        job = await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
        assert (job.state, job.code) == ("Failed", "InternalError")
        assert "probe bug" not in job.message
        assert "crashed" in caplog.text
        (await client.list_jobs()).ok()


# ---- fuzz --------------------------------------------------------------------------------------

XML_FRAGMENTS = st.sampled_from(
    [
        b"<Request>", b"</Request>", b"<Tag>", b"</Tag>", b"MediaInfo", b"<Input>", b"</Input>",
        b"<Object>", b"</Object>", b"input/a.mp4", b"<Operation>", b"</Operation>",
        b"<JobLevel>", b"</JobLevel>", b"2", b"<UserData>", b"</UserData>", b"&amp;", b"&x;",
        b"<![CDATA[", b"]]>", b"<!DOCTYPE x>", b"<?xml version='1.0'?>", b"\xff", b"\x00",
        b"<QueueId>", b"</QueueId>", b"<CallBackType>", b"TDMQ", b"</CallBackType>",
    ]
)  # fmt: skip


@pytest.fixture
async def fuzz_target(
    emu: RunningEmulator,
) -> AsyncIterator[Callable[[bytes], Awaitable[Reply]]]:
    emu.state.pause_scheduling()
    async with aiohttp.ClientSession() as session:
        client = SignedClient(session, emu.url)
        yield lambda body: client.send("POST", "/jobs", body=body)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(st.binary(max_size=300), st.lists(XML_FRAGMENTS, max_size=24).map(b"".join)))
async def test_fuzzed_bodies_get_a_ci_answer_never_a_fault(
    fuzz_target: Callable[[bytes], Awaitable[Reply]], body: bytes
) -> None:
    reply = await fuzz_target(body)
    assert reply.status in (200, 400, 501), reply.body
    if reply.status != 200:
        assert reply.code in (
            "InvalidContent",
            "InvalidArgument",
            "MissingContent",
            "NotImplemented",
        )


async def test_a_hook_may_stream_a_truncated_answer(
    emu: RunningEmulator, client: SignedClient
) -> None:
    async def truncate(request: web.Request, target: Target) -> web.StreamResponse | None:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        response.force_close()  # so the peer sees the connection end, not a stall
        await response.prepare(request)
        await response.write(b"<Response><JobsDetail>")
        return response  # the connection ends 78 bytes short

    emu.state.request_hooks.append(truncate)
    async with asyncio.timeout(10):
        with pytest.raises(aiohttp.ClientPayloadError):
            await client.list_jobs()
    emu.state.request_hooks.clear()
    await assert_still_serving(client)
