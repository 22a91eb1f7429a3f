"""`python -m ci_emulator`: argument parsing, credentials from the environment, `serve`."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import aiohttp
import pytest

from ci_emulator.cli import build_config, build_launch, build_parser, main
from ci_emulator.config import BucketConfig, CallbackSettings, Credential, EmulatorConfig
from ci_emulator.config_file import EXAMPLE
from ci_emulator.server import serve


def test_parses_buckets_and_credentials(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--bucket",
            f"examplebucket-1250000000:ap-guangzhou:{tmp_path}",
            "--credential",
            "AKIDone:secret",
            "--credential",
            "AKIDtemp:tempsecret:the+token/=:1767225600",
            "--credential",
            "AKIDnoexpiry:k:tok",
        ]
    )
    config = build_config(args, environ={})
    assert config.buckets == (BucketConfig("examplebucket-1250000000", "ap-guangzhou", tmp_path),)
    assert config.credential("AKIDone") == Credential("secret")
    assert config.credential("AKIDtemp") == Credential(
        "tempsecret", token="the+token/=", expires_at=1767225600.0
    )
    assert config.credential("AKIDnoexpiry") == Credential("k", token="tok")


def test_credentials_from_the_environment(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--bucket", f"b-1:ap-beijing:{tmp_path}"])
    environ = {"CI_EMULATOR_SECRET_ID": "AKIDenv", "CI_EMULATOR_SECRET_KEY": "envsecret"}
    assert build_config(args, environ).credential("AKIDenv") == Credential("envsecret")


@pytest.mark.parametrize(
    "argv",
    [
        ["--bucket", "no-colons"],
        ["--bucket", "b-1:ap-beijing:/definitely/not/a/folder"],
        ["--bucket", "b-1:ap-beijing:{tmp}", "--credential", "nosecret"],
        ["--bucket", "b-1:ap-beijing:{tmp}", "--credential", "A:k:t:tomorrow"],
        ["--bucket", "b-1:ap-beijing:{tmp}", "--credential", "A:k:t:1:extra"],
        ["--bucket", "b-1:ap-beijing:{tmp}", "--credential", "A::t"],
        ["--credential", "A:k"],  # no bucket anywhere
        ["--config", "{tmp}/missing.toml"],
        ["--bucket", "b-1:ap-beijing:{tmp}"],  # no credential anywhere
        ["--bucket", "b-1:ap-beijing:{tmp}", "--credential", "A:k", "--log-level", "LOUD"],
    ],
)
def test_bad_arguments_exit_with_usage(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_EMULATOR_SECRET_ID", raising=False)
    monkeypatch.delenv("CI_EMULATOR_SECRET_KEY", raising=False)
    with pytest.raises(SystemExit) as exited:
        main([arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    assert exited.value.code == 2


def test_a_port_in_use_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second `ci-gateway emulator --port 9000` (the README's command) ended in asyncio's
    OSError traceback and status 1."""
    with socket.socket() as holder:  # bound and listening for the whole run
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        bucket = f"b-1250000000:ap-guangzhou:{tmp_path}"
        status = main(["--port", str(port), "--bucket", bucket, "--credential", "AKIDx:k"])
    assert status == 2
    assert capsys.readouterr().err == (
        f"ci-gateway emulator: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_help_exits_cleanly_and_documents_both_routing_forms(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "Host: <bucket>.ci.<region>.myqcloud.com" in text
    assert "/_path/<bucket>/<region>/<ci|cos>/<path>" in text
    assert "ID:KEY[:TOKEN[:EXPIRES_UNIX]]" in text
    # The command the README has a new user type, not a module they never heard of.
    assert text.startswith("usage: ci-gateway emulator ")


def test_help_shows_a_config_file_that_loads_with_the_defaults_it_claims(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--config` is documented where the user looks (`--help`, as the README says), and the
    example printed there is a file the emulator takes, whose `[limits]` and `[callbacks]`
    really are the defaults it says they are."""
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "see config_file" not in text  # a module name means nothing to a user
    for line in EXAMPLE.splitlines():
        assert line.rstrip() in text
    (tmp_path / "emulator.toml").write_text(EXAMPLE)
    (tmp_path / "media" / "examplebucket").mkdir(parents=True)
    launch = build_launch(
        build_parser().parse_args(["--config", str(tmp_path / "emulator.toml")]), {}
    )
    config = launch.config
    assert (launch.host, launch.port, config.fault_seed) == ("127.0.0.1", 9000, 7)
    assert config.buckets == (
        BucketConfig("examplebucket-1250000000", "ap-guangzhou", tmp_path / "media/examplebucket"),
    )
    assert config.credential("AKIDEXAMPLE") == Credential("...", token="...", expires_at=1767225600)
    assert [(q.name, q.max_concurrent) for q in config.queues] == [("fast", 2)]
    defaults = EmulatorConfig(buckets=config.buckets, credentials={})
    assert (config.max_clock_skew_s, config.max_body_bytes) == (
        defaults.max_clock_skew_s,
        defaults.max_body_bytes,
    )
    assert (config.queue_max_concurrent, config.queue_max_size) == (
        defaults.queue_max_concurrent,
        defaults.queue_max_size,
    )
    assert config.callbacks == CallbackSettings()
    assert set(config.faults) == {"CreateMediaJobs"}


def test_credential_repr_hides_secrets() -> None:
    text = repr(Credential("the-secret-key", token="the-token"))
    assert "the-secret-key" not in text and "the-token" not in text


class _Listening(logging.Handler):
    """Captures the URL `serve` logs, so the test waits on an event instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.url: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if "listening on " in message and not self.url.done():
            self.url.set_result(message.rsplit(" ", 1)[-1])


async def test_serve_runs_until_cancelled_and_never_logs_secrets(tmp_path: Path) -> None:
    handler = _Listening()
    logger = logging.getLogger("ci_emulator")
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.DEBUG)
    config = EmulatorConfig(
        buckets=(BucketConfig("b-1250000000", "ap-guangzhou", tmp_path),),
        credentials={"AKIDlogged": "never-log-this-secret"},
    )
    task = asyncio.create_task(serve(config, "127.0.0.1", 0))
    try:
        url = await asyncio.wait_for(asyncio.shield(handler.url), timeout=10)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/_emulator/health") as response,
        ):
            assert response.status == 200
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        task.cancel()
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    assert not any("never-log-this-secret" in message for message in handler.messages)
    assert any("b-1250000000" in message for message in handler.messages)
