"""Who a shared-mode call is: what it presented, and the client that names.

Split in two steps so that an open call can be asked again when the access file changes
(`gateway.access.open_calls`): `presented` reads the call's credentials once, keeping the bearer
token only as its SHA-256 (what the access file lists, so nothing secret outlives the read), and
`resolve` finds the client those credentials name in a given configuration (a new call is
`resolve(config, presented(...))`, `gateway.access.interceptor`).

A token, when sent, decides: a wrong token is refused even on a valid certificate. Otherwise a
certificate from `client_ca_file` names the client by its subject CN or a SAN.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.access.config_file import AccessConfig
from gateway.access.policy import ClientPolicy
from gateway.errors import ClientNotAuthenticated

AUTHORIZATION = "authorization"
BEARER = "bearer "


@dataclass(frozen=True)
class Presented:
    """A call's credentials as the gateway keeps them: never the token itself."""

    # sha256 hex of the bearer token; None when no `authorization` was sent.
    token_sha256: str | None = field(default=None, repr=False)
    # An `authorization` entry that is not `Bearer <token>`.
    malformed: bool = False
    # The verified client certificate's subject CN and SANs, in that order (when no token).
    certificate_names: tuple[str, ...] = ()


def certificate_names(auth_context: Mapping[str, Iterable[bytes]]) -> list[str]:
    """The verified client certificate's subject CN and SANs (DNS, URI, email, IP)."""
    names = []
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth_context.get(key, ()):
            names.append(value.decode("utf-8", "replace"))
    return names


def _authorization(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        if key.lower() == AUTHORIZATION:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def presented(
    metadata: Iterable[tuple[str, str | bytes]], auth_context: Mapping[str, Iterable[bytes]]
) -> Presented:
    """What the call shows: its bearer token (hashed) and its certificate's names."""
    authorization = _authorization(metadata)
    if authorization is None:
        return Presented(certificate_names=tuple(certificate_names(auth_context)))
    # A token decides alone: the certificate's names are never looked at (nor kept).
    if not authorization.lower().startswith(BEARER):
        return Presented(malformed=True)
    token = authorization[len(BEARER) :].strip()
    return Presented(hashlib.sha256(token.encode()).hexdigest())


def resolve(config: AccessConfig, credentials: Presented) -> ClientPolicy:
    """The client `credentials` name in `config`, or `ClientNotAuthenticated` (whose text
    reveals no client)."""
    if credentials.malformed:
        raise ClientNotAuthenticated("the authorization metadata must be 'Bearer <token>'")
    if credentials.token_sha256 is not None:
        client = config.by_token.get(credentials.token_sha256)
        if client is None:
            raise ClientNotAuthenticated("the bearer token is not valid")
        return client
    if config.mtls:
        for name in credentials.certificate_names:
            client = config.by_certificate_name.get(name)
            if client is not None:
                return client
    raise ClientNotAuthenticated(
        # Not "authorization: Bearer ...": the scrubber, rightly, blanks whatever follows that
        # on every status message, which would leave the caller a garbled hint.
        "no valid client credentials: present a client certificate or the metadata entry "
        "'authorization' with the value 'Bearer <token>'"
    )
