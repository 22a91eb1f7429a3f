"""How `ci-gateway jobs` reaches a gateway: the address (flag or environment), TLS and mTLS,
bearer tokens; and every way of not reaching it ends in exit 2 with one clear line."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway
from gateway.console.exits import ExitCode
from tests.access.helpers import token_access_file
from tests.access.test_mtls import mtls_access
from tests.console.conftest import run_jobs
from tests.fixtures.accounts import Pki, Serve

TOKEN = "tok-" + secrets.token_urlsafe(24)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:1", "cannot reach the gateway at 127.0.0.1:1: failed to connect"),
        ("no-such-host.invalid:50051", "cannot reach the gateway at no-such-host.invalid:50051"),
        ("nope", "the address must be host:port (e.g. 127.0.0.1:50051), not 'nope'"),
        ("", "the address must be host:port"),
    ],
    ids=["refused", "unknown-host", "no-port", "empty"],
)
async def test_an_unusable_address_exits_2_with_one_line(address: str, message: str) -> None:
    done = await run_jobs(None, "list", "--address", address)
    assert (done.code, done.out) == (ExitCode.USAGE, "")
    assert done.err.startswith(f"ci-gateway jobs list: {message}"), done.err
    assert done.err.count("\n") == 1


def test_the_installed_command_says_so_without_a_traceback() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CI_GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "jobs", "describe", "j1", "--address", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.startswith("ci-gateway jobs describe: cannot reach the gateway at ")
    assert "Traceback" not in done.stderr and done.stdout == ""


async def test_the_address_comes_from_the_environment(gateway: RunningGateway) -> None:
    done = await run_jobs(None, "list", environ={"CI_GATEWAY_ADDRESS": gateway.address})
    assert done.code == ExitCode.OK, done.err
    # A flag wins over the environment.
    flag = await run_jobs(gateway.address, "list", environ={"CI_GATEWAY_ADDRESS": "127.0.0.1:1"})
    assert flag.code == ExitCode.OK, flag.err


async def test_bearer_tokens_from_the_environment_or_a_file(tmp_path: Path, serve: Serve) -> None:
    gateway = await serve(
        ClientAccess.from_file(token_access_file(tmp_path / "access.toml", ("ops", TOKEN)))
    )
    address = gateway.address
    assert (await run_jobs(address, "list", environ={"CI_GATEWAY_TOKEN": TOKEN})).code == 0
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert (await run_jobs(address, "list", "--token-file", str(token_file))).code == 0
    environ = {"CI_GATEWAY_TOKEN_FILE": str(token_file)}
    assert (await run_jobs(address, "list", environ=environ)).code == 0

    anonymous = await run_jobs(address, "list")
    assert anonymous.code == ExitCode.REFUSED
    assert anonymous.err.startswith("ci-gateway jobs list: UNAUTHENTICATED: ")
    wrong = "tok-" + secrets.token_urlsafe(24)
    refused = await run_jobs(address, "list", environ={"CI_GATEWAY_TOKEN": wrong})
    assert refused.code == ExitCode.REFUSED
    assert wrong not in refused.err + refused.out  # a token is never printed

    token_file.write_text("two words")
    unusable = await run_jobs(address, "list", "--token-file", str(token_file))
    assert unusable.code == ExitCode.USAGE
    assert "the bearer token (file) is empty or not printable ASCII" in unusable.err


async def test_tls_with_a_token_and_mtls_with_a_client_certificate(
    tmp_path: Path, pki: Pki, serve: Serve
) -> None:
    gateway = await serve(mtls_access(tmp_path, pki))
    leaf = pki.ca.issue_cert("transcoder.media.svc", common_name="transcoder.media.svc")
    leaf.private_key_pem.write_to_path(tmp_path / "client.key")
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(tmp_path / "client.crt", append=True)
    tls = ("--ca-file", str(pki.directory / "ca.crt"), "--tls-server-name", "localhost")
    client = (
        "--cert-file",
        str(tmp_path / "client.crt"),
        "--key-file",
        str(tmp_path / "client.key"),
    )

    done = await run_jobs(gateway.address, "list", *tls, *client)
    assert done.code == ExitCode.OK, done.err
    environ = {
        "CI_GATEWAY_CA_FILE": str(pki.directory / "ca.crt"),
        "CI_GATEWAY_TLS_SERVER_NAME": "localhost",
        "CI_GATEWAY_CERT_FILE": str(tmp_path / "client.crt"),
        "CI_GATEWAY_KEY_FILE": str(tmp_path / "client.key"),
    }
    assert (await run_jobs(gateway.address, "list", environ=environ)).code == ExitCode.OK

    # Without a client certificate this gateway (mTLS) completes no handshake: no connection.
    anonymous = await run_jobs(gateway.address, "list", *tls)
    assert anonymous.code == ExitCode.USAGE
    assert anonymous.err.startswith(
        f"ci-gateway jobs list: cannot reach the gateway at {gateway.address}"
    )
    plaintext = await run_jobs(gateway.address, "list")
    assert plaintext.code == ExitCode.USAGE, plaintext.err
    # The bare "Socket closed" did not say that TLS was missing.
    assert plaintext.err.endswith(
        "(plaintext: if the gateway serves TLS, give --ca-file or --tls)\n"
    ), plaintext.err


async def test_tls_to_a_plaintext_gateway_says_so(gateway: RunningGateway, pki: Pki) -> None:
    """A TLS client of a plaintext port got OpenSSL's WRONG_VERSION_NUMBER and no more."""
    done = await run_jobs(gateway.address, "list", "--ca-file", str(pki.directory / "ca.crt"))
    assert done.code == ExitCode.USAGE
    assert done.err.startswith(
        f"ci-gateway jobs list: cannot reach the gateway at {gateway.address}: "
    )
    assert done.err.endswith("(the gateway does not speak TLS there: drop --tls and --ca-file)\n")


async def test_unusable_tls_options_exit_2_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.crt"
    done = await run_jobs("127.0.0.1:1", "list", "--ca-file", str(missing))
    assert done.code == ExitCode.USAGE
    assert (
        done.err
        == f"ci-gateway jobs list: cannot read the CA file {missing}: No such file or directory\n"
    )
    # Not PEM (a DER file, a pasted fingerprint): named as such, not "cannot reach the gateway"
    # after gRPC fails to build its handshaker.
    der = tmp_path / "ca.der"
    der.write_bytes(b"0\x82\x01\n")
    not_pem = await run_jobs("127.0.0.1:1", "list", "--ca-file", str(der))
    assert (not_pem.code, not_pem.err) == (
        ExitCode.USAGE,
        f"ci-gateway jobs list: the CA file {der} is not PEM (no -----BEGIN line)\n",
    )
    half = await run_jobs("127.0.0.1:1", "list", "--cert-file", str(missing))
    assert half.code == ExitCode.USAGE
    assert "a client certificate needs both --cert-file and --key-file" in half.err
