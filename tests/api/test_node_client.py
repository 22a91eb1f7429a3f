"""A Node.js service uses the gateway from the .proto files alone (examples/node/)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
from pathlib import Path

from gateway.access.interceptor import ClientAccess
from gateway.api.server import RunningGateway
from tests.access.helpers import sha256_hex
from tests.conftest import BUCKET, SAMPLE_HEIGHT, SAMPLE_KEY, SAMPLE_WIDTH
from tests.fixtures.accounts import Pki, Serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "node"
TIMEOUT_S = 60.0


async def run_client(
    *args: str, packages: bool = True, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the Node example (see the README)"
    assert not packages or (EXAMPLE / "node_modules" / "@grpc" / "grpc-js").is_dir(), (
        "examples/node dependencies missing: `npm ci --prefix examples/node` (make test does it)"
    )
    process = await asyncio.create_subprocess_exec(
        node,
        str(EXAMPLE / "client.js"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=EXAMPLE,
        env=None if env is None else {**os.environ, **env},
    )
    # The gateway serves from this same event loop: wait without blocking it.
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_node_client_submits_waits_and_prints_the_job(ops_gateway: RunningGateway) -> None:
    code, out, err = await run_client(
        "--address", ops_gateway.address, "--object", SAMPLE_KEY, "--timeout-s", "30"
    )
    assert code == 0, err
    job = json.loads(out)
    assert job["state"] == "JOB_STATE_SUCCESS" and job["tag"] == "MediaInfo"
    assert job["input"]["object"] == SAMPLE_KEY
    (video,) = job["operation"]["media_info"]["stream"]["video"]
    assert video["codec_name"] == "h264"
    assert (video["width"], video["height"]) == (str(SAMPLE_WIDTH), str(SAMPLE_HEIGHT))
    # Trailing metadata reached Node: its own request id came back, and CI's.
    assert "x-request-id=node-" in err and "x-ci-request-id=" in err
    assert "x-ci-request-id=null" not in err


async def test_node_client_reports_a_failed_job(ops_gateway: RunningGateway) -> None:
    code, out, _ = await run_client(
        "--address", ops_gateway.address, "--object", "input/no-such.mp4", "--timeout-s", "30"
    )
    assert code == 1
    assert json.loads(out)["state"] == "JOB_STATE_FAILED"


async def test_node_client_reports_a_grpc_error(ops_gateway: RunningGateway) -> None:
    code, out, err = await run_client(
        "--address", ops_gateway.address, "--object", SAMPLE_KEY, "--bucket", "Not_A_Bucket"
    )
    assert (code, out) == (2, "")
    assert "gRPC status 3" in err  # INVALID_ARGUMENT, from the gateway's validation


async def test_node_client_help_needs_neither_a_gateway_nor_its_packages() -> None:
    code, out, err = await run_client("--help", packages=False)
    assert (code, err) == (0, "")
    assert out.startswith("Usage: node client.js --object KEY")
    for option in ("--address", "--bucket", "--region", "--timeout-s", "--help"):
        assert option in out
    assert "npm ci --prefix examples/node" in out


async def test_node_client_names_a_bad_option_without_a_status() -> None:
    code, out, err = await run_client("--no-such-option", packages=False)
    assert (code, out) == (2, "")
    assert err == "error: Unknown option '--no-such-option'\n"


async def test_node_client_calls_a_shared_gateway_over_tls_with_a_bearer_token(
    tmp_path: Path, pki: Pki, serve: Serve
) -> None:
    """What a platform team runs: shared mode, TLS, a bearer token (README "Credentials and
    client access"); the token from the environment or a file, never a flag value."""
    token = "tok-" + secrets.token_urlsafe(24)
    access = tmp_path / "access.toml"
    access.write_text(
        f"""mode = "shared"
[tls]
cert_file = "{pki.directory / "tls.crt"}"
key_file = "{pki.directory / "tls.key"}"
[[clients]]
name = "node-service"
token_sha256 = ["{sha256_hex(token)}"]
buckets = ["{BUCKET}"]
operations = ["submit", "describe"]
"""
    )
    gateway = await serve(ClientAccess.from_file(access))
    tls = ("--ca-file", str(pki.directory / "ca.crt"), "--tls-server-name", "localhost")
    call = ("--address", gateway.address, "--object", SAMPLE_KEY, "--timeout-s", "30", *tls)
    code, out, err = await run_client(*call, env={"CI_GATEWAY_TOKEN": token})
    assert code == 0, err
    assert json.loads(out)["state"] == "JOB_STATE_SUCCESS"
    assert token not in out + err

    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")  # as `kubectl create secret --from-file` may leave it
    code, _, err = await run_client(*call, "--token-file", str(token_file))
    assert code == 0, err

    code, out, err = await run_client(*call, env={"CI_GATEWAY_TOKEN": ""})
    assert (code, out) == (2, "")
    assert "gRPC status 16" in err  # UNAUTHENTICATED
