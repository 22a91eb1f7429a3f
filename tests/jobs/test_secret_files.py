"""The secret settings read from files: `callbacks.token_file`, `shared.redis_url_file` and
`upstream.proxy_url_file`.

A file's content (stripped) becomes the setting, read once when the settings are loaded (or, for
settings built in code, when tracking starts). Giving a value and its file is an error naming
both; a file that cannot be used is an error naming the setting and the path, never what the
file holds. End to end: the token from a file is the one the receiver accepts (and CI is handed),
and the Redis URL from a file, with an ACL user's password, is what the gateway's client logs in
with; `ci-gateway serve` does both from a TOML `--config` and logs neither secret.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import grpc
import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError

from ci_emulator.server import RunningEmulator
from gateway._files import MAX_SECRET_FILE_BYTES
from gateway._proto import media_pb2, service_pb2_grpc
from gateway.config.load import load_settings
from gateway.config.settings import Callbacks, Settings, Shared, Tracking, Upstream
from gateway.credentials import Credentials
from gateway.jobs.callbacks import callback_url
from gateway.jobs.redis_store import KEY_PREFIX
from gateway.jobs.runtime import _check as check_tracking_settings
from gateway.model import Target
from tests.conftest import BUCKET, REGION
from tests.fixtures.serve_process import (
    ServeRefusal,
    StartServe,
    wait_until_serving,
    write_config,
)
from tests.integration.test_jobs import assert_matches_sample
from tests.jobs.helpers import (
    assert_ended,
    gateway,
    next_detail,
    redis_acl_user,
    submit,
    watch,
    xml_callback,
)

M = media_pb2
TARGET = Target(BUCKET, REGION)
# After the first look, the next poll would come a minute later: what a watcher learns after its
# first message came by callback.
SLOW_POLLS = Tracking(poll_initial_s=60.0, poll_max_s=60.0)
FILE_TOKEN = "from-a-file-" + "f" * 36
REDIS_URL = "redis://:pa55-in-a-file@redis.example.internal:6379/0"
PROXY_URL = "http://egress:pa55-in-a-file@proxy.example.internal:3128"


@dataclass(frozen=True)
class Secret:
    """One secret setting and its file twin."""

    section: str
    group: Callable[..., object]  # the section's class
    name: str
    env: str  # the file's environment variable
    value: str
    hidden: str  # what must never show up in a repr or an error
    invalid: str  # a value the setting's own check refuses
    refusal: str  # and how that check words it

    @property
    def file_key(self) -> str:
        return f"{self.section}.{self.name}_file"

    def of(self, settings: Settings) -> tuple[str, str]:
        group = getattr(settings, self.section)
        return getattr(group, self.name), getattr(group, f"{self.name}_file")


SECRETS = [
    Secret(
        section="callbacks",
        group=Callbacks,
        name="token",
        env="CI_GATEWAY_CALLBACKS_TOKEN_FILE",
        value=FILE_TOKEN,
        hidden=FILE_TOKEN,
        invalid="a token-but-with-spaces-and-!-marks-0123456789",
        refusal="must be 32-128 of",
    ),
    Secret(
        section="shared",
        group=Shared,
        name="redis_url",
        env="CI_GATEWAY_SHARED_REDIS_URL_FILE",
        value=REDIS_URL,
        hidden="pa55-in-a-file",
        invalid="http://user:pa55-in-a-file@redis.example.internal/0",
        refusal="must be a redis://",
    ),
    Secret(
        section="upstream",
        group=Upstream,
        name="proxy_url",
        env="CI_GATEWAY_UPSTREAM_PROXY_URL_FILE",
        value=PROXY_URL,
        hidden="pa55-in-a-file",
        invalid="https://egress:pa55-in-a-file@proxy.example.internal:3128",
        refusal="must be http://",
    ),
]
IDS = [secret.name for secret in SECRETS]


def secret_file(tmp_path: Path, content: str | bytes, name: str = "secret") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def load_from(source: str, secret: Secret, path: Path, tmp_path: Path) -> Settings:
    """Settings with `secret`'s file named by a TOML file, the environment or a flag."""
    if source == "toml":
        config = tmp_path / "gateway.toml"
        config.write_text(f'[{secret.section}]\n{secret.name}_file = "{path}"\n')
        return load_settings(config_file=config)
    if source == "env":
        return load_settings(environ={secret.env: str(path)})
    return load_settings(overrides={secret.file_key: str(path)})


