"""A Node.js service uses the gateway from the .proto files alone (examples/node/): it follows
a job on the WatchMediaJob stream (or polls), and on an error reads the rich status the gateway
promises every language (`grpc-status-details-bin`: ErrorInfo, RequestInfo, BadRequest)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ci_emulator.hooks import RequestHook
from ci_emulator.hosts import Target
from ci_emulator.server import RunningEmulator
from ci_emulator.xmlbuild import Fields, render_error
from gateway.access.interceptor import ClientAccess
from gateway.api.health import API_SERVICE
from gateway.api.server import RunningGateway
from gateway.status import DEFAULT_THROTTLED_RETRY_S
from tests.access.helpers import sha256_hex
from tests.api.conftest import labels, scrape
from tests.conftest import BUCKET, SAMPLE_HEIGHT, SAMPLE_KEY, SAMPLE_WIDTH
from tests.fixtures.accounts import Pki, Serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "node"
TIMEOUT_S = 60.0
PACKAGES = ("@grpc/grpc-js", "@grpc/proto-loader", "google-proto-files")


async def run_client(
    *args: str, packages: bool = True, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the Node example (see the README)"
    installed = all((EXAMPLE / "node_modules" / name).is_dir() for name in PACKAGES)
    assert not packages or installed, (
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


async def rpcs_started(gateway: RunningGateway) -> dict[str, float]:
    """How many of each follow-up RPC the gateway has seen start (its own metrics)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        started = (await scrape(http, gateway))["grpc_server_started_total"]
    return {
        method: started[labels(grpc_type=kind, grpc_service=API_SERVICE, grpc_method=method)]
        for method, kind in (("WatchMediaJob", "server_stream"), ("DescribeMediaJobs", "unary"))
    }


def answer_every_submit_with(code: str, message: str, request_id: str, status: int) -> RequestHook:
    """An emulator hook: CI refuses every POST (a submit) with this `<Error>`, in CI's form; the
    test picks the RequestId, so it can tell CI's from any other."""
    fields: Fields = [
        ("Code", code),
        ("Message", message),
        ("RequestId", request_id),
        ("TraceId", "t"),
    ]

    async def hook(request: web.Request, target: Target) -> web.StreamResponse | None:
        if request.method != "POST":
            return None
        return web.Response(
            status=status, body=render_error(fields), content_type="application/xml"
        )

    return hook


def details_of(err: str) -> list[str]:
    """The client's detail lines: those its error line is followed by, indented by two."""
    return [line[2:] for line in err.splitlines() if line.startswith("  ")]


async def test_node_client_submits_watches_and_prints_the_job(
    ops_gateway: RunningGateway,
) -> None:
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
    # Followed on the stream, not by polling: a line per message, the last one the final state.
    watched = [line for line in err.splitlines() if line.startswith("watch: ")]
    assert watched and watched[-1] == "watch: JOB_STATE_SUCCESS 100", err
    assert await rpcs_started(ops_gateway) == {"WatchMediaJob": 1, "DescribeMediaJobs": 0}


async def test_node_client_polls_when_asked(ops_gateway: RunningGateway) -> None:
    code, out, err = await run_client(
        "--address", ops_gateway.address, "--object", SAMPLE_KEY, "--timeout-s", "30", "--poll"
    )
    assert code == 0, err
    assert json.loads(out)["state"] == "JOB_STATE_SUCCESS"
    assert "watch: " not in err
    started = await rpcs_started(ops_gateway)
    assert started["WatchMediaJob"] == 0 and started["DescribeMediaJobs"] >= 1


async def test_node_client_reports_a_failed_job(ops_gateway: RunningGateway) -> None:
    code, out, _ = await run_client(
        "--address", ops_gateway.address, "--object", "input/no-such.mp4", "--timeout-s", "30"
    )
    assert code == 1
    assert json.loads(out)["state"] == "JOB_STATE_FAILED"


