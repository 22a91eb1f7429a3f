"""Standalone use: configuration files, flags merged over them, and the emulator as a real
process that a client reaches with an STS credential and that stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from ci_emulator.cli import build_launch, build_parser, main
from ci_emulator.config import CallbackSettings, Credential, QueueConfig
from ci_emulator.config_file import ConfigFileError, load_config_file
from ci_emulator.faults import FaultSpec
from ci_emulator.server import start_emulator
from tests.ci_emulator.conftest import SignedClient

BUCKET = "examplebucket-1250000000"
TOML = """
host = "127.0.0.1"
port = 0
fault_seed = 3

[[buckets]]
name = "examplebucket-1250000000"
region = "ap-guangzhou"
root = "media"

[[credentials]]
secret_id = "AKIDfile"
secret_key = "file:key:with:colons"

[[credentials]]
secret_id = "AKIDsts"
secret_key = "stskey"
token = "sts-token"
expires_at = 4102444800

[[queues]]
bucket = "examplebucket-1250000000"
name = "fast"
max_concurrent = 2

[limits]
max_body_bytes = 4096

[callbacks]
attempts = 5
json_array = true

[faults.CreateMediaJobs]
error_500 = 0.25
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "media").mkdir()
    (tmp_path / "emulator.toml").write_text(TOML)
    return tmp_path


def test_a_toml_file_configures_everything(config_dir: Path) -> None:
    args = build_parser().parse_args(["--config", str(config_dir / "emulator.toml")])
    launch = build_launch(args, environ={})
    config = launch.config
    assert (launch.host, launch.port) == ("127.0.0.1", 0)
    assert config.buckets[0].root == config_dir / "media"
    assert config.credential("AKIDfile") == Credential("file:key:with:colons")
    assert config.credential("AKIDsts") == Credential(
        "stskey", token="sts-token", expires_at=4102444800
    )
    assert config.queues == (QueueConfig(BUCKET, "fast", max_concurrent=2),)
    assert config.max_body_bytes == 4096
    assert config.callbacks == CallbackSettings(attempts=5, json_array=True)
    assert config.faults == {"CreateMediaJobs": FaultSpec(error_500=0.25)}
    assert config.fault_seed == 3


def test_json_files_use_the_same_keys(tmp_path: Path) -> None:
    document = {
        "buckets": [{"name": BUCKET, "region": "ap-beijing", "root": str(tmp_path)}],
        "credentials": [{"secret_id": "AKIDjson", "secret_key": "k"}],
        "faults": {"*": {"latency_s": 0.5, "latency_p": 0.1}},
    }
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(document))
    settings = load_config_file(path)
    assert settings.buckets[0].region == "ap-beijing"
    assert settings.faults == {"*": FaultSpec(latency_s=0.5, latency_p=0.1)}


def test_flags_override_and_extend_the_file(config_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    args = build_parser().parse_args(
        [
            "--config", str(config_dir / "emulator.toml"),
            "--port", "9123",
            "--bucket", f"other-1250000000:ap-beijing:{other}",
            "--credential", "AKIDfile:flagkey",
            "--fault", "CreateMediaJobs:error_503=1",
            "--fault-seed", "9",
            "--callback-on-cancel",
        ]
    )  # fmt: skip
    launch = build_launch(args, environ={})
    assert launch.port == 9123
    assert [b.name for b in launch.config.buckets] == [BUCKET, "other-1250000000"]
    assert launch.config.credential("AKIDfile") == Credential("flagkey")
    assert launch.config.faults == {"CreateMediaJobs": FaultSpec(error_503=1.0)}
    assert launch.config.fault_seed == 9
    assert launch.config.callbacks == CallbackSettings(attempts=5, json_array=True, on_cancel=True)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[[buckets]]\nname = 'b-1'\nregion = 'r'\nroot = 'nowhere'\n", "not a folder"),
        ("prot = 9000\n", "prot"),
        ("[[credentials]]\nsecret_id = 'A'\n", "secret_key is required"),
        ("[[credentials]]\nsecret_id = 'A'\nsecret_key = 'k'\nexpires_at = 5\n", "token"),
        ("port = 'high'\n", "port"),
        ("[faults.Nope]\nerror_500 = 1\n", "Nope"),
        ("[faults.CreateMediaJobs]\nerror_500 = 2\n", "probability"),
        ("[callbacks]\nattempts = 0\n", "attempts"),
        ("[limits]\nmax_body_bytes = 'big'\n", "max_body_bytes"),
        ("this is = not toml [", "emulator.toml"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match=complaint):
        load_config_file(path)


def test_a_configured_queue_exists_with_a_stable_id(config_dir: Path) -> None:
    args = build_parser().parse_args(["--config", str(config_dir / "emulator.toml")])
    config = build_launch(args, environ={}).config

    async def queue_ids() -> list[str]:
        async with await start_emulator(config) as emu:
            return sorted(q.queue_id for q in emu.state.queues_of(BUCKET))

    first, second = asyncio.run(queue_ids()), asyncio.run(queue_ids())
    assert len(first) == 2 and first == second


def test_a_config_with_no_credentials_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_EMULATOR_SECRET_ID", raising=False)
    path = tmp_path / "e.toml"
    path.write_text(f"[[buckets]]\nname = '{BUCKET}'\nregion = 'r'\nroot = '.'\n")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path)])
    assert exited.value.code == 2


async def _read_url(stream: asyncio.StreamReader, seen: list[bytes]) -> str:
    # Bounded by the caller's timeout; each pass reads one log line.
    while True:
        raw = await stream.readline()
        seen.append(raw)
        line = raw.decode()
        if not line:
            raise AssertionError("the emulator exited before listening")
        if "listening on " in line:
            return line.rsplit(" ", 1)[-1].strip()


async def test_the_emulator_runs_as_a_process_with_sts_credentials(config_dir: Path) -> None:
    expires = int(time.time()) + 3600
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ci_emulator",
        "--config", str(config_dir / "emulator.toml"),
        "--credential", f"AKIDflag:flagkey:flag-token:{expires}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    log: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            url = await _read_url(process.stderr, log)
        async with aiohttp.ClientSession() as session:
            sts = SignedClient(
                session, url, secret_id="AKIDflag", secret_key="flagkey",
                extra_headers={"x-cos-security-token": "flag-token"},
            )  # fmt: skip
            (await sts.list_jobs()).ok()
            queues = (await sts.send("GET", "/queue")).ok().xml()
            assert queues.findtext("TotalCount") == "2"
            no_token = SignedClient(session, url, secret_id="AKIDflag", secret_key="flagkey")
            refused = await no_token.list_jobs()
            assert (refused.status, refused.code) == (401, "InvalidAuthorization")
            path_style = SignedClient(session, f"{url}/_path/{BUCKET}/ap-guangzhou/ci")
            path_style.secret_id, path_style.secret_key = "AKIDfile", "file:key:with:colons"
            (await path_style.send("GET", "/jobs", params={"tag": "MediaInfo"})).ok()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            log.append(await process.stderr.read())
            code = await process.wait()
    assert code == 0
    text = b"".join(log)
    assert b"AKIDflag" in text  # SecretIds are logged ...
    assert b"stskey" not in text and b"flagkey" not in text and b"flag-token" not in text  # ...
