"""The README's demo command and `serve`'s refusals, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.credentials import ENV_SECRET_ID, ENV_SECRET_KEY


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_demo_submits_a_job_and_prints_its_media_info(tmp_path: Path) -> None:
    done = run_cli(
        "demo", "--no-serve", "--listen", "127.0.0.1:0", "--bucket-dir", str(tmp_path / "b")
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split("JobsDetail:", 1)[1]
    job = json.loads(printed)
    assert job["state"] == "JOB_STATE_SUCCESS"
    assert job["tag"] == "MediaInfo"
    video = job["operation"]["media_info"]["stream"]["video"][0]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", "640", "360")
    assert (tmp_path / "b" / "input" / "demo.mp4").is_file()


def test_serve_without_credentials_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_SECRET_ID, ENV_SECRET_KEY)}
    done = run_cli("serve", "--listen", "127.0.0.1:0", env=env)
    assert done.returncode == 2
    assert ENV_SECRET_ID in done.stderr


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--default-bucket", "No_Such", "default_bucket"),
        ("--default-region", "Mars!", "default_region"),
        ("--endpoint-url", "ftp://x", "endpoint_url"),
    ],
)
def test_serve_rejects_bad_settings_naming_them(flag: str, value: str, named: str) -> None:
    env = dict(os.environ, **{ENV_SECRET_ID: "AKIDx", ENV_SECRET_KEY: "never-printed-secret"})
    done = run_cli("serve", "--listen", "127.0.0.1:0", flag, value, env=env)
    assert done.returncode == 2
    assert named in done.stderr
    assert "never-printed-secret" not in done.stderr + done.stdout
