"""Which bucket and which service a request addresses: CI routes by Host, and so does the emulator.

Three ways in, all ending at the same `Target`:

* **Host header** (what CI sees): `<bucket>.ci.<region>.myqcloud.com` for the job API and
  `POST /mediainfo`, `<bucket>.cos.<region>.myqcloud.com` (or `.tencentcos.cn`, COS's newer
  domain) for `GET /<key>?ci-process=videoinfo`. A client connects to the emulator's
  `http://127.0.0.1:<port>` and sends, and signs, the real Host.
* **Proxy form**: an HTTP client configured with the emulator as its proxy sends the
  absolute-form target `GET http://<bucket>.ci.<region>.myqcloud.com/jobs HTTP/1.1` with the same
  Host header; aiohttp gives the handler the path and query of such a target, so nothing differs.
  This is how the official Python SDK is pointed at the emulator unchanged
  (`CosConfig(..., Scheme="http", Proxies={"http": emulator.url})`).
* **Path style** for clients that cannot set Host: `/_path/<bucket>/<region>/<ci|cos>/<rest>`
  addresses `/<rest>` of that bucket's host. The signature then covers the path `/<rest>` and
  whatever Host the client really sent (verification always uses what the request carried).

An unknown host shape is InvalidHost 400 (CI's "Host validation failed"). A well-formed host whose
bucket is not configured here, or lives in another region, is NoSuchBucket 404, which is what
COS answers for a bucket name that does not exist in that region.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ci_emulator.errors import CiError

PATH_STYLE_PREFIX = "/_path/"

_HOST = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9-]*-[0-9]+)\."
    r"(?P<service>ci|cos)\.(?P<region>[a-z0-9-]+)\."
    r"(?P<domain>myqcloud\.com|tencentcos\.cn)$"
)


class Service(enum.Enum):
    """The two hosts CI answers on; error codes and request-id headers differ between them."""

    CI = "ci"
    COS = "cos"

    @property
    def request_id_header(self) -> str:
        return f"x-{self.value}-request-id"


@dataclass(frozen=True)
class Target:
    service: Service
    bucket: str
    region: str
    path: str
    """The decoded resource path within the host, with a leading `/`; what the client signed."""


def strip_port(host: str) -> str:
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


def resolve_target(host_header: str | None, path: str) -> Target:
    """Map (Host, decoded path) to the addressed bucket and service; CiError if it cannot."""
    if path.startswith(PATH_STYLE_PREFIX):
        return _path_style(path)
    if not host_header:
        raise CiError("InvalidHost", "the request carries no Host header")
    match = _HOST.match(strip_port(host_header.strip()).lower())
    if match is None:
        raise CiError("InvalidHost", f"host {host_header!r} is not a CI or COS bucket host")
    service = Service(match["service"])
    if service is Service.CI and match["domain"] != "myqcloud.com":
        # The Python SDK: "ci暂不支持新域名" -- CI does not serve the tencentcos.cn domain.
        raise CiError("InvalidHost", "CI is served only on myqcloud.com hosts")
    return Target(service, match["bucket"], match["region"], path or "/")


def _path_style(path: str) -> Target:
    parts = path[len(PATH_STYLE_PREFIX) :].split("/", 3)
    if len(parts) < 3 or parts[2] not in ("ci", "cos") or not parts[0] or not parts[1]:
        raise CiError(
            "InvalidUrl", "path-style requests look like /_path/<bucket>/<region>/<ci|cos>/<path>"
        )
    rest = "/" + parts[3] if len(parts) == 4 else "/"
    return Target(Service(parts[2]), parts[0], parts[1], rest)
