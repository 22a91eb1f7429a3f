"""The README's demo command and `serve`'s refusals.

The demo and a refusal run as real processes (the console script's exit status and streams);
the table of bad settings goes through the same `gateway.cli.main` in this process
(`serve_refusal`), since each refusal happens before anything is started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from ci_emulator import demo
from gateway.cli import OTHER_FILES, main
from gateway.config.load import unknown_variables
from gateway.config.settings import OPTIONS, Settings
from gateway.credentials import ENV_SECRET_ID, ENV_SECRET_KEY, Credentials
from tests.fixtures.serve_process import (
    ServeRefusal,
    StartServe,
    gateway_command,
    gateway_env,
    run_gateway,
)


def run_demo(bucket_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`ci-gateway demo --no-serve` on a free port, its bucket in `bucket_dir`."""
    arguments = ("--no-serve", "--listen", "127.0.0.1:0", "--bucket-dir", str(bucket_dir))
    return run_gateway("demo", *arguments, env=gateway_env(None, **env))


def test_demo_submits_a_job_and_prints_its_media_info(tmp_path: Path) -> None:
    done = run_demo(tmp_path / "b")
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split("JobsDetail:", 1)[1]
    job = json.loads(printed)
    assert job["state"] == "JOB_STATE_SUCCESS"
    assert job["tag"] == "MediaInfo"
    video = job["operation"]["media_info"]["stream"]["video"][0]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", "640", "360")
    assert (tmp_path / "b" / "input" / "demo.mp4").is_file()


def test_demo_refuses_an_unknown_log_level_naming_it(tmp_path: Path) -> None:
    """The demo reads `CI_GATEWAY_LOG_LEVEL` as `serve` does: a level logging does not know is
    a usage error naming the variable (status 2), not a ValueError's traceback."""
    done = run_demo(tmp_path / "b", CI_GATEWAY_LOG_LEVEL="LOUD")
    assert done.returncode == 2, done.stderr
    assert "CI_GATEWAY_LOG_LEVEL" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("listen", "said"),
    [
        ("{taken}", "cannot listen on {taken}: is another demo or gateway running there?"),
        ("0.0.0.0:0", "--listen 0.0.0.0:0: the demo has no client authentication"),
    ],
)
def test_a_demo_that_cannot_listen_says_why_in_one_line(
    tmp_path: Path, listen: str, said: str
) -> None:
    """`make demo` run while another demo (or a gateway) holds 127.0.0.1:50051 ended in a
    traceback of `start_gateway`'s OSError, status 1, its emulator left open; and a
    non-loopback `--listen` in one advising `--insecure`, which the demo does not take."""
    with socket.socket() as holder:  # a port in use: bound and listening, for the whole run
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        arguments = ("--no-serve", "--listen", listen.replace("{taken}", taken))
        done = run_gateway(
            "demo", *arguments, "--bucket-dir", str(tmp_path / "b"), env=gateway_env()
        )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "ci-gateway demo: " + said.replace("{taken}", taken)
    )


def test_serve_without_credentials_refuses_to_start() -> None:
    done = run_gateway("serve", "--listen", "127.0.0.1:0", env=gateway_env())
    assert done.returncode == 2
    assert ENV_SECRET_ID in done.stderr


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--default-bucket", "No_Such", "default_bucket"),
        ("--default-region", "Mars!", "default_region"),
        ("--endpoint-url", "ftp://x", "endpoint_url"),
        ("--log-level", "LOUD", "log_level"),
    ],
)
def test_serve_rejects_bad_settings_naming_them(
    serve_refusal: ServeRefusal, flag: str, value: str, named: str
) -> None:
    keys = Credentials("AKIDx", "never-printed-secret")
    stderr = serve_refusal("--listen", "127.0.0.1:0", flag, value, credentials=keys)
    assert named in stderr
    assert keys.secret_key not in stderr