@pytest.mark.parametrize("follow", [(), ("--poll",)], ids=["watch", "poll"])
async def test_node_client_gives_up_after_its_timeout(
    ops_gateway: RunningGateway, emulator: RunningEmulator, follow: tuple[str, ...]
) -> None:
    """A job that does not end in time: the stream's deadline (or the polling bound) is
    `--timeout-s`, and running out of it is the client's own error, not a gRPC status."""
    emulator.state.pause_scheduling()  # the job stays Submitted
    call = ("--address", ops_gateway.address, "--object", SAMPLE_KEY, "--timeout-s", "1")
    code, out, err = await run_client(*call, *follow)
    assert (code, out) == (2, "")
    last = err.splitlines()[-1]
    assert last.startswith("error: job j") and last.endswith(" did not finish within 1 s"), err
    if not follow:
        assert "watch: JOB_STATE_SUBMITTED -" in err


async def test_node_client_names_the_invalid_field_from_the_bad_request_detail(
    ops_gateway: RunningGateway,
) -> None:
    code, out, err = await run_client(
        "--address", ops_gateway.address, "--object", SAMPLE_KEY, "--bucket", "Not_A_Bucket"
    )
    assert (code, out) == (2, "")
    assert err.startswith("error INVALID_ARGUMENT (gRPC status 3): invalid request: bucket: ")
    details = details_of(err)
    assert details[0] == "ErrorInfo reason=INVALID_REQUEST domain=ci-gateway"
    (violation,) = [line for line in details if line.startswith("BadRequest.")]
    assert violation.startswith('BadRequest.field_violation field=bucket description="')
    assert not any(line.startswith("RequestInfo") for line in details)  # CI was never asked


@pytest.mark.parametrize(
    ("ci_code", "http_status", "grpc_status", "reason", "retry_line"),
    [
        # Terminal: CI's answer, sent on at once.
        ("QueuePaused", 403, "FAILED_PRECONDITION (gRPC status 9)", "QUEUE_PAUSED", None),
        # Throttled: retried, then sent on with the delay to wait (CI sent no Retry-After).
        (
            "SlowDown",
            429,
            "RESOURCE_EXHAUSTED (gRPC status 8)",
            "UPSTREAM_THROTTLED",
            f"RetryInfo retry_delay={DEFAULT_THROTTLED_RETRY_S:g}s",
        ),
    ],
)
async def test_node_client_prints_cis_code_message_and_request_id_from_the_details(
    ops_gateway: RunningGateway,
    emulator: RunningEmulator,
    ci_code: str,
    http_status: int,
    grpc_status: str,
    reason: str,
    retry_line: str | None,
) -> None:
    """CI refuses the submit: what Tencent support asks for (CI's Code, Message, RequestId)
    reaches a Node client through the status details, in their documented lines."""
    message = "Refused by the node test.\n队列已暂停"  # free text, a line break: printed as JSON
    request_id = base64.b64encode(secrets.token_bytes(16)).decode()  # CI's are base64
    emulator.state.request_hooks.append(
        answer_every_submit_with(ci_code, message, request_id, http_status)
    )
    code, out, err = await run_client("--address", ops_gateway.address, "--object", SAMPLE_KEY)
    assert (code, out) == (2, "")
    assert err.startswith(f"error {grpc_status}: CI error {ci_code}: Refused by the node test.\\n")
    details = details_of(err)
    assert len(err.splitlines()) == 1 + len(details)  # CI's line break split no line
    assert details[0] == f"ErrorInfo reason={reason} domain=ci-gateway"
    metadata = [line for line in details if line.startswith("ErrorInfo.metadata ")]
    assert metadata == sorted(metadata)  # one line per entry, by key
    quoted_id = json.dumps(request_id)
    for line in (
        f"ErrorInfo.metadata ci_code={ci_code}",
        f"ErrorInfo.metadata ci_message={json.dumps(message, ensure_ascii=False)}",
        f"ErrorInfo.metadata ci_request_id={quoted_id}",
        f"ErrorInfo.metadata http_status={http_status}",
        f"RequestInfo request_id={quoted_id} serving_data=CI",
    ):
        assert line in details, err
    assert [line for line in details if line.startswith("RetryInfo")] == (
        [retry_line] if retry_line else []
    )
    assert not any(line.startswith("BadRequest") for line in details)


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
