"""Signature verification: every way CI rejects a signature, with its code and HTTP status.

Each refusal is checked on both hosts, since CI's job API and the COS host answer with different
code tables (see `ci_emulator.auth`), and each is followed by proof that a correct request
is still accepted, so a test cannot pass because the emulator refuses everything.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from ci_emulator.config import BucketConfig, EmulatorConfig
from ci_emulator.server import RunningEmulator
from gateway.upstream import signing
from tests.ci_emulator.conftest import (
    EXPIRED_SECRET_ID,
    EXPIRED_SECRET_KEY,
    SECRET_KEY,
    TOKEN,
    VIDEO_KEY,
    Reply,
    SignedClient,
)
from tests.fixtures.servers import StartEmulator

NOW = int(time.time())


def _fullwidth(number: int) -> str:
    return "".join(chr(0xFF10 + int(digit)) for digit in str(number))  # full-width digits


# (case, send() keyword arguments, CI host (status, code), COS host (status, code))
REJECTIONS: list[tuple[str, dict[str, Any], tuple[int, str], tuple[int, str]]] = [
    ("missing", {"sign": False}, (401, "MissingAuthorization"), (403, "AccessDenied")),
    ("empty", {"authorization": ""}, (401, "MissingAuthorization"), (403, "AccessDenied")),
    ("garbage", {"authorization": "garbage"}, (401, "InvalidAuthorization"), (403, "AccessDenied")),
    (
        "lacks fields",
        {"authorization": "q-sign-algorithm=sha1&q-ak=AKID&q-sign-time=1;2"},
        (401, "InvalidAuthorization"),
        (403, "AccessDenied"),
    ),
    (
        "window not numbers",
        {"authorization": "REPLACE:q-sign-time=now;later"},
        (401, "InvalidAuthorization"),
        (403, "AccessDenied"),
    ),
    (
        "window inverted",
        {"authorization": "REPLACE:q-sign-time=1700000600;1700000000"},
        (401, "InvalidAuthorization"),
        (403, "AccessDenied"),
    ),
    (
        # CI reads Unix seconds in ASCII; `str.isdigit` alone would take U+FF11 and the like as a
        # number and verify over its ASCII spelling, a text the request did not carry.
        "window in non-ASCII digits",
        {"authorization": f"REPLACE:q-sign-time={_fullwidth(NOW - 60)};{_fullwidth(NOW + 600)}"},
        (401, "InvalidAuthorization"),
        (403, "AccessDenied"),
    ),
    (
        "algorithm sha256",
        {"authorization": "REPLACE:q-sign-algorithm=sha256"},
        (401, "InvalidAuthorization"),
        (403, "AccessDenied"),
    ),
    (
        "unknown SecretId",
        {"client": {"secret_id": "AKIDunknown"}},
        (401, "SecretidNotExist"),
        (403, "InvalidAccessKeyId"),
    ),
    (
        "expired window",
        {"window": (NOW - 7200, NOW - 3600)},
        (401, "SignatureExpired"),
        (403, "AccessDenied"),
    ),
    (
        "future window beyond skew",
        {"window": (NOW + 2000, NOW + 5000)},
        (401, "SignatureExpired"),
        (403, "RequestTimeTooSkewed"),
    ),
    (
        "wrong secret key",
        {"client": {"secret_key": "not-the-key"}},
        (403, "SignatureDoesNotMatch"),
        (403, "SignatureDoesNotMatch"),
    ),
    (
        "signed header absent",
        {"signed_headers": {"x-ci-extra": "value"}},
        (403, "SignatureDoesNotMatch"),
        (403, "SignatureDoesNotMatch"),
    ),
    (
        "signed param absent",
        {"signed_params": {"absent": "1"}},
        (403, "SignatureDoesNotMatch"),
        (403, "SignatureDoesNotMatch"),
    ),
    (
        "host mismatch",
        {"signed_headers": {"host": "otherbucket-1250000000.ci.ap-guangzhou.myqcloud.com"}},
        (403, "SignatureDoesNotMatch"),
        (403, "SignatureDoesNotMatch"),
    ),
    (
        "path mismatch",
        {"signed_path": "/jobs/jother"},
        (403, "SignatureDoesNotMatch"),
        (403, "SignatureDoesNotMatch"),
    ),
    (
        "method mismatch",
        {"authorization": "SIGN-AS-POST"},
        (403, "SignatureDoesNotMatch"),
        (403, "SignatureDoesNotMatch"),
    ),
    (
        "tampered signature",
        {"authorization": "REPLACE:q-signature=0000000000000000000000000000000000000000"},
        (403, "SignatureDoesNotMatch"),
        (403, "SignatureDoesNotMatch"),
    ),
    (
        "signature in the query only",
        {"sign": False, "params": {"q-sign-algorithm": "sha1", "q-ak": "AKID"}},
        (401, "MissingAuthorization"),
        (403, "AccessDenied"),
    ),
]


async def send_case(client: SignedClient, service: str, kwargs: dict[str, Any]) -> Reply:
    """A GET on each host (describe / videoinfo), with the case's change applied."""
    kwargs = dict(kwargs)
    if "client" in kwargs:
        client = replace(client, **kwargs.pop("client"))
    if service == "ci":
        method, path, params = "GET", "/jobs/jsomejob", {}
    else:
        method, path, params = "GET", "/" + VIDEO_KEY, {"ci-process": "videoinfo"}
    params.update(kwargs.pop("params", {}))
    auth: str = kwargs.get("authorization") or ""
    if auth == "SIGN-AS-POST" or auth.startswith("REPLACE:"):
        # Sign correctly (as POST for the method case), then alter the header text.
        probe = _authorization_for(
            client, "POST" if auth == "SIGN-AS-POST" else method, path, service, params
        )
        if auth != "SIGN-AS-POST":
            field, _, value = auth.removeprefix("REPLACE:").partition("=")
            parts = [p for p in probe.split("&") if not p.startswith(field + "=")]
            probe = "&".join([*parts, f"{field}={value}"])
        kwargs["authorization"] = probe
    return await client.send(method, path, service=service, params=params, **kwargs)


