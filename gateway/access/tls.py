"""The gRPC port's transport security: TLS from PEM files, optionally requiring client
certificates (mTLS), and whether an address is reachable from outside the host at all.

Certificates are read once, when the port is bound; replacing them takes a restart (gRPC
Python binds a port's credentials for the server's lifetime).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path  # the server's certificate chain, PEM
    key_file: Path  # its private key, PEM
    # CA bundle that signs client certificates; set = every client must present one (mTLS).
    client_ca_file: Path | None = None

    @property
    def mtls(self) -> bool:
        return self.client_ca_file is not None


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """`OSError` names the file that cannot be read (its content is never shown)."""
    key = tls.key_file.read_bytes()
    chain = tls.cert_file.read_bytes()
    client_ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def host_of(address: str) -> str:
    """`127.0.0.1:50051` -> `127.0.0.1`; `[::1]:50051` -> `::1`; `:50051` -> ``."""
    host = address.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback(address: str) -> bool:
    """Whether listening on `address` (host:port) keeps the port on this host only. An empty
    host or a wildcard (`0.0.0.0`, `[::]`) listens everywhere; an unknown name may resolve to
    anything, so only loopback addresses and `localhost` count."""
    host = host_of(address).lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
