"""Wire details: CI's exact error body, id and time shapes, the three ways in, the admin surface."""

from __future__ import annotations

import base64
import re
import time

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from ci_emulator import ids
from ci_emulator.hosts import Service, Target, resolve_target
from ci_emulator.server import RunningEmulator
from ci_emulator.timefmt import format_ci_time, parse_ci_time
from ci_emulator.xmlbuild import (
    Fields,
    XmlValue,
    build_element,
    media_info_fields,
    render_error,
    render_response,
)
from gateway.upstream import signing
from tests.ci_emulator.conftest import (
    BUCKET,
    DONE,
    REGION,
    SECRET_ID,
    SECRET_KEY,
    VIDEO_KEY,
    SignedClient,
    raw_exchange,
    raw_request,
)


def test_error_body_is_byte_for_byte_cis_shape() -> None:
    body = render_error(
        [
            ("Code", "InvalidArgument"),
            ("Message", "a < b & c"),
            ("RequestId", "R"),
            ("TraceId", "T"),
        ]
    )
    assert body == (
        b"<?xml version='1.0' encoding='utf-8' ?>\n<Error>\n"
        b"\t<Code>InvalidArgument</Code>\n\t<Message>a &lt; b &amp; c</Message>\n"
        b"\t<RequestId>R</RequestId>\n\t<TraceId>T</TraceId>\n</Error>"
    )


async def test_error_answers_carry_cis_headers_and_body(client: SignedClient) -> None:
    reply = await client.send("GET", "/nothing")
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/xml"
    assert reply.headers["Server"] == "tencent-ci"
    assert reply.body.startswith(b"<?xml version='1.0' encoding='utf-8' ?>\n<Error>\n\t<Code>")
    root = reply.xml()
    assert [child.tag for child in root] == ["Code", "Message", "RequestId", "TraceId"]
    assert root.findtext("RequestId") == reply.headers["x-ci-request-id"]
    reply = await client.send("GET", "/" + VIDEO_KEY, service="cos")
    assert [child.tag for child in reply.xml()] == [
        "Code",
        "Message",
        "Resource",
        "RequestId",
        "TraceId",
    ]


def test_text_that_xml_cannot_carry_is_replaced_not_fatal() -> None:
    body = render_response([("Message", "bad \x00 \x1b \udcff end")])
    assert body == "<Response><Message>bad \ufffd \ufffd \ufffd end</Message></Response>".encode()


def test_empty_values_are_spelled_like_ci() -> None:
    body = render_response([("StartTime", ""), ("Message", None), ("Stream", [])])
    assert body == b"<Response><StartTime></StartTime><Message/><Stream/></Response>"


_NAMES = st.sampled_from(["Code", "Message", "JobsDetail", "Video", "Index", "UserData"])
_VALUES: st.SearchStrategy[XmlValue] = st.recursive(
    st.none() | st.text(),  # any text: markup characters, CR, surrogates, NUL, astral planes
    lambda children: st.lists(st.tuples(_NAMES, children), max_size=4),
    max_leaves=20,
)


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=5))
def test_the_direct_writer_is_byte_for_byte_lxml(fields: Fields) -> None:
    assert render_response(fields) == etree.tostring(
        build_element("Response", fields), encoding="utf-8"
    )


def test_media_info_lists_repeat_nodes_and_empty_lists_stay_visible() -> None:
    fields = media_info_fields(
        {"Stream": {"Audio": [], "Video": [{"Index": "0"}, {"Index": "1"}], "Subtitle": []}}
    )
    body = render_response(fields)
    assert body == (
        b"<Response><Stream><Audio/><Video><Index>0</Index></Video>"
        b"<Video><Index>1</Index></Video><Subtitle/></Stream></Response>"
    )


def test_request_ids_look_like_cis() -> None:
    # CI's sample NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x is base64 of 62f3292d_90fa5064_6703_1.
    assert base64.b64decode("NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x") == b"62f3292d_90fa5064_6703_1"
    decoded = base64.b64decode(ids.request_id(0x62F3292D)).decode()
    assert re.fullmatch(r"62f3292d_[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]+", decoded)
    assert ids.request_id(0) != ids.request_id(0)
    assert re.fullmatch(r"j[0-9a-f]{32}", ids.job_id())
    assert re.fullmatch(r"p[0-9a-f]{32}", ids.default_queue_id(BUCKET))


