"""Reading a request's XML body without trusting it: size, framing, Content-MD5, then the parse.

Each failure maps to the CI code for it (notes §6.2):

* no Content-Length and not chunked -> MissingContentLength 411 (HTTP/1.1 gives such a POST no
  body at all, so CI cannot know the client meant one). The front end asks the same of every
  PUT and POST, body or not (`require_length`);
* an empty body -> MissingContent 400;
* more than `max_bytes` -> InvalidContent 413; the declared length is checked before reading and
  a chunked body is read at most `max_bytes + 1` bytes, so an oversized upload costs nothing;
* a `Content-MD5` that is not base64 of 16 bytes or does not match -> InvalidContent 400;
* XML that does not parse (including any DOCTYPE, so entity bombs and external entities never
  expand) -> InvalidContent 400, CI's "malformed body";
* a well-formed document whose root is not `<Request>` -> InvalidArgument 400: the body parsed,
  a parameter is wrong.

`Content-Type` is not enforced (tolerant reading): the official Python SDK sends job bodies with
no Content-Type at all, and CI accepts them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from aiohttp import web
from lxml import etree

from ci_emulator.errors import CiError, invalid_argument
from gateway.upstream.xml_codec import XmlCodecError, parse_document

_CHUNK = 64 * 1024


LENGTH_REQUIRED = frozenset({"PUT", "POST"})
"""Methods CI wants a Content-Length from even without a body (`PUT /jobs/<id>?cancel`,
`PUT /workflow/<id>?active`, `POST /triggerworkflow`): the common request headers page
(https://www.tencentcloud.com/document/api/1045/43609) marks it required "针对 PUT 和 POST
请求" (for PUT and POST requests), and CI's error table has MissingContentLength 411 for its
absence. The official SDKs send `Content-Length: 0` there (requests and Go's net/http do)."""


def require_length(request: web.Request) -> None:
    """MissingContentLength unless the request declares its length or is chunked."""
    headers = request.headers
    chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
    if "Content-Length" not in headers and not chunked:
        raise CiError("MissingContentLength", "a PUT or POST needs a Content-Length")


async def read_body(request: web.Request, *, max_bytes: int) -> bytes:
    """The raw body, bounded and checked against Content-MD5; CiError on any framing fault."""
    require_length(request)
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    data = bytearray()
    # Bounded: each pass adds at least one byte or ends, and the total stops at max_bytes + 1.
    while len(data) <= max_bytes:
        chunk = await request.content.read(min(_CHUNK, max_bytes + 1 - len(data)))
        if not chunk:
            break
        data.extend(chunk)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise CiError("MissingContent", "the request body is empty")
    _check_md5(request.headers.get("Content-MD5"), bytes(data))
    return bytes(data)


def parse_request_xml(data: bytes, *, max_bytes: int) -> etree._Element:
    """The `<Request>` root of a body; CiError if it is not well-formed or not a Request."""
    try:
        root = parse_document(data, max_bytes=max_bytes)
    except XmlCodecError as exc:
        raise CiError("InvalidContent", f"the request body is not valid XML: {exc}") from exc
    if local_name(root) != "Request":
        raise invalid_argument(f"the request body's root must be <Request>, not <{root.tag}>")
    return root


def local_name(element: etree._Element) -> str:
    """The tag without a namespace: tolerant, since CI's requests carry none but may."""
    tag = element.tag
    if not isinstance(tag, str):  # a comment or processing instruction
        return ""
    # Clark notation `{uri}local`; cheaper than building a QName for every child looked at.
    return tag.rpartition("}")[2]


def _check_md5(header: str | None, data: bytes) -> None:
    if header is None:
        return
    try:
        claimed = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CiError("InvalidContent", "Content-MD5 is not base64") from exc
    actual = hashlib.md5(data).digest()  # noqa: S324 - the protocol's integrity check, not security
    if not hmac.compare_digest(claimed, actual):
        raise CiError("InvalidContent", "Content-MD5 does not match the body")


def _too_large(max_bytes: int) -> CiError:
    return CiError("InvalidContent", f"the request body exceeds {max_bytes} bytes", status=413)
