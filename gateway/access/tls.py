"""The gRPC port's transport security: TLS from PEM files, optionally requiring client
certificates (mTLS), and whether an address is reachable from outside the host at all.

Certificates are read once, when the port is bound; replacing them takes a restart (gRPC
Python binds a port's credentials for the server's lifetime). They are read like every other
secret file (`gateway._files.read_secret_file`): size-capped, and an error names the file, never
its content (the private key is one of them).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway._files import read_secret_file

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# A key or a certificate chain is a few KiB; a CA bundle (every public root) about 200 KiB.
MAX_PEM_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path  # the server's certificate chain, PEM
    key_file: Path  # its private key, PEM
    # CA bundle that signs client certificates; set = every client must present one (mTLS).
    client_ca_file: Path | None = None

    @property
    def mtls(self) -> bool:
        return self.client_ca_file is not None


def _pem(path: Path, setting: str) -> bytes:
    text = read_secret_file(path, label=f"tls.{setting} {str(path)!r}", max_bytes=MAX_PEM_BYTES)
    return text.encode() + b"\n"  # PEM ends with a line break; the reader strips it


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """`SecretFileError` (a `ValueError`) names the file that cannot be used, never its
    content."""
    key = _pem(tls.key_file, "key_file")
    chain = _pem(tls.cert_file, "cert_file")
    client_ca = _pem(tls.client_ca_file, "client_ca_file") if tls.client_ca_file else None
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
