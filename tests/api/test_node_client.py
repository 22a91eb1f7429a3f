"""A Node.js service uses the gateway from the .proto files alone (examples/node/): it follows
a job on the WatchMediaJob stream (or polls), watches again when a watch ends UNAVAILABLE (a
gateway draining for a rolling update, a lost connection), and on an error reads the rich status
the gateway promises every language (`grpc-status-details-bin`: ErrorInfo, RequestInfo,
BadRequest, RetryInfo)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
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
from gateway.config.settings import Settings
from gateway.credentials import Credentials
from gateway.status import DEFAULT_THROTTLED_RETRY_S
from tests.access.helpers import sha256_hex
from tests.api.conftest import labels, scrape
from tests.conftest import BUCKET, REGION, SAMPLE_HEIGHT, SAMPLE_KEY, SAMPLE_WIDTH
from tests.fixtures.accounts import Pki, Serve
from tests.fixtures.serve_process import ServeProcess, StartServe, gateway_env, wait_until_serving
from tests.jobs.helpers import gateway as job_gateway
from tests.jobs.helpers import next_detail, submit, watch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "node"
TIMEOUT_S = 60.0
WAIT_S = 30.0  # one awaited line of the client's or a gateway's (a cold gateway imports a lot)
PACKAGES = ("@grpc/grpc-js", "@grpc/proto-loader", "google-proto-files")
WATCH = "/ci.media.v1.MediaJobService/WatchMediaJob"
DESCRIBE = "/ci.media.v1.MediaJobService/DescribeMediaJobs"


class NodeClient:
    """The example as a child process. Its stderr is read line by line as it comes, so a test
    can act at a point of the run (`line`) while the gateway serves from this same event loop;
    `finish` waits for its end (bounded)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.err: list[str] = []
        self._changed = asyncio.Condition()
        self._out = asyncio.ensure_future(self._read_stdout())
        self._reader = asyncio.ensure_future(self._read_stderr())

    @classmethod
    async def start(
        cls, *args: str, packages: bool = True, env: dict[str, str] | None = None
    ) -> NodeClient:
        node = shutil.which("node")
        assert node, "Node.js is needed for the Node example (see the README)"
        installed = all((EXAMPLE / "node_modules" / name).is_dir() for name in PACKAGES)
        assert not packages or installed, (
            "examples/node dependencies missing: `npm ci --prefix examples/node`"
            " (make test does it)"
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
        return cls(process)

    async def _read_stdout(self) -> bytes:
        assert self.process.stdout is not None
        return await self.process.stdout.read()  # to EOF, when the process exits

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:  # ends at EOF, when the process exits
            async with self._changed:
                self.err.append(raw.decode())
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def line(self, match: Callable[[str], bool], after: int = 0) -> int:
        """The index of the first stderr line from `after` on that matches, waiting for it
        (bounded by WAIT_S)."""

        async def found() -> int:
            async with self._changed:
                while True:  # each pass waits for the next line (or EOF)
                    for index in range(after, len(self.err)):
                        if match(self.err[index].rstrip("\n")):
                            return index
                    assert not self._reader.done(), "the client exited:\n" + "".join(self.err)
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(found(), WAIT_S)
        except TimeoutError:
            raise AssertionError("no such line; stderr:\n" + "".join(self.err)) from None

    async def finish(self) -> tuple[int, str, str]:
        """Exit status, stdout and stderr, once the process has ended (bounded)."""
        try:
            code = await asyncio.wait_for(self.process.wait(), TIMEOUT_S)
        finally:
            await self.close()
        return code, (await self._out).decode(), "".join(self.err)

    async def close(self) -> None:
        """Kill the process if it still runs (a test never leaves one behind), then let the
        readers reach EOF."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await asyncio.wait_for(asyncio.gather(self._out, self._reader), WAIT_S)


async def run_client(
    *args: str, packages: bool = True, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    return await (await NodeClient.start(*args, packages=packages, env=env)).finish()


@pytest.fixture
async def node_clients() -> AsyncIterator[Callable[..., Awaitable[NodeClient]]]:
    """Start clients a test acts on while they run (`NodeClient.start`); any still running
    when the test ends is killed."""
    started: list[NodeClient] = []

    async def start(*args: str) -> NodeClient:
        started.append(await NodeClient.start(*args))
        return started[-1]

    try:
        yield start
    finally:
        for client in started:
            await client.close()


async def serve_gateway(
    serve_processes: StartServe, emulator: RunningEmulator, credentials: Credentials, listen: str
) -> tuple[ServeProcess, str]:
    """A `ci-gateway serve` process in front of the emulator, serving (its health says so), and
    its address; it polls tracked jobs at least every 0.5 s, so a job's end shows soon."""
    serve = await serve_processes(
        "--listen", listen,
        "--endpoint-url", emulator.url,
        "--default-bucket", BUCKET,
        "--default-region", REGION,
        "--log-format", "json",
        env=gateway_env(credentials, CI_GATEWAY_TRACKING_POLL_MAX_S="0.5"),
    )  # fmt: skip
    address = str((await serve.line("gateway listening", WAIT_S))["address"])
    await wait_until_serving(address)
    return serve, address


def starts_with(prefix: str) -> Callable[[str], bool]:
    return lambda line: line.startswith(prefix)


def assert_numbered(err: str, label: str, attempts: int) -> None:
    """The client's `label:` lines (one per try after the first) count the tries in turn:
    `(attempt 2 of N)`, `(attempt 3 of N)`, ..."""
    lines = [line for line in err.splitlines() if line.startswith(f"{label}: ")]
    assert [line.rsplit("(", 1)[1] for line in lines] == [
        f"attempt {n} of {attempts})" for n in range(2, len(lines) + 2)
    ]


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


async def shared_gateway_call(
    tmp_path: Path, pki: Pki, serve: Serve, token: str, operations: list[str]
) -> tuple[str, ...]:
    """A shared gateway over TLS whose one client, `node-service`, has this token and may call
    these operations; the client's arguments to submit a job through it."""
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
operations = {json.dumps(operations)}
"""
    )
    shared = await serve(ClientAccess.from_file(access))
    tls = ("--ca-file", str(pki.directory / "ca.crt"), "--tls-server-name", "localhost")
    return ("--address", shared.address, "--object", SAMPLE_KEY, "--timeout-s", "30", *tls)


async def test_node_client_calls_a_shared_gateway_over_tls_with_a_bearer_token(
    tmp_path: Path, pki: Pki, serve: Serve
) -> None:
    """What a platform team runs: shared mode, TLS, a bearer token (README "Credentials and
    client access"); the token from the environment or a file, never a flag value."""
    token = "tok-" + secrets.token_urlsafe(24)
    call = await shared_gateway_call(tmp_path, pki, serve, token, ["submit", "describe"])
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


async def test_node_client_watches_again_across_a_gateway_restart(
    node_clients: Callable[..., Awaitable[NodeClient]],
    serve_processes: StartServe,
    emulator: RunningEmulator,
    credentials: Credentials,
) -> None:
    """A rolling update: the gateway the client watches through drains (SIGTERM) and a new one
    takes its port. The drain ends the watch UNAVAILABLE (SHUTTING_DOWN); the client watches
    again, failing while nothing listens, until the new gateway sends the job's current state,
    and follows the job to its end there."""
    emulator.state.hold_running()  # the job stays Running until released
    old, address = await serve_gateway(serve_processes, emulator, credentials, "127.0.0.1:0")
    client = await node_clients(
        "--address", address, "--object", SAMPLE_KEY, "--timeout-s", "60",
        "--watch-attempts", "30",  # a cold gateway may take seconds to start on a busy machine
    )  # fmt: skip
    running = await client.line(starts_with("watch: JOB_STATE_RUNNING"))

    assert await old.terminate() == 0
    drained = await old.line("rpc", grpc_method=WATCH, reason="SHUTTING_DOWN")
    assert drained["grpc_code"] == "UNAVAILABLE"
    first = await client.line(starts_with("rewatch: "), after=running)
    assert client.err[first].startswith("rewatch: UNAVAILABLE (SHUTTING_DOWN), watching again in ")
    assert client.err[first].endswith(" ms (attempt 2 of 30)\n")

    new, _ = await serve_gateway(serve_processes, emulator, credentials, address)
    # A new watch's first message is the job's current state: Running, still.
    await client.line(starts_with("watch: JOB_STATE_RUNNING"), after=first)
    emulator.state.release_running()
    code, out, err = await client.finish()
    assert code == 0, err
    assert json.loads(out)["state"] == "JOB_STATE_SUCCESS"
    assert err.splitlines()[-1] == "watch: JOB_STATE_SUCCESS 100", err
    served = await new.line("rpc", grpc_method=WATCH)
    assert served["grpc_code"] == "OK"
    assert served["request_id"] == drained["request_id"]  # the same call, watched again
    # Each watch after the first is announced: attempt 2, 3, ... while no gateway answered.
    assert_numbered(err, "rewatch", 30)


async def test_node_client_polls_again_across_a_gateway_restart(
    node_clients: Callable[..., Awaitable[NodeClient]],
    serve_processes: StartServe,
    emulator: RunningEmulator,
    credentials: Credentials,
) -> None:
    """The same rolling update with `--poll`: describes fail UNAVAILABLE while the gateway
    drains and while nothing listens, and are sent again (`repoll:`) until the new gateway
    answers; the client follows the job to its end there."""
    emulator.state.hold_running()
    old, address = await serve_gateway(serve_processes, emulator, credentials, "127.0.0.1:0")
    client = await node_clients(
        "--address", address, "--object", SAMPLE_KEY, "--timeout-s", "60", "--poll",
        "--watch-attempts", "30",
    )  # fmt: skip
    await old.line("rpc", grpc_method=DESCRIBE)  # polling through the old gateway
    assert await old.terminate() == 0
    first = await client.line(starts_with("repoll: UNAVAILABLE"))
    assert " ms (attempt 2 of 30)" in client.err[first]

    new, _ = await serve_gateway(serve_processes, emulator, credentials, address)
    await new.line("rpc", grpc_method=DESCRIBE, grpc_code="OK")
    emulator.state.release_running()
    code, out, err = await client.finish()
    assert code == 0, err
    assert json.loads(out)["state"] == "JOB_STATE_SUCCESS"
    assert_numbered(err, "repoll", 30)


async def test_node_client_gives_up_when_no_gateway_comes_back(
    node_clients: Callable[..., Awaitable[NodeClient]],
    serve_processes: StartServe,
    emulator: RunningEmulator,
    credentials: Credentials,
) -> None:
    """Its watch attempts run out long before its --timeout-s: it exits 2 with the last
    status, after one `rewatch:` line per watch after the first."""
    emulator.state.hold_running()
    old, address = await serve_gateway(serve_processes, emulator, credentials, "127.0.0.1:0")
    client = await node_clients(
        "--address", address, "--object", SAMPLE_KEY, "--timeout-s", "60", "--watch-attempts", "3"
    )
    await client.line(starts_with("watch: JOB_STATE_RUNNING"))
    assert await old.terminate() == 0
    code, out, err = await client.finish()
    assert (code, out) == (2, "")
    rewatches = [line for line in err.splitlines() if line.startswith("rewatch: ")]
    assert len(rewatches) == 2, err
    assert rewatches[0].startswith("rewatch: UNAVAILABLE (SHUTTING_DOWN), watching again in ")
    assert rewatches[0].endswith(" ms (attempt 2 of 3)")
    assert rewatches[1].startswith("rewatch: UNAVAILABLE") and rewatches[1].endswith(" of 3)")
    assert err.splitlines()[-1].startswith("error UNAVAILABLE (gRPC status 14): "), err


async def test_node_client_waits_as_long_as_retry_info_says(
    node_clients: Callable[..., Awaitable[NodeClient]],
    settings: Settings,
    credentials: Credentials,
    emulator: RunningEmulator,
) -> None:
    """Over its watcher cap the gateway answers RESOURCE_EXHAUSTED with RetryInfo: the client
    watches again after that delay (not its own shorter backoff), and gets in once a place
    is free."""
    tracking = replace(settings.tracking, poll_initial_s=0.05, poll_max_s=0.2)
    capped = replace(settings, tracking=replace(tracking, max_watchers_per_client=1))
    emulator.state.pause_scheduling()  # every job stays Submitted meanwhile
    async with job_gateway(capped, credentials) as gw:
        # The one place of the caller 127.0.0.1 (its peer address, without the port), which
        # the Node client is too.
        holder = watch(gw.stub, (await submit(gw.stub)).job_id)
        await next_detail(holder)
        client = await node_clients("--address", gw.running.address, "--object", SAMPLE_KEY)
        refused = await client.line(starts_with("rewatch: "))
        holder.cancel()
        await gw.tracker.wait_for(lambda stats: stats.watchers == 0)
        emulator.state.resume_scheduling()
        code, out, err = await client.finish()
    assert code == 0, err
    assert json.loads(out)["state"] == "JOB_STATE_SUCCESS"
    delay_ms = round(DEFAULT_THROTTLED_RETRY_S * 1000)  # what the gateway's RetryInfo says
    assert client.err[refused] == (
        f"rewatch: RESOURCE_EXHAUSTED (OVERLOADED), watching again in {delay_ms} ms "
        "(attempt 2 of 10)\n"
    )


async def test_node_client_does_not_watch_again_when_refused(
    tmp_path: Path, pki: Pki, serve: Serve
) -> None:
    """PERMISSION_DENIED (like INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED) would come back
    the same on every watch: reported at once, never watched again."""
    token = "tok-" + secrets.token_urlsafe(24)
    call = await shared_gateway_call(tmp_path, pki, serve, token, ["submit"])  # no describe
    code, out, err = await run_client(*call, env={"CI_GATEWAY_TOKEN": token})
    assert (code, out) == (2, "")
    assert "rewatch:" not in err
    report = err[err.index("error ") :]
    assert report.startswith("error PERMISSION_DENIED (gRPC status 7): ")
    assert "ErrorInfo reason=OPERATION_NOT_ALLOWED domain=ci-gateway" in details_of(report)
