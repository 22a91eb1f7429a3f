"""What the gateway puts on the wire besides the signed headers: only what CI's request for the
operation carries. aiohttp adds `Content-Type: application/octet-stream` to a body-less PUT on
its own; CI's cancel (`PUT /jobs/<id>?cancel`, notes §5.3) has no body and so no Content-Type,
and a strict CI may refuse a request that claims a body type it never takes."""

from __future__ import annotations

from gateway._proto import media_pb2, service_pb2
from tests.integration.fake_ci import Scripted, fake_ci
from tests.integration.test_upstream_errors import DESCRIBE, gateway_stub

SUBMITTED = (
    b"<Response><JobsDetail><JobId>j1</JobId><State>Submitted</State><Tag>MediaInfo</Tag>"
    b"</JobsDetail></Response>"
)


async def test_body_less_requests_carry_no_content_type() -> None:
    async with fake_ci(Scripted(200, b"")) as fake, gateway_stub(fake) as stub:
        await stub.CancelMediaJob(service_pb2.CancelMediaJobRequest(job_id="j1"), timeout=10)
    async with fake_ci(Scripted(200, b"<Response/>")) as fake_describe:
        async with gateway_stub(fake_describe) as stub:
            await stub.DescribeMediaJobs(DESCRIBE, timeout=10)
    for request in fake.requests + fake_describe.requests:
        assert "Content-Type" not in request.headers, (request.method, dict(request.headers))


async def test_a_body_is_sent_as_xml_with_its_md5_signed() -> None:
    async with fake_ci(Scripted(200, SUBMITTED)) as fake, gateway_stub(fake) as stub:
        request = media_pb2.Request(input=media_pb2.Input(object="input/demo.mp4"))
        await stub.SubmitMediaJob(service_pb2.SubmitMediaJobRequest(request=request), timeout=10)
    (sent,) = fake.requests
    assert sent.headers.getall("Content-Type") == ["application/xml"]
    signed = sent.headers["Authorization"].split("q-header-list=")[1].split("&")[0].split(";")
    assert {"content-type", "content-md5", "content-length", "host"} <= set(signed)