def _authorization_for(
    client: SignedClient, method: str, path: str, service: str, params: dict[str, str]
) -> str:
    now = int(client.now())
    return signing.authorization(
        secret_id=client.secret_id,
        secret_key=client.secret_key,
        method=method,
        host=client.host(service),
        path=path,
        params=params,
        headers={},
        start=now - 60,
        end=now + 600,
    )


@pytest.mark.parametrize(
    ("case", "kwargs", "ci", "cos"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
@pytest.mark.parametrize("service", ["ci", "cos"])
async def test_signature_rejections(
    client: SignedClient,
    service: str,
    case: str,
    kwargs: dict[str, Any],
    ci: tuple[int, str],
    cos: tuple[int, str],
) -> None:
    reply = await send_case(client, service, kwargs)
    assert (reply.status, reply.code) == (ci if service == "ci" else cos), reply.body
    assert reply.headers["Content-Type"] == "application/xml"
    assert reply.headers[f"x-{service}-request-id"] == reply.xml().findtext("RequestId")
    assert (reply.xml().find("Resource") is not None) == (service == "cos")
    (await send_case(client, service, {})).ok()


def _authorization_over_window_text(
    client: SignedClient, *, signed_window: str, carried_window: str
) -> str:
    """A GET /jobs?tag=MediaInfo signed with `signed_window` as its KeyTime and SignTime text,
    carrying `carried_window` in q-sign-time and q-key-time."""
    header_pairs = signing.canonical_pairs([("host", client.host())])
    param_pairs = signing.canonical_pairs([("tag", "MediaInfo")])
    http = signing.http_string("GET", "/jobs", param_pairs, header_pairs)
    to_sign = signing.string_to_sign(signed_window, http)
    sign = signing.signature(signing.sign_key(client.secret_key, signed_window), to_sign)
    return (
        f"q-sign-algorithm=sha1&q-ak={client.secret_id}"
        f"&q-sign-time={carried_window}&q-key-time={carried_window}"
        f"&q-header-list=host&q-url-param-list=tag&q-signature={sign}"
    )


async def test_the_signature_is_verified_over_the_window_text_carried(
    client: SignedClient,
) -> None:
    """CI's SignKey is HMAC(SecretKey, q-key-time) and its StringToSign holds q-sign-time, as
    the request spells them: a window written `0<start>;0<end>` (the same seconds) is signed
    over that text, and one signed over `<start>;<end>` but carrying the zeros is a mismatch."""
    now = int(client.now())
    plain = f"{now - 60};{now + 600}"
    padded = f"0{now - 60};0{now + 600}"
    carried_as_signed = _authorization_over_window_text(
        client, signed_window=padded, carried_window=padded
    )
    reply = await client.send(
        "GET", "/jobs", params={"tag": "MediaInfo"}, authorization=carried_as_signed
    )
    reply.ok()
    respelled = _authorization_over_window_text(client, signed_window=plain, carried_window=padded)
    reply = await client.send("GET", "/jobs", params={"tag": "MediaInfo"}, authorization=respelled)
    assert (reply.status, reply.code) == (403, "SignatureDoesNotMatch"), reply.body


async def test_a_window_starting_within_the_skew_is_accepted(client: SignedClient) -> None:
    reply = await client.list_jobs(window=(NOW + 600, NOW + 1200))
    reply.ok()


async def test_header_names_are_matched_case_insensitively(client: SignedClient) -> None:
    # Sent as X-Ci-Custom, signed (like every SDK) as x-ci-custom.
    reply = await client.list_jobs(headers={"X-Ci-Custom": "Some Value/+="})
    reply.ok()


async def test_unsigned_extra_headers_and_params_are_ignored(client: SignedClient) -> None:
    signed = {"tag": "MediaInfo"}
    reply = await client.send(
        "GET",
        "/jobs",
        params={"tag": "MediaInfo", "unknown": "x"},
        headers={"X-Unsigned": "1"},
        signed_params=signed,
        signed_headers={"host": client.host()},
    )
    reply.ok()


async def test_signed_unknown_params_still_count(client: SignedClient) -> None:
    reply = await client.send(
        "GET",
        "/jobs",
        params={"tag": "MediaInfo", "unknown": "x"},
        signed_params={"tag": "MediaInfo", "unknown": "y"},
    )
    assert (reply.status, reply.code) == (403, "SignatureDoesNotMatch")


async def test_an_unsigned_host_is_accepted(client: SignedClient) -> None:
    # The SDK's SignHost=False leaves host out of q-header-list; CI accepts that.
    reply = await client.send("GET", "/jobs", params={"tag": "MediaInfo"}, signed_headers={})
    reply.ok()


async def test_the_published_worked_example_is_accepted(
    emulators: StartEmulator, bucket_root: Any
) -> None:
    """Tencent's worked example (notes, Part 2), verbatim, against a pinned clock."""
    body = b"<Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input></Request>"
    body = body.ljust(512, b" ")  # the example signs Content-Length: 512
    config = EmulatorConfig(
        buckets=(BucketConfig("examplebucket-1250000000", "ap-guangzhou", bucket_root),),
        credentials={"AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q": "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"},
        clock=lambda: 1700000100.0,
    )
    authorization = (
        "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q"
        "&q-sign-time=1700000000;1700003600&q-key-time=1700000000;1700003600"
        "&q-header-list=content-length;content-type;host;x-ci-security-token&q-url-param-list="
        "&q-signature=4fdc834ee844f2b11df0da97475f187e76be4237"
    )
    headers = {
        "Host": "examplebucket-1250000000.ci.ap-guangzhou.myqcloud.com",
        "Content-Type": "application/xml",
        "x-ci-security-token": "Xk9+/tokenWithSpecials=EXAMPLE_SESSION_TOKEN.v2~ABC/def+ghi==",
        "Authorization": authorization,
    }
    emu = await emulators(config)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{emu.url}/jobs", data=body, headers=headers) as response:
            assert response.status == 200, await response.text()
        headers["Authorization"] = authorization.replace("4fdc", "4fdd")
        async with session.post(f"{emu.url}/jobs", data=body, headers=headers) as response:
            assert response.status == 403


# ---- temporary credentials -----------------------------------------------------------------


async def test_temporary_credential_with_its_signed_token_is_accepted(
    temp_client: SignedClient,
) -> None:
    (await temp_client.list_jobs()).ok()


async def test_the_cos_token_header_is_accepted_on_the_ci_host(temp_client: SignedClient) -> None:
    client = replace(temp_client, extra_headers={"x-cos-security-token": TOKEN})
    (await client.list_jobs()).ok()


async def _token_request(
    client: SignedClient, service: str, *, signed_headers: dict[str, str] | None = None
) -> Reply:
    """A GET on `service`'s host (a listing / a videoinfo) with `client`'s token headers."""
    path, params = (
        ("/jobs", {"tag": "MediaInfo"})
        if service == "ci"
        else ("/" + VIDEO_KEY, {"ci-process": "videoinfo"})
    )
    return await client.send(
        "GET", path, service=service, params=params, signed_headers=signed_headers
    )


@pytest.mark.parametrize(
    ("service", "header"),
    [
        ("ci", "x-ci-security-token"),
        ("ci", "x-cos-security-token"),
        ("cos", "x-cos-security-token"),
    ],
)
async def test_an_unsigned_token_is_accepted(
    temp_client: SignedClient, service: str, header: str
) -> None:
    """The Go SDK sets x-cos-security-token after signing (on CI's host too), Android's signer
    likewise: CI verifies the signature over what q-header-list names, and takes the token from
    its header whether or not it is named there."""
    client = replace(temp_client, extra_headers={header: TOKEN})
    reply = await _token_request(client, service, signed_headers={"host": client.host(service)})
    reply.ok()


async def test_the_ci_token_header_does_not_carry_the_token_to_the_cos_host(
    temp_client: SignedClient,
) -> None:
    """ "cos 域名需要使用 x-cos-security-token": on the COS host the token travels only there."""
    client = replace(temp_client, extra_headers={"x-ci-security-token": TOKEN})
    reply = await _token_request(client, "cos")
    assert (reply.status, reply.code) == (403, "AccessDenied"), reply.body
    (await _token_request(client, "ci")).ok()
    both = replace(
        temp_client, extra_headers={"x-ci-security-token": "x", "x-cos-security-token": TOKEN}
    )
    (await _token_request(both, "cos")).ok()  # there x-ci-security-token is just a header


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("missing", {}),
        ("wrong", {"x-cos-security-token": TOKEN + "x"}),
        ("one of two wrong", {"x-ci-security-token": TOKEN, "x-cos-security-token": "x"}),
    ],
)
@pytest.mark.parametrize(
    ("service", "status", "code"),
    [("ci", 401, "InvalidAuthorization"), ("cos", 403, "AccessDenied")],
)
async def test_temporary_credential_token_faults(
    temp_client: SignedClient,
    case: str,
    headers: dict[str, str],
    service: str,
    status: int,
    code: str,
) -> None:
    client = replace(temp_client, extra_headers=headers)
    reply = await _token_request(client, service)
    assert (reply.status, reply.code) == (status, code), (case, reply.body)


