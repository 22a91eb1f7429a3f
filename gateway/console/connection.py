"""Where the gateway is and how to reach it: the address, TLS, and the caller's bearer token.

Each setting comes from its flag, else its environment variable, else a default (the demo's
loopback address, plaintext, no token), so a shell can export them once per gateway.

The bearer token is never a flag value (argv is visible to every user of the machine through
`ps`): it comes from `CI_GATEWAY_TOKEN`, or a file named by `--token-file` /
`CI_GATEWAY_TOKEN_FILE`. It travels as the `authorization: Bearer <token>` metadata of every
call, which is what the gateway's shared mode checks, and is never printed, not even in errors.

A failed call is told apart by whether a connection was ever made: without one (unknown host,
refused, TLS handshake failed) nothing was asked and the address or the TLS options are wrong,
so the CLI says so and exits USAGE; with one, the gateway itself answered, and the status is
shown as it came (REFUSED).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from gateway._proto import service_pb2_grpc, templates_pb2_grpc
from gateway.console import render
from gateway.console.exits import CommandFailed, ExitCode

DEFAULT_ADDRESS = "127.0.0.1:50051"
ENV_ADDRESS = "CI_GATEWAY_ADDRESS"
ENV_TOKEN = "CI_GATEWAY_TOKEN"  # noqa: S105 - the variable's name, not a token
ENV_TOKEN_FILE = "CI_GATEWAY_TOKEN_FILE"  # noqa: S105 - likewise
ENV_CA_FILE = "CI_GATEWAY_CA_FILE"
ENV_CERT_FILE = "CI_GATEWAY_CERT_FILE"
ENV_KEY_FILE = "CI_GATEWAY_KEY_FILE"
ENV_TLS_SERVER_NAME = "CI_GATEWAY_TLS_SERVER_NAME"
ENVIRONMENT = {
    ENV_ADDRESS: f"gateway address (--address; default {DEFAULT_ADDRESS})",
    ENV_TOKEN: "bearer token for a shared gateway (never a flag: argv shows in ps)",
    ENV_TOKEN_FILE: "file holding the bearer token (--token-file)",
    ENV_CA_FILE: "CA bundle the gateway's certificate chains to; implies TLS (--ca-file)",
    ENV_CERT_FILE: "client certificate for mTLS (--cert-file)",
    ENV_KEY_FILE: "its private key (--key-file)",
    ENV_TLS_SERVER_NAME: "name to expect in the gateway's certificate (--tls-server-name)",
}
USER_AGENT = "ci-gateway-jobs"
# `host:port` or `[v6]:port`, or one of gRPC's own target schemes.
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]/]+):(\d{1,5})$")
_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:")
# Visible ASCII: what a gRPC metadata value can carry, and what a token is made of.
_TOKEN = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class Tls:
    root_certificates: bytes | None  # None: the system's trust store
    certificate_chain: bytes | None = None  # with the key: a client certificate (mTLS)
    private_key: bytes | None = field(default=None, repr=False)
    server_name: str | None = None


@dataclass(frozen=True)
class Connection:
    address: str
    tls: Tls | None = None
    token: str | None = field(default=None, repr=False)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def channel(self) -> grpc.aio.Channel:
        options: list[tuple[str, Any]] = [("grpc.primary_user_agent", USER_AGENT)]
        if self.tls is None:
            return grpc.aio.insecure_channel(self.address, options=options)
        if self.tls.server_name:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.tls.root_certificates,
            private_key=self.tls.private_key,
            certificate_chain=self.tls.certificate_chain,
        )
        return grpc.aio.secure_channel(self.address, credentials, options=options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (flags win over the environment)")
    group.add_argument("--address", help=f"gateway host:port (env {ENV_ADDRESS})")
    group.add_argument("--tls", action="store_true", help="use TLS, trusting the system's CAs")
    group.add_argument(
        "--ca-file", type=Path, help=f"trust this CA; implies TLS (env {ENV_CA_FILE})"
    )
    group.add_argument("--cert-file", type=Path, help=f"client certificate (env {ENV_CERT_FILE})")
    group.add_argument("--key-file", type=Path, help=f"its private key (env {ENV_KEY_FILE})")
    group.add_argument(
        "--tls-server-name", help=f"name the certificate must carry (env {ENV_TLS_SERVER_NAME})"
    )
    group.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the bearer token (env {ENV_TOKEN_FILE}, or the token in {ENV_TOKEN})",
    )


def _usage(message: str) -> CommandFailed:
    return CommandFailed(ExitCode.USAGE, message)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:  # the content is never shown, only the path and the reason
        raise _usage(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _read_pem(path: Path, what: str) -> bytes:
    """A PEM file's bytes; gRPC takes nothing else, and told another format it fails only at
    the handshake, as "cannot reach the gateway ... Failed to create security handshaker"."""
    data = _read(path, what)
    if b"-----BEGIN " not in data:
        raise _usage(f"{what} {path} is not PEM (no -----BEGIN line)")
    return data


def check_address(address: str) -> str:
    if address.startswith(_SCHEMES) or _HOST_PORT.match(address):
        return address
    raise _usage(f"the address must be host:port (e.g. {DEFAULT_ADDRESS}), not {address!r}")


def _setting(args: argparse.Namespace, name: str, environ: Mapping[str, str], env: str) -> Any:
    value = getattr(args, name)
    if value is None and environ.get(env):
        value = Path(environ[env]) if name.endswith("_file") else environ[env]
    return value


def _token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    token_file: Path | None = _setting(args, "token_file", environ, ENV_TOKEN_FILE)
    if token_file is not None:
        token, source = _read(token_file, "the token file").decode("utf-8", "replace"), "file"
        token = token.strip()
    elif environ.get(ENV_TOKEN):
        token, source = environ[ENV_TOKEN].strip(), ENV_TOKEN
    else:
        return None
    if not _TOKEN.match(token):
        raise _usage(f"the bearer token ({source}) is empty or not printable ASCII")
    return token


def from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Connection:
    """The connection the flags and environment describe; USAGE failures name what is wrong."""
    address: str | None = _setting(args, "address", environ, ENV_ADDRESS)
    address = check_address(DEFAULT_ADDRESS if address is None else address)
    ca_file: Path | None = _setting(args, "ca_file", environ, ENV_CA_FILE)
    cert_file: Path | None = _setting(args, "cert_file", environ, ENV_CERT_FILE)
    key_file: Path | None = _setting(args, "key_file", environ, ENV_KEY_FILE)
    server_name: str | None = _setting(args, "tls_server_name", environ, ENV_TLS_SERVER_NAME)
    if (cert_file is None) != (key_file is None):
        raise _usage("a client certificate needs both --cert-file and --key-file")
    tls = None
    if args.tls or ca_file or cert_file or server_name:
        tls = Tls(
            root_certificates=_read_pem(ca_file, "the CA file") if ca_file else None,
            certificate_chain=_read_pem(cert_file, "the certificate file") if cert_file else None,
            private_key=_read_pem(key_file, "the key file") if key_file else None,
            server_name=server_name,
        )
    return Connection(address, tls, _token(args, environ))


class Session:
    """One channel to the gateway for the length of one command."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._channel = connection.channel()
        self.stub = service_pb2_grpc.MediaJobServiceStub(self._channel)
        self.templates = templates_pb2_grpc.MediaTemplateServiceStub(self._channel)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return self.connection.metadata

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._channel.close(grace=None)

    def connected(self) -> bool:
        return self._channel.get_state() is grpc.ChannelConnectivity.READY

    def failure(self, error: grpc.aio.AioRpcError) -> CommandFailed:
        """The failure a call's error means: no connection (USAGE) or the gateway's answer."""
        unreachable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        if error.code() in unreachable and not self.connected():
            details = error.details() or ""
            return _usage(
                f"cannot reach the gateway at {self.connection.address}: {details}"
                + self._tls_hint(details)
            )
        return CommandFailed(ExitCode.REFUSED, render.explain(error))

    def _tls_hint(self, details: str) -> str:
        """What gRPC's text means when client and gateway disagree about TLS: a plaintext
        client to a TLS port (a shared gateway's) reads only "Socket closed", a TLS client to a
        plaintext port an OpenSSL code; both left a new user guessing."""
        if self.connection.tls is None and "Socket closed" in details:
            return " (plaintext: if the gateway serves TLS, give --ca-file or --tls)"
        if self.connection.tls is not None and "WRONG_VERSION_NUMBER" in details:
            return " (the gateway does not speak TLS there: drop --tls and --ca-file)"
        return ""

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn an RPC error raised inside into the `CommandFailed` it means."""
        try:
            yield
        except grpc.aio.AioRpcError as error:
            raise self.failure(error) from None