# ---- loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["toml", "env", "flag"])
@pytest.mark.parametrize("secret", SECRETS, ids=IDS)
def test_a_secret_is_read_from_its_file_stripped_and_stays_out_of_repr(
    tmp_path: Path, secret: Secret, source: str
) -> None:
    # As `openssl rand -hex 32 > file` or an editor leaves it: a trailing newline, maybe more.
    path = secret_file(tmp_path, f"\n  {secret.value}\n\n")
    settings = load_from(source, secret, path, tmp_path)
    assert secret.of(settings) == (secret.value, "")  # the file read, its setting resolved
    check_tracking_settings(settings)
    for text in (repr(settings), str(settings), repr(getattr(settings, secret.section))):
        assert secret.hidden not in text


@pytest.mark.parametrize("secret", SECRETS, ids=IDS)
def test_a_value_and_its_file_together_are_refused_naming_both(
    tmp_path: Path, secret: Secret
) -> None:
    path = secret_file(tmp_path, secret.value)
    config = secret_file(tmp_path, f'[{secret.section}]\n{secret.name} = "{secret.value}"\n', "g")
    attempts: list[Callable[[], object]] = [
        lambda: load_settings(config_file=config, environ={secret.env: str(path)}),
        lambda: load_settings(config_file=config, overrides={secret.file_key: str(path)}),
        lambda: secret.group(**{secret.name: secret.value, f"{secret.name}_file": str(path)}),
    ]
    for attempt in attempts:
        with pytest.raises(ValueError, match="both set") as caught:
            attempt()
        message = str(caught.value)
        assert f"{secret.section}.{secret.name} " in message and secret.file_key in message
        assert secret.hidden not in message