def test_ci_time_format() -> None:
    assert format_ci_time(1656585914) == "2022-06-30T18:45:14+0800"
    assert parse_ci_time("2022-06-30T18:45:14+0800") == 1656585914
    assert parse_ci_time("2022-06-30T10:45:14+0000") == 1656585914
    with pytest.raises(ValueError):
        parse_ci_time("2022-06-30 18:45:14")


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        (f"{BUCKET}.ci.{REGION}.myqcloud.com", "/jobs",
         Target(Service.CI, BUCKET, REGION, "/jobs")),
        (f"{BUCKET}.cos.{REGION}.myqcloud.com:80", "/a", Target(Service.COS, BUCKET, REGION, "/a")),
        (f"{BUCKET}.cos.{REGION}.tencentcos.cn", "/a", Target(Service.COS, BUCKET, REGION, "/a")),
        ("127.0.0.1:9000", f"/_path/{BUCKET}/{REGION}/ci/jobs/j1,j2",
         Target(Service.CI, BUCKET, REGION, "/jobs/j1,j2")),
        ("x", f"/_path/{BUCKET}/{REGION}/cos", Target(Service.COS, BUCKET, REGION, "/")),
    ],
)  # fmt: skip
def test_resolve_target(host: str, path: str, expected: Target) -> None:
    assert resolve_target(host, path) == expected


async def test_path_style_for_clients_that_cannot_set_host(
    emu: RunningEmulator, client: SignedClient
) -> None:
    # The client signs the path after the prefix and the Host it really sends.
    real_host = f"127.0.0.1:{emu.port}"
    prefix = f"/_path/{BUCKET}/{REGION}/ci"
    reply = await client.send(
        "POST",
        "/jobs",
        raw_path=prefix + "/jobs",
        body=b"<Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input></Request>",
        headers={"Host": real_host},
    )
    job_id = reply.ok().xml().findtext("JobsDetail/JobId") or ""
    await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
    reply = await client.send(
        "GET",
        "/" + VIDEO_KEY,
        raw_path=f"/_path/{BUCKET}/{REGION}/cos/{VIDEO_KEY}",
        params={"ci-process": "videoinfo"},
        headers={"Host": real_host},
    )
    assert reply.ok().xml().findtext("MediaInfo/Stream/Video/CodecName") == "h264"
    bad = await client.send(
        "GET", "/jobs", raw_path="/_path/only-bucket", headers={"Host": real_host}
    )
    assert (bad.status, bad.code) == (404, "InvalidUrl")


async def test_absolute_form_targets_are_served_like_a_proxy(
    emu: RunningEmulator, client: SignedClient
) -> None:
    # What `requests` sends through an HTTP proxy; the SDK test relies on it.
    host = client.host()
    now = int(time.time())
    auth = signing.authorization(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        method="GET",
        host=host,
        path="/jobs/j1,j2",
        params={"cancel": None},
        headers={},
        start=now - 60,
        end=now + 600,
    )
    request = raw_request(
        "GET",
        f"http://{host}/jobs/j1%2Cj2?cancel",
        [f"Host: {host}".encode(), f"Authorization: {auth}".encode()],
    )
    status, body = await raw_exchange(emu.port, request)
    assert status == 200, body


async def test_admin_surface(emu: RunningEmulator, client: SignedClient) -> None:
    async with aiohttp.ClientSession() as session:

        async def admin(method: str, path: str) -> dict[str, object]:
            async with session.request(method, f"{emu.url}/_emulator{path}") as response:
                assert response.status == 200
                result: dict[str, object] = await response.json()
                return result

        assert await admin("GET", "/health") == {"status": "ok"}
        assert await admin("POST", "/scheduling/pause") == {"scheduler_paused": True}
        job_id = await client.submit_ok()
        assert await admin("POST", "/running/hold") == {"running_held": True}
        assert await admin("POST", "/scheduling/resume") == {"scheduler_paused": False}
        await emu.state.wait_for_job_state(job_id, {"Running"}, timeout=10)
        counters = await admin("GET", "/counters")
        assert counters["jobs_created"] == 1
        assert counters["jobs_by_state"] == {"Running": 1}
        assert counters["operations"] == {"CreateMediaJobs": 1}
        assert await admin("POST", "/running/release") == {"running_held": False}
        await emu.state.wait_for_job_state(job_id, DONE, timeout=10)
        await client.send("GET", "/nothing")
        counters = await admin("GET", "/counters")
        assert counters["requests_seen"] == 2
        assert counters["errors"] == {"InvalidUrl": 1}
        # Admin calls are not CI traffic.
        assert emu.state.requests_seen == 2
