"""Fetching temporary credentials from Tencent STS (`AssumeRole`), with Tencent's own SDK.

STS speaks Tencent Cloud API 3.0 (JSON over HTTPS, TC3-HMAC-SHA256 signatures), unlike CI's COS
signature; `tencentcloud-sdk-python-sts` is Tencent's maintained client for it, so the gateway
uses it rather than re-implement TC3. The SDK is synchronous (`requests`), so each call runs in
a worker thread (`asyncio.to_thread`), off the event loop; `RefreshingCredentialsProvider`
makes at most one call at a time per account.

The SDK logs whole responses, temporary keys included, at DEBUG on `tencentcloud_sdk_common`:
that logger is held at WARNING whatever the gateway's level. Its exceptions carry STS's error
code, message and RequestId; only the code and RequestId are passed on (`FetchError`).

STS goes out the way the gateway decided (`AssumeRoleSpec.proxy`): through the egress proxy CI
is reached through (a pod whose only way out is `upstream.proxy_url` would otherwise get CI's
traffic through and never the credentials to sign it with), or directly. Never by the SDK's own
reading of the environment: it takes HTTPS_PROXY whenever it is given no proxy, with its own
NO_PROXY rule (a substring match), and `requests` under it reads the variables again, so an
operator's `proxy_from_env = false` or `no_proxy` entry would not have held for STS.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tencentcloud.common import credential  # type: ignore[import-untyped]
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (  # type: ignore[import-untyped]
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile  # type: ignore[import-untyped]
from tencentcloud.common.profile.http_profile import HttpProfile  # type: ignore[import-untyped]
from tencentcloud.sts.v20180813 import models, sts_client  # type: ignore[import-untyped]

from gateway.credentials import Credentials, CredentialsProvider
from gateway.credentials.refreshing import FetchError

SDK_LOGGER = "tencentcloud_sdk_common"
STS_HOST = "sts.tencentcloudapi.com"  # the SDK's own endpoint when an account names none
logging.getLogger(SDK_LOGGER).setLevel(logging.WARNING)


@dataclass(frozen=True)
class AssumeRoleSpec:
    """Which role to assume, where; none of it is secret."""

    role_arn: str
    region: str
    session_name: str = "ci-gateway"
    # AssumeRole accepts 900..43200 s; two hours is STS's own default.
    duration_s: int = 7200
    # `host[:port]` instead of `sts.tencentcloudapi.com` (a private endpoint, a test double).
    endpoint: str | None = None
    scheme: str = "https"
    timeout_s: int = 10
    # The egress proxy to reach STS through (`http://[user:password@]host:port`), chosen by the
    # caller as it chooses CI's (`upstream.proxy_url`, `no_proxy`), or None: directly, whatever
    # the environment says (the settings already read it). May hold a password: no repr.
    proxy: str | None = field(default=None, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        """The host and port the SDK calls: `endpoint`, else STS's own name."""
        parts = urlsplit("//" + (self.endpoint or STS_HOST))
        return parts.hostname or STS_HOST, parts.port or (443 if self.scheme == "https" else 80)

    def __post_init__(self) -> None:
        if not self.role_arn.startswith("qcs::cam::"):
            raise ValueError(f"role_arn {self.role_arn!r} is not a CAM role (qcs::cam::...)")
        if not 900 <= self.duration_s <= 43200:
            raise ValueError("duration_s must be within 900..43200 (STS's bounds)")
        if self.scheme not in ("https", "http"):
            raise ValueError("scheme must be https or http")


class StsFetcher:
    """`Fetch` for `RefreshingCredentialsProvider`: AssumeRole signed with `base`'s keys."""

    def __init__(self, spec: AssumeRoleSpec, base: CredentialsProvider) -> None:
        self.spec = spec
        self._base = base

    def __repr__(self) -> str:
        return f"StsFetcher(role_arn={self.spec.role_arn!r}, base={self._base.name!r})"

    async def __call__(self) -> Credentials:
        base = await self._base.get()
        return await asyncio.to_thread(self._assume_role, base)

    def _assume_role(self, base: Credentials) -> Credentials:
        spec = self.spec
        profile = ClientProfile(
            httpProfile=HttpProfile(
                protocol=spec.scheme,
                endpoint=spec.endpoint,
                reqTimeout=spec.timeout_s,
                proxy=spec.proxy,
            )
        )
        client = sts_client.StsClient(
            credential.Credential(base.secret_id, base.secret_key, base.token),
            spec.region,
            profile,
        )
        _route(client, spec.proxy)
        request = models.AssumeRoleRequest()
        request.RoleArn = spec.role_arn
        request.RoleSessionName = spec.session_name
        request.DurationSeconds = spec.duration_s
        try:
            response = client.AssumeRole(request)
        except TencentCloudSDKException as exc:
            raise FetchError(
                f"STS AssumeRole failed: {exc.get_code()} (RequestId {exc.get_request_id()})"
            ) from None
        issued = response.Credentials
        if issued is None or not (issued.TmpSecretId and issued.TmpSecretKey and issued.Token):
            raise FetchError("STS AssumeRole answered without credentials")
        try:
            expires_at = float(response.ExpiredTime)
        except (TypeError, ValueError):
            raise FetchError("STS AssumeRole answered without a valid ExpiredTime") from None
        return Credentials(
            str(issued.TmpSecretId), str(issued.TmpSecretKey), str(issued.Token), expires_at
        )


def _route(client: Any, proxy: str | None) -> None:
    """Keep the SDK to the route `proxy` names (set through `HttpProfile`), or to none.

    The SDK has no setting for "no proxy": given none, its connection (made with the client,
    used for each of its calls) takes HTTPS_PROXY (HTTP_PROXY for a plain-http endpoint) itself,
    and its `requests.Session` merges the variables in again on every call. Its connection's
    `proxy` and `_session` are the SDK's own attributes: tests/credentials/test_sts.py fails if a
    release renames them."""
    connection = client.request.conn
    if proxy is None:
        connection.proxy = None
    connection._session.trust_env = False
