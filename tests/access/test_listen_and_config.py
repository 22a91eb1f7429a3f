"""Refusing to serve beyond loopback without client authentication, and the two files' checks:
every mistake is refused at start, naming the key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.access.config_file import build_access, load_access_file
from gateway.access.interceptor import ClientAccess, InsecureListenError
from gateway.access.tls import is_loopback
from gateway.api.server import start_gateway
from gateway.config.settings import Settings
from gateway.credentials import (
    ENV_SECRET_ID,
    ENV_SECRET_KEY,
    BucketCredentialsProvider,
    EnvironmentCredentialsProvider,
)
from gateway.credentials.config_file import (
    build_credentials,
    load_credentials_file,
    open_credentials,
)
from gateway.credentials.mounted import DirectoryCredentialsProvider
from gateway.credentials.refreshing import RefreshingCredentialsProvider
from gateway.errors import NoCredentialsError
from tests.access.helpers import canary_credentials, sha256_hex
from tests.conftest import BUCKET
from tests.fixtures.serve_process import ServeRefusal

HASH = sha256_hex("some-token")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.8.9.10:1", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.0.0.5:50051", False),
        ("gateway.internal:50051", False),
    ],
)
def test_what_counts_as_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


async def test_start_gateway_refuses_a_non_loopback_listen_without_authentication(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(listen="0.0.0.0:0", default_bucket=BUCKET)
    provider = EnvironmentCredentialsProvider({ENV_SECRET_ID: "AKIDx", ENV_SECRET_KEY: "k"})
    with pytest.raises(InsecureListenError, match="--insecure"):
        await start_gateway(settings, provider)
    with pytest.raises(InsecureListenError):
        await start_gateway(settings, provider, access=ClientAccess.sidecar())

    caplog.set_level(logging.WARNING)
    sidecar = ClientAccess.sidecar()
    sidecar.check_listen("0.0.0.0:50051", insecure=True)  # asked for: allowed, loudly
    assert "WITHOUT client authentication" in caplog.text
    caplog.clear()
    sidecar.check_listen("127.0.0.1:50051")
    assert caplog.text == ""
    shared = ClientAccess(build_access(_shared_tokens()))
    assert shared.listen_refusal("0.0.0.0:50051") is None
    shared.check_listen("0.0.0.0:50051")
    assert "bearer tokens travel unencrypted" in caplog.text


def _shared_tokens() -> dict[str, object]:
    return {
        "mode": "shared",
        "clients": [{"name": "a", "token_sha256": [HASH], "buckets": ["*"], "operations": ["*"]}],
    }


def test_serve_refuses_a_wildcard_listen_and_bad_files_before_binding(
    tmp_path: Path, serve_refusal: ServeRefusal
) -> None:
    secret = canary_credentials("cli")
    stderr = serve_refusal("--listen", "0.0.0.0:0", credentials=secret)
    assert "refusing to listen on 0.0.0.0:0" in stderr and "--insecure" in stderr
    assert secret.secret_key not in stderr

    bad = tmp_path / "access.toml"
    bad.write_text('mode = "shared"\n')
    stderr = serve_refusal("--listen", "127.0.0.1:0", "--access-file", str(bad), credentials=secret)
    assert "at least one [[clients]]" in stderr and secret.secret_key not in stderr

    creds = tmp_path / "credentials.toml"
    creds.write_text('[accounts.main]\nsource = "vault"\n')
    stderr = serve_refusal("--credentials-file", str(creds))
    assert "accounts.main: source must be one of" in stderr
    assert secret.secret_key not in stderr


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"mode": "open"}, "mode must be one of"),
        ({"mode": "shared"}, "at least one [[clients]]"),
        ({"mood": "shared"}, "unknown key(s) mood"),
        ({"clients": [{"name": "a", "token_sha256": [HASH], "buckets": ["*"],
                       "operations": ["*"]}]}, "apply only in mode shared"),
        ({"mode": "shared", "clients": [{"name": "a", "token_sha256": [HASH],
                                         "operations": ["*"]}]}, "buckets must be a non-empty"),
        ({"mode": "shared", "clients": [{"name": "a", "token_sha256": [HASH], "buckets": ["Bad"],
          "operations": ["*"]}]}, "bucket 'Bad' is not"),
        ({"mode": "shared", "clients": [{"name": "a", "token_sha256": [HASH], "buckets": ["*"],
          "regions": ["Guangzhou"], "operations": ["*"]}]}, "region 'Guangzhou' is not"),
        ({"mode": "shared", "clients": [{"name": "a", "token_sha256": [HASH], "buckets": ["*"],
          "operations": ["drop tables"]}]}, "unknown operation"),
        ({"mode": "shared", "clients": [{"name": "a", "token_sha256": ["abc"], "buckets": ["*"],
          "operations": ["*"]}]}, "64 hex digits"),
        ({"mode": "shared", "clients": [{"name": "a", "buckets": ["*"], "operations": ["*"]}]},
         "give certificate_names, token_sha256 or both"),
        ({"mode": "shared", "clients": [{"name": "a", "certificate_names": ["x"],
          "buckets": ["*"], "operations": ["*"]}]}, "need tls.client_ca_file"),
        ({"mode": "shared", "clients": [
            {"name": "a", "token_sha256": [HASH], "buckets": ["*"], "operations": ["*"]},
            {"name": "b", "token_sha256": [HASH], "buckets": ["*"], "operations": ["*"]}]},
         "a token_sha256 is used twice"),
        ({"mode": "shared", "clients": [{"name": "a", "token_sha256": [HASH], "buckets": ["*"],
          "operations": ["*"], "rate_per_s": 0}]}, "rate_per_s must be positive"),
        ({"mode": "shared", "clients": [{"name": "a", "token_sha256": [HASH], "buckets": ["*"],
          "operations": ["*"], "burst": 5}]}, "burst needs rate_per_s"),
        ({"tls": {"cert_file": "a.crt"}}, "tls: key_file must be a file name"),
    ],
)  # fmt: skip
def test_access_file_mistakes_are_named(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError) as caught:
        build_access(data)
    assert named in str(caught.value)


def test_access_file_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    path.write_text(
        '[tls]\ncert_file = "tls.crt"\nkey_file = "/abs/tls.key"\nclient_ca_file = "ca.crt"\n'
    )
    config = load_access_file(path)
    assert config.tls is not None and config.mtls and not config.shared
    assert config.tls.cert_file == tmp_path / "tls.crt"
    assert config.tls.key_file == Path("/abs/tls.key")
    path.write_text("mode = [")
    with pytest.raises(ValueError, match=str(path)):
        load_access_file(path)


def test_credentials_file_builds_one_provider_per_account(tmp_path: Path) -> None:
    environ = {ENV_SECRET_ID: "AKIDenv", ENV_SECRET_KEY: "env-key"}
    provider = build_credentials(
        {
            "default": "env",
            "accounts": {
                "env": {"source": "environment"},
                "mounted": {"source": "directory", "path": str(tmp_path), "poll_interval_s": 2},
                "role": {
                    "source": "sts",
                    "role_arn": "qcs::cam::uin/1:roleName/r",
                    "region": "ap-guangzhou",
                    "base": "mounted",
                },
            },
            "buckets": {BUCKET: "mounted", "other-1250000001": "role"},
        },
        environ=environ,
    )
    assert isinstance(provider, BucketCredentialsProvider)
    assert isinstance(provider.for_bucket(BUCKET), DirectoryCredentialsProvider)
    assert isinstance(provider.for_bucket("other-1250000001"), RefreshingCredentialsProvider)
    assert isinstance(provider.for_bucket("unlisted-1250000002"), EnvironmentCredentialsProvider)
    assert [status.source for status in provider.statuses()] == [
        "environment",
        f"directory:{tmp_path}",
        "sts:qcs::cam::uin/1:roleName/r",
    ]
    # One account and no bucket map: that account's provider itself.
    single = build_credentials({"accounts": {"m": {"source": "directory", "path": "/x"}}})
    assert isinstance(single, DirectoryCredentialsProvider)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({}, "at least one [accounts.<name>]"),
        ({"accounts": {"a": {"source": "vault"}}}, "accounts.a: source must be one of"),
        ({"accounts": {"a": {"source": "directory"}}}, "accounts.a: path must be"),
        ({"accounts": {"a": {"source": "directory", "path": "/x", "secret_key": "no!"}}},
         "accounts.a: unknown key(s) secret_key"),
        ({"accounts": {"a": {"source": "directory", "path": "/x"},
                       "b": {"source": "directory", "path": "/y"}}}, "default must name"),
        ({"accounts": {"a": {"source": "directory", "path": "/x"}}, "buckets": {"Bad": "a"}},
         "'Bad' is not 'name-APPID'"),
        ({"accounts": {"a": {"source": "directory", "path": "/x"}}, "buckets": {BUCKET: "z"}},
         "'z' is not an account"),
        ({"accounts": {"r": {"source": "sts", "role_arn": "qcs::cam::uin/1:roleName/r",
                             "region": "ap-guangzhou", "base": "r"}}},
         "must name an environment or directory account"),
        ({"accounts": {"a": {"source": "directory", "path": "/x"},
                       "r": {"source": "sts", "role_arn": "arn:aws:iam::1:role/x",
                             "region": "ap-guangzhou", "base": "a"}}}, "is not a CAM role"),
        ({"accounts": {"a": {"source": "directory", "path": "/x"},
                       "r": {"source": "sts", "role_arn": "qcs::cam::uin/1:roleName/r",
                             "region": "ap-guangzhou", "base": "a", "duration_s": 60}}},
         "duration_s must be within"),
    ],
)  # fmt: skip
def test_credentials_file_mistakes_are_named(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError) as caught:
        build_credentials(data, environ={})
    assert named in str(caught.value)


def test_credentials_setting_defaults_to_the_environment(tmp_path: Path) -> None:
    with pytest.raises(NoCredentialsError, match=ENV_SECRET_ID):
        open_credentials("", environ={})
    assert open_credentials("", environ={ENV_SECRET_ID: "a", ENV_SECRET_KEY: "b"}).name == (
        "environment"
    )
    path = tmp_path / "c.toml"
    path.write_text("default = ")
    with pytest.raises(ValueError, match=str(path)):
        load_credentials_file(path)
