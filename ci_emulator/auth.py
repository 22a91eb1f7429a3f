"""Verify a request's COS XML signature the way CI does, with CI's (host-dependent) error codes.

The check, in the order a server can perform it cheaply:

1. an `Authorization` header is present;
2. it parses (`gateway.upstream.signing.parse_authorization`) and names the `sha1` algorithm;
3. its SecretId is known;
4. its sign and key windows cover the emulator clock (start may be at most `max_clock_skew_s`
   ahead; the end is strict);
5. a temporary credential's token travels in a token header of the host (`token_headers`) and
   is equal, and the credential has not expired (signing it is not required: see
   `_check_token`);
6. the signature recomputed over *exactly* the headers and params the header lists, with the
   values this request carried, equals `q-signature`. A listed name the request lacks, or whose
   value is not UTF-8, can never match.

The keys accepted are a `KeyTable`: those configured, plus keys issued while the emulator runs,
less keys disabled meanwhile, so a test (or `PUT`/`DELETE /_emulator/credentials/<SecretId>`)
can rotate a key the way an operator does in CAM: issue the new key, then disable the old one,
after which CI refuses every request still signed with it.

Which code each failure gets depends on the host (`AuthCodes`): the job API answers with CI's
table (notes §6.2), the COS host with COS's (403 family). Signature-in-query (`?q-sign-algorithm=
...`, presigned URLs) is not accepted: CI's job API is documented with the header only, and a
request signed that way is answered as if it carried no Authorization at all.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from ci_emulator.config import Credential, EmulatorConfig
from ci_emulator.errors import CiError
from ci_emulator.hosts import Service
from gateway.upstream import signing

TOKEN_HEADERS: Final = ("x-ci-security-token", "x-cos-security-token")
"""The CI host takes the token in either header. Tencent's common request headers page
(https://cloud.tencent.com/document/api/1534/108713): "ci 和 pic 域名可使用
x-ci-security-token 或 x-cos-security-token" (the Python SDK sends x-ci-, the Go SDK x-cos-)."""

COS_TOKEN_HEADERS: Final = ("x-cos-security-token",)
"""The COS host takes it only in x-cos-security-token: the same page, "cos 域名需要使用
x-cos-security-token". There an x-ci-security-token is just another header, and a temporary
key whose token travels only in it is refused as one without a token."""


def token_headers(service: Service) -> tuple[str, ...]:
    return TOKEN_HEADERS if service is Service.CI else COS_TOKEN_HEADERS


@dataclass(frozen=True)
class AuthCodes:
    """The `(code, message)` a host answers for each way a signature can fail."""

    missing: tuple[str, str]
    malformed: tuple[str, str]
    unknown_secret_id: tuple[str, str]
    expired: tuple[str, str]
    not_yet_valid: tuple[str, str]
    mismatch: tuple[str, str]
    bad_token: tuple[str, str]
    expired_token: tuple[str, str]


CI_AUTH_CODES: Final = AuthCodes(
    missing=("MissingAuthorization", "The Authorization header is required."),
    malformed=("InvalidAuthorization", "The Authorization header is malformed."),
    unknown_secret_id=("SecretidNotExist", "The SecretId does not exist."),
    # CI's table has one time code, SignatureExpired 401, for a window that does not cover "now"
    # in either direction.
    expired=("SignatureExpired", "The signature has expired."),
    not_yet_valid=("SignatureExpired", "The signature is not valid yet."),
    # Not in CI's table (UNCONFIRMED); CI shares COS's signature check and its code.
    mismatch=("SignatureDoesNotMatch", "The calculated signature does not match."),
    # UNCONFIRMED: CI documents no token code; the token is part of the authorization, so a
    # missing or wrong one is InvalidAuthorization.
    bad_token=("InvalidAuthorization", "The security token is missing or wrong."),
    expired_token=("ExpiredToken", "The provided token has expired."),
)

COS_AUTH_CODES: Final = AuthCodes(
    # COS answers an anonymous request to a private bucket with AccessDenied "Access Denied.";
    # it documents no separate malformed-header code (UNCONFIRMED), so that is AccessDenied too.
    missing=("AccessDenied", "Access Denied."),
    malformed=("AccessDenied", "The Authorization header is malformed."),
    unknown_secret_id=("InvalidAccessKeyId", "The access key Id format you provided is invalid."),
    # COS's troubleshooting page: a wrong local clock gives RequestTimeTooSkewed, a request after
    # the signature's validity gives "Request has expired" (an AccessDenied).
    expired=("AccessDenied", "Request has expired"),
    not_yet_valid=(
        "RequestTimeTooSkewed",
        "The difference between the request time and the server's time is too large.",
    ),
    mismatch=("SignatureDoesNotMatch", "The Signature you specified is invalid."),
    bad_token=("AccessDenied", "The security token is missing or wrong."),
    expired_token=("ExpiredToken", "The provided token has expired."),
)


def codes_for(service: Service) -> AuthCodes:
    return CI_AUTH_CODES if service is Service.CI else COS_AUTH_CODES


@dataclass(frozen=True)
class CarriedRequest:
    """What the request carried, decoded, as the signature check needs it."""

    method: str
    path: str
    params: Iterable[tuple[str, str]]
    headers: Iterable[tuple[str, str]]


class KeyTable:
    """The keys CI accepts now: the configured ones, plus those issued and less those disabled
    since the emulator started (CAM's key management, as far as a signature check sees it)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self._issued: dict[str, Credential] = {}
        self._disabled: set[str] = set()

    def issue(self, secret_id: str, credential: Credential) -> None:
        """Accept `secret_id` from now on with this key (a new key, or one enabled again)."""
        self._issued[secret_id] = credential
        self._disabled.discard(secret_id)

    def disable(self, secret_id: str) -> bool:
        """Refuse `secret_id` from now on; False when no such key exists."""
        # `in`, not a lookup: a test's recording table notes only what requests presented.
        if secret_id not in self._issued and secret_id not in self._config.credentials:
            return False
        self._disabled.add(secret_id)
        return True

    def lookup(self, secret_id: str) -> Credential | None:
        # The configured table is asked first, whatever comes next: a test's recording table
        # notes every SecretId a request presented, refused ones included.
        configured = self._config.credential(secret_id)
        if secret_id in self._disabled:
            # UNCONFIRMED what CI answers for a key disabled in CAM; the tolerant reading is
            # that it is refused as a key that does not exist (SecretidNotExist,
            # InvalidAccessKeyId), the codes a deleted key gets.
            return None
        return self._issued.get(secret_id, configured)


def verify(
    request: CarriedRequest, *, service: Service, config: EmulatorConfig, keys: KeyTable
) -> str:
    """Return the request's SecretId if its signature is valid; raise `CiError` otherwise."""
    codes = codes_for(service)
    carried = list(request.headers)
    value = next((v for name, v in carried if name.lower() == "authorization"), None)
    if value is None or not value.strip():
        raise _fail(codes.missing)
    headers = _keyed(carried)
    try:
        value.encode()  # not UTF-8 (a lone surrogate from aiohttp): not a header any SDK writes
        parsed = signing.parse_authorization(value)
    except ValueError as exc:  # UnicodeEncodeError included
        raise _fail(codes.malformed, detail=str(exc)) from exc
    if parsed.algorithm != signing.ALGORITHM:
        raise _fail(codes.malformed, detail=f"unsupported q-sign-algorithm {parsed.algorithm!r}")
    credential = keys.lookup(parsed.secret_id)
    if credential is None:
        raise _fail(codes.unknown_secret_id)
    now = config.clock()
    for start, end in (parsed.sign_time, parsed.key_time):
        if start > end:
            raise _fail(codes.malformed, detail="a time window ends before it starts")
        if now > end:
            raise _fail(codes.expired)
        if start > now + config.max_clock_skew_s:
            raise _fail(codes.not_yet_valid)
    _check_token(credential, headers, token_headers(service), codes, now)
    try:
        expected = signing.expected_signature(
            parsed,
            secret_key=credential.secret_key,
            method=request.method,
            path=request.path,
            params=_keyed(request.params),
            headers=headers,
        )
    except KeyError as exc:
        raise _fail(codes.mismatch, detail=f"signed name {exc.args[0]!r} is absent") from exc
    if not hmac.compare_digest(expected, parsed.signature.lower()):
        raise _fail(codes.mismatch)
    return parsed.secret_id


def _check_token(
    credential: Credential,
    headers: Mapping[str, str],
    accepted: tuple[str, ...],
    codes: AuthCodes,
    now: float,
) -> None:
    """A temporary key's token must travel, equal, in a header the host reads it from.

    It need not be signed. The official Go SDK (cos-go-sdk-v5 `auth.go`,
    `AddAuthorizationHeader`) computes the signature first and only then sets
    `x-cos-security-token`, on every host, CI's included, and the Android SDK's `COSXmlSigner`
    adds it after the Authorization likewise; CI serves both. (The Python SDK and the gateway
    sign it, which CI accepts as well: a signed header is verified like any other.)
    """
    if credential.token is None:
        # A permanent key: a token header, if any, is just another header (signed or not).
        return
    carried = [name for name in accepted if name in headers]
    if not carried:
        raise _fail(codes.bad_token)
    for name in carried:
        if not hmac.compare_digest(headers[name].encode(), credential.token.encode()):
            raise _fail(codes.bad_token)
    if credential.expires_at is not None and now > credential.expires_at:
        raise _fail(codes.expired_token)


def _keyed(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Key by encoded lower-case name (first occurrence wins), as `expected_signature` wants.

    A name or value that is not UTF-8 (aiohttp hands such bytes over as lone surrogates) cannot
    have been signed by any client; it is left out, so listing it fails as "absent".
    """
    keyed: dict[str, str] = {}
    for name, value in items:
        try:
            key = signing.encode(name).lower()
            value.encode()
        except UnicodeEncodeError:
            continue
        keyed.setdefault(key, value)
    return keyed


def _fail(code_message: tuple[str, str], *, detail: str | None = None) -> CiError:
    code, message = code_message
    return CiError(code, f"{message} ({detail})" if detail else message)