@pytest.mark.parametrize("secret", SECRETS, ids=IDS)
def test_an_unusable_file_is_refused_naming_setting_and_path_never_content(
    tmp_path: Path, secret: Secret
) -> None:
    cases: list[tuple[str, Path, str]] = [
        ("missing", tmp_path / "no-such-file", "No such file"),
        ("a directory", tmp_path, "directory"),
        ("empty", secret_file(tmp_path, "", "empty"), "is empty"),
        ("blank", secret_file(tmp_path, " \n\t\n", "blank"), "is empty"),
        ("not UTF-8", secret_file(tmp_path, b"\xff" + secret.hidden.encode(), "bin"), "UTF-8"),
        (
            "too large",
            secret_file(tmp_path, secret.hidden * (MAX_SECRET_FILE_BYTES // 8), "large"),
            "larger than",
        ),
        ("invalid value", secret_file(tmp_path, secret.invalid, "invalid"), secret.refusal),
    ]
    for what, path, reason in cases:
        with pytest.raises(ValueError) as caught:
            load_settings(environ={secret.env: str(path)})
        message = str(caught.value)
        assert secret.file_key in message and str(path) in message, what
        assert reason in message, (what, message)
        assert secret.hidden not in message and secret.invalid not in message, what
        # Nothing chained either: a traceback would print it.
        error = caught.value
        assert error.__cause__ is None, what
        assert error.__context__ is None or error.__suppress_context__, what


def test_the_cross_setting_rules_count_a_file_as_its_value(tmp_path: Path) -> None:
    shared = Shared(redis_url_file=str(tmp_path / "url"), fanout="redis")
    callbacks = Callbacks(
        listen="127.0.0.1:0",
        public_url="https://ci-callbacks.example.com",
        token_file=str(tmp_path / "token"),
    )
    check_tracking_settings(Settings(callbacks=callbacks, shared=shared))  # not read yet: fine
    with pytest.raises(ValueError, match=r"callbacks\.token \(or callbacks\.token_file\)"):
        check_tracking_settings(
            Settings(callbacks=replace(callbacks, token_file=""), shared=shared)
        )
    with pytest.raises(ValueError, match=r"shared\.redis_url \(or shared\.redis_url_file\)"):
        check_tracking_settings(Settings(shared=replace(shared, redis_url_file="")))


# ---- a gateway started with the files --------------------------------------------------------


async def test_the_token_from_a_file_is_handed_to_ci_and_accepted_by_the_receiver(
    settings: Settings, credentials: Credentials, emulator: RunningEmulator, tmp_path: Path
) -> None:
    # Settings built in code name the file unread: starting the gateway reads it.
    path = secret_file(tmp_path, FILE_TOKEN + "\n", "callback_token")
    callbacks = Callbacks(listen="127.0.0.1:0", public_url="auto", token_file=str(path))
    state = emulator.state
    state.pause_scheduling()
    async with gateway(
        replace(settings, tracking=SLOW_POLLS, callbacks=callbacks), credentials
    ) as gw:
        assert gw.running.tracking is not None
        assert FILE_TOKEN not in repr(gw.running.tracking)
        job = await submit(gw.stub)
        expected = callback_url(gw.callback_base, FILE_TOKEN, TARGET)
        assert state.jobs[job.job_id].spec.callback == expected

        call = watch(gw.stub, job.job_id)
        assert (await next_detail(call)).state == M.JOB_STATE_SUBMITTED
        state.resume_scheduling()
        final = await next_detail(call)  # by CI's callback: the next poll is a minute away
        assert final.state == M.JOB_STATE_SUCCESS
        assert_matches_sample(final.operation.media_info)
        await assert_ended(call)
        (delivery,) = await state.wait_for_callbacks(1)
        assert (delivery.url, delivery.status) == (expected, 200)

        # The same genuine callback, posted again: accepted with the file's token only.
        other = callback_url(gw.callback_base, "not-the-files-token-" + "x" * 24, TARGET)
        async with aiohttp.ClientSession() as http:
            for url, status in ((expected, 200), (other, 404)):
                async with http.post(url, data=xml_callback(final)) as answer:
                    assert answer.status == status, url


@pytest.fixture
async def redis_user(redis_url: str, redis_client: aioredis.Redis) -> AsyncIterator[str]:
    """A Redis URL that logs in as a fresh ACL user with a password; the user is deleted after.
    The default user stays open, so only a connection with these credentials counts as it."""
    parts = urlsplit(redis_url)
    async with redis_acl_user(redis_client) as user:
        yield user.url(str(parts.hostname), parts.port, parts.path)


async def connected_users(client: aioredis.Redis) -> set[str]:
    return {str(entry.get("user")) for entry in await client.client_list()}


async def test_the_redis_url_from_a_file_is_what_the_gateway_logs_in_with(
    settings: Settings,
    credentials: Credentials,
    redis_client: aioredis.Redis,
    redis_user: str,
    tmp_path: Path,
) -> None:
    parts = urlsplit(redis_user)
    assert parts.username and parts.password
    path = secret_file(tmp_path, redis_user + "\n", "redis_url")
    shared = Shared(redis_url_file=str(path), fanout="redis", submit_store="redis")
    async with gateway(replace(settings, shared=shared), credentials) as gw:
        job = await submit(gw.stub, request_id="secret-file-0001")
        assert await redis_client.exists(KEY_PREFIX + "secret-file-0001")
        assert parts.username in await connected_users(redis_client)
        assert gw.running.tracking is not None
        assert parts.password not in repr(gw.running.tracking)
        assert job.job_id

    # The same URL with another password: Redis refuses the login, so it was the file's.
    path.write_text(redis_user.replace(parts.password, "pw-wrong"))
    with pytest.raises(AuthenticationError) as caught:
        async with gateway(replace(settings, shared=shared), credentials):
            pass
    assert parts.password not in str(caught.value)


async def test_serve_reads_both_files_from_its_config_and_logs_neither(
    emulator: RunningEmulator,
    credentials: Credentials,
    redis_client: aioredis.Redis,
    redis_user: str,
    tmp_path: Path,
    serve_processes: StartServe,
) -> None:
    token_path = secret_file(tmp_path, FILE_TOKEN + "\n", "callback_token")
    url_path = secret_file(tmp_path, redis_user + "\n", "redis_url")
    config = write_config(
        tmp_path / "gateway.toml",
        {
            "listen": "127.0.0.1:0",
            "default_bucket": BUCKET,
            "default_region": REGION,
            "endpoint_url": emulator.url,
            "log_format": "json",
            "log_level": "DEBUG",
            "shutdown_grace_s": 5.0,
        },
        tracking={"poll_initial_s": 60.0, "poll_max_s": 60.0},
        callbacks={"listen": "127.0.0.1:0", "public_url": "auto", "token_file": str(token_path)},
        shared={"redis_url_file": str(url_path), "fanout": "redis", "submit_store": "redis"},
    )
    state = emulator.state
    process = await serve_processes("--config", str(config), credentials=credentials)
    listening = await process.line("gateway listening")
    address = str(listening["address"])
    await wait_until_serving(address)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = service_pb2_grpc.MediaJobServiceStub(channel)
        state.pause_scheduling()
        job = await submit(stub, request_id="secret-file-serve-1")
        callback = state.jobs[job.job_id].spec.callback or ""
        assert callback.endswith(f"/{FILE_TOKEN}/{BUCKET}/{REGION}"), callback
        assert await redis_client.exists(KEY_PREFIX + "secret-file-serve-1")
        assert urlsplit(redis_user).username in await connected_users(redis_client)
        call = watch(stub, job.job_id)
        assert (await next_detail(call)).state == M.JOB_STATE_SUBMITTED
        state.resume_scheduling()
        assert (await next_detail(call)).state == M.JOB_STATE_SUCCESS
        await assert_ended(call)
        (delivery,) = await state.wait_for_callbacks(1)
        assert (delivery.url, delivery.status) == (callback, 200)
    assert await process.terminate() == 0, process.log
    password = urlsplit(redis_user).password
    assert password and password not in process.log
    assert FILE_TOKEN not in process.log


# ---- `ci-gateway serve` refusing to start ----------------------------------------------------


KEYS = Credentials("AKIDx", "never-printed-secret")


def test_serve_refuses_unusable_secret_files_naming_setting_and_path(
    tmp_path: Path, serve_refusal: ServeRefusal
) -> None:
    def refusal(*args: str, **env: str) -> str:
        stderr = serve_refusal("--listen", "127.0.0.1:0", *args, credentials=KEYS, **env)
        assert KEYS.secret_key not in stderr
        return stderr

    missing = tmp_path / "missing-token"
    stderr = refusal(CI_GATEWAY_CALLBACKS_TOKEN_FILE=str(missing))
    assert "callbacks.token_file" in stderr and str(missing) in stderr

    for secret in SECRETS:
        invalid = secret_file(tmp_path, secret.invalid + "\n", f"invalid-{secret.name}")
        stderr = refusal(**{secret.env: str(invalid)})
        assert secret.file_key in stderr and str(invalid) in stderr
        assert secret.hidden not in stderr and secret.invalid not in stderr

    token = secret_file(tmp_path, FILE_TOKEN, "token")
    stderr = refusal("--callback-token-file", str(token), CI_GATEWAY_CALLBACKS_TOKEN=FILE_TOKEN)
    assert "callbacks.token and callbacks.token_file are both set" in stderr
    assert FILE_TOKEN not in stderr