@pytest.mark.parametrize("flag", ["--config", "--access-file", "--credentials-file"])
def test_a_missing_settings_file_is_named_by_its_setting(
    serve_refusal: ServeRefusal, flag: str, tmp_path: Path
) -> None:
    """Three settings name a TOML file; a missing one was a bare "[Errno 2] No such file or
    directory: '...'", which did not say which of them to fix."""
    missing = tmp_path / "missing.toml"
    keys = Credentials("AKIDx", "never-printed-secret")
    stderr = serve_refusal("--listen", "127.0.0.1:0", flag, str(missing), credentials=keys)
    named = flag if flag == "--config" else flag[2:].replace("-", "_")
    assert stderr == (
        f"ci-gateway: {named} '{missing}' cannot be read: No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("flags", "env", "named"),
    [
        (["--listen", "{taken}"], {}, "cannot listen on {taken}"),
        (["--metrics-listen", "{taken}"], {}, "cannot listen on {taken} (metrics_listen)"),
        (["--health-listen", "{taken}"], {}, "cannot listen on {taken} (health_listen)"),
        ([], {"CI_GATEWAY_CALLBACKS_LISTEN": "{taken}"}, "{taken} (callbacks.listen)"),
        ([], {"CI_GATEWAY_CALLBACKS_PUBLIC_URL": "http://gw.example"}, "callbacks.listen"),
        ([], {"CI_GATEWAY_SHARED_FANOUT": "redis"}, "shared.redis_url"),
    ],
)
def test_serve_that_cannot_start_says_why_in_one_line(
    flags: list[str], env: dict[str, str], named: str
) -> None:
    """What is only found while starting (a port taken, settings that conflict once assembled)
    ends `serve` as the refusals before it do, the troubleshooting table's `cannot listen on
    ...` included: status 2 and one line naming the setting, not a traceback."""
    keys = Credentials("AKIDx", "never-printed-secret")
    with socket.socket() as holder:  # a port in use: bound and listening, for the whole run
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        fill = [flag.replace("{taken}", taken) for flag in flags]
        extra = {name: value.replace("{taken}", taken) for name, value in env.items()}
        if "--listen" not in fill:
            fill = ["--listen", "127.0.0.1:0", *fill]
        done = run_gateway("serve", *fill, env=gateway_env(keys, **extra))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("ci-gateway: ")
    assert named.replace("{taken}", taken) in last
    assert keys.secret_key not in done.stderr