async def test_an_expired_temporary_credential_is_refused(temp_client: SignedClient) -> None:
    client = replace(temp_client, secret_id=EXPIRED_SECRET_ID, secret_key=EXPIRED_SECRET_KEY)
    reply = await client.list_jobs()
    assert (reply.status, reply.code) == (403, "ExpiredToken")


async def test_a_permanent_key_ignores_a_token_header(client: SignedClient) -> None:
    (await client.list_jobs(headers={"x-cos-security-token": "anything"})).ok()


async def test_keys_issued_and_disabled_at_runtime_as_in_a_rotation(
    client: SignedClient, emu: RunningEmulator
) -> None:
    """CAM issues a new key, then disables the old one: from then on CI refuses the old key as
    one that does not exist, on either host. Driven through the admin routes, which an emulator
    in another process is rotated with, and whose answers never echo a key."""
    new = replace(client, secret_id="AKIDemulatorTestRotatedKey0000000", secret_key="rotated-sk")
    assert (await send_case(new, "ci", {})).code == "SecretidNotExist"
    admin = client.session
    issued = f"{emu.url}/_emulator/credentials/{new.secret_id}"
    async with admin.put(issued, json={"secret_key": new.secret_key}) as answer:
        assert answer.status == 200
        assert new.secret_key not in await answer.text()
    for service in ("ci", "cos"):
        (await send_case(new, service, {})).ok()
        (await send_case(client, service, {})).ok()  # both keys work during the rotation

    async with admin.delete(f"{emu.url}/_emulator/credentials/{client.secret_id}") as answer:
        assert answer.status == 200
        assert await answer.json() == {"secret_id": client.secret_id, "enabled": False}
    assert (await send_case(client, "ci", {})).code == "SecretidNotExist"
    assert (await send_case(client, "cos", {})).code == "InvalidAccessKeyId"
    for service in ("ci", "cos"):
        (await send_case(new, service, {})).ok()

    async with admin.delete(f"{emu.url}/_emulator/credentials/AKIDnobody") as answer:
        assert answer.status == 404
    for body in ({"secret_key": 5}, {"secret_id": "AKIDother", "secret_key": "k"}, [1]):
        async with admin.put(issued, json=body) as answer:
            assert answer.status == 400, body
    # Issuing the old key again enables it, as CAM's "enable" does.
    async with admin.put(
        f"{emu.url}/_emulator/credentials/{client.secret_id}", json={"secret_key": SECRET_KEY}
    ) as answer:
        assert answer.status == 200
    (await send_case(client, "ci", {})).ok()