def test_the_serving_demo_ends_with_next_steps_that_work_as_printed(tmp_path: Path) -> None:
    """`make demo` keeps serving and prints what to try next; each `ci-gateway jobs` command it
    prints is run here, as printed, against the demo's gateway (the grpcurl ones need grpcurl)."""
    argv = ["demo", "--listen", "127.0.0.1:0", "--bucket-dir", str(tmp_path / "b")]
    with subprocess.Popen(
        gateway_command(*argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as demo:
        assert demo.stdout is not None
        try:
            printed = []
            for line in demo.stdout:  # bounded: the demo prints a few dozen lines, then serves
                printed.append(line)
                if "press Ctrl-C to stop" in line:
                    break
            steps = "".join(printed).split("Try next, from another shell")[1].splitlines()[1:]
            commands = [line.split() for line in steps if " jobs " in line]
            assert {command[2] for command in commands} >= {"describe", "watch", "list", "submit"}
            assert any(line.strip().startswith("grpcurl -plaintext") for line in steps)
            for _, *args in commands:  # `.venv/bin/ci-gateway jobs ...`
                done = run_gateway(*args, env=os.environ)
                assert done.returncode == 0, (args, done.stderr)
                assert "Traceback" not in done.stderr
        finally:
            demo.send_signal(signal.SIGINT)
            assert demo.wait(timeout=60) == 0


async def test_serve_warns_of_variables_that_name_no_setting(
    serve_processes: StartServe,
) -> None:
    """The file and the flags refuse an unknown key; a misspelt variable was ignored without a
    word, its setting left at the default. The operator CLI's own variables are known too; a
    value is never shown (it may be a secret)."""
    keys = Credentials("AKIDx", "never-printed-secret")
    env = gateway_env(
        keys,
        CI_GATEWAY_LISTN="0.0.0.0:50051",  # misspelt
        CI_GATEWAY_TOKN="typo-token-value",
        CI_GATEWAY_ADDRESS="127.0.0.1:50051",  # the CLI's
        CI_GATEWAY_LOG_FORMAT="json",
    )
    serve = await serve_processes("--listen", "127.0.0.1:0", env=env)
    try:
        warned = await serve.line(lambda line: "name no setting" in str(line.get("msg")))
        assert warned["level"] == "WARNING"
        assert warned["msg"].endswith(": CI_GATEWAY_LISTN, CI_GATEWAY_TOKN")
        await serve.line("gateway listening")
        assert await serve.terminate() == 0
    finally:
        await serve.kill()
    assert "typo-token-value" not in serve.log


def test_unknown_variables_are_named_and_known_ones_are_not() -> None:
    environ = {
        "CI_GATEWAY_LISTEN": "x",  # a setting
        "CI_GATEWAY_CONNECT_TIMEOUT_S": "3",  # an alias
        "CI_GATEWAY_TOKEN": "t",  # the CLI's, when told
        "CI_GATEWAY_LISTN": "x",
        "CI_GATEWAY_EMPTY": "",  # empty counts as unset
        "OTHER": "x",
    }
    assert unknown_variables(environ, also_known={"CI_GATEWAY_TOKEN"}) == ["CI_GATEWAY_LISTN"]


def _soft_open_files(pid: int) -> int:
    """The process's soft RLIMIT_NOFILE, as the kernel reports it."""
    for row in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if row.startswith("Max open files"):
            return int(row.split()[3])
    raise AssertionError(f"no open-file limit in /proc/{pid}/limits")


async def test_serve_raises_a_low_soft_open_file_limit_to_the_hard_one(
    serve_processes: StartServe,
) -> None:
    """Started as some container runtimes start it (soft 1,024 under a high hard limit), the
    gateway would fail its 1,025th descriptor: clients refused, calls to CI unable to connect,
    long before `server.max_connections`. It raises the soft limit itself, as Go servers do."""
    serve = await serve_processes(
        "--listen", "127.0.0.1:0", credentials=Credentials("AKIDx", "s"), open_files=(256, 8192)
    )  # fmt: skip
    try:
        await serve.line("gateway listening")
        assert _soft_open_files(serve.process.pid) == 8192
        assert not [line for line in serve.lines if "open-file limit below" in line["msg"]]
        assert await serve.terminate() == 0
    finally:
        await serve.kill()


async def test_serve_warns_when_the_open_file_limit_is_below_what_its_settings_use(
    serve_processes: StartServe,
) -> None:
    """A hard limit below `server.max_connections` and the calls towards CI: said at start-up,
    not found out as connection failures under load; the gateway still serves."""
    serve = await serve_processes(
        "--listen", "127.0.0.1:0", credentials=Credentials("AKIDx", "s"), open_files=(512, 1024)
    )  # fmt: skip
    try:
        warned = await serve.line(lambda line: "open-file limit below" in str(line.get("msg")))
        assert warned["level"] == "WARNING"
        assert warned["open_files_limit"] == 1024
        defaults = Settings()
        upstream = defaults.retry.max_in_flight_upstream
        assert warned["needed"] == defaults.server.max_connections + upstream + OTHER_FILES
        await serve.line("gateway listening")
        assert _soft_open_files(serve.process.pid) == 1024
        assert await serve.terminate() == 0
    finally:
        await serve.kill()


def test_the_top_level_help_names_where_serve_takes_its_keys_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`ci-gateway --help` is where a new user first reads where the keys go: the variables
    and the flag they set, not the Python module that reads the file."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"`{ENV_SECRET_ID}`, `{ENV_SECRET_KEY}`" in text
    assert "`--credentials-file`" in text
    assert "gateway.credentials" not in text


def test_serve_help_says_where_the_settings_without_a_flag_and_the_keys_go(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`serve --help` lists only the settings that have a flag; the rest, and the keys, would
    be invisible there without its closing paragraph."""
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "CI_GATEWAY_<SECTION>_<NAME>" in text
    assert f"{ENV_SECRET_ID} and {ENV_SECRET_KEY}" in text and "--credentials-file" in text
    without_flag = [option for option in OPTIONS if option.flag is None]
    assert without_flag  # "only some have a flag"
    assert all(f"(env {option.env})" not in text for option in without_flag)


@pytest.mark.parametrize(
    ("args", "env", "refusal"),
    [
        (
            ["--config", "gateway.toml"],
            {},
            "gateway.toml: unknown setting 'timeouts.read_sec'",
        ),
        (
            [],
            {"CI_GATEWAY_TIMEOUTS_READ_S": "abc"},
            "CI_GATEWAY_TIMEOUTS_READ_S: timeouts.read_s: 'abc' is not a valid float",
        ),
        (
            ["--log-format", "yaml"],
            {},
            "--log-format: log_format 'yaml' must be one of ('json', 'text')",
        ),
    ],
)
def test_the_readme_quotes_the_refusals_of_bad_settings_as_serve_prints_them(
    serve_refusal: ServeRefusal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    refusal: str,
) -> None:
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    assert f"`{refusal}`" in readme
    (tmp_path / "gateway.toml").write_text("[timeouts]\nread_sec = 20\n")
    monkeypatch.chdir(tmp_path)
    keys = Credentials("AKIDx", "never-printed-secret")
    assert serve_refusal(*args, credentials=keys, **env) == f"ci-gateway: {refusal}\n"


def test_demo_help_gives_the_bucket_folder_the_readme_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The quick start says where the sample video goes; `demo --help` says the same."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"`{demo.DEFAULT_BUCKET_DIR}/{demo.DEMO_OBJECT}`" in readme
    with pytest.raises(SystemExit) as exited:
        demo.main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {demo.DEFAULT_BUCKET_DIR}, under the current directory)" in text
