"""Settings precedence (file < environment < flags) and errors that name the setting."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from gateway.config.load import load_settings
from gateway.config.settings import Retry, ServerLimits, Settings, Shared, Timeouts, Tracking
from gateway.credentials import (
    Credentials,
    EnvironmentCredentialsProvider,
    load_from_environment,
)
from gateway.errors import NoCredentialsError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.listen == "127.0.0.1:50051"
    assert settings.timeouts == Timeouts()


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        'listen = "0.0.0.0:1"\ndefault_bucket = "file-1250000000"\n'
        'default_region = "ap-beijing"\n[timeouts]\nread_s = 7\nconnect_s = 2\n',
    )
    environ = {"CI_GATEWAY_DEFAULT_BUCKET": "env-1250000000", "CI_GATEWAY_TIMEOUTS_READ_S": "9"}
    settings = load_settings(
        config_file=config, environ=environ, overrides={"listen": "127.0.0.1:2", "log_level": None}
    )
    assert settings.listen == "127.0.0.1:2"  # flag beats file
    assert settings.default_bucket == "env-1250000000"  # environment beats file
    assert settings.default_region == "ap-beijing"  # file beats default
    assert settings.timeouts == Timeouts(connect_s=2.0, read_s=9.0)
    assert settings.log_level == "INFO"  # an unset flag changes nothing


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('listne = "x"', "listne"),
        ("[timeouts]\nread = 3", "unknown setting 'timeouts.read'"),
        ("[retry]\nmax_attempts = 1.5", "retry.max_attempts: 1.5 is not a valid int"),
        ("timeouts = 3", "[timeouts]: must be a table"),
        ('default_bucket = "Bad_Bucket"', "default_bucket"),
        ('default_region = "mars"', "default_region"),
        ('endpoint_url = "ftp://host"', "endpoint_url"),
        ("[timeouts]\nread_s = -1", "timeouts.read_s"),
        ('[timeouts]\nread_s = "soon"', "timeouts.read_s"),
        ("max_response_bytes = 10", "max_response_bytes"),
        ("[timeouts]\nread_s = nan", "timeouts.read_s"),
        ("shutdown_grace_s = inf", "shutdown_grace_s"),
        ("[retry]\nsubmit_settle_s = -0.5", "retry.submit_settle_s"),
        ("[retry]\nsubmit_settle_s = nan", "retry.submit_settle_s"),
    ],
)
def test_bad_file_setting_is_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_settings(config_file=write(tmp_path, text))
    assert named in str(caught.value)


@pytest.mark.parametrize("value", ["fast", "nan", "NaN", "inf", "-inf"])
def test_bad_environment_value_is_named(value: str) -> None:
    """Not a number, or not a finite one: a NaN time-out passed the `<= 0` check and then
    failed every call INTERNAL."""
    with pytest.raises(ValueError, match=r"timeouts\.connect_s"):
        load_settings(environ={"CI_GATEWAY_TIMEOUTS_CONNECT_S": value})


NUMERIC_SECTIONS: dict[str, Any] = {
    "": Settings,
    "retry": Retry,
    "server": ServerLimits,
    "shared": Shared,
    "timeouts": Timeouts,
    "tracking": Tracking,
}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("section", "name"),
    [
        (section, option.name)
        for section, kind in NUMERIC_SECTIONS.items()
        for option in fields(kind)
        if option.type in ("float", "int", float, int)
    ],
)
def test_a_number_that_is_not_finite_is_refused_however_built(
    section: str, name: str, value: float
) -> None:
    """Built directly (not through the loader, which refuses nan and inf for every number): a
    NaN budget compares false everywhere (and never runs out), a NaN settle resends unsettled,
    an infinite backoff cap lets a Retry-After wait without end, a NaN time-out bounds no
    attempt, an infinite poll_max_s stops a watch's polls."""
    where = rf"{section}\.{name}" if section else rf"\b{name}"
    with pytest.raises(ValueError, match=rf"{where} must be a finite number"):
        changes: dict[str, Any] = {name: value}
        NUMERIC_SECTIONS[section](**changes)


def test_a_negative_submit_settle_is_refused_however_built() -> None:
    with pytest.raises(ValueError, match=r"retry\.submit_settle_s must be >= 0"):
        Retry(submit_settle_s=-1.0)


def test_credentials_from_environment_hide_their_secrets() -> None:
    environ = {
        "CI_GATEWAY_SECRET_ID": "AKIDenv",
        "CI_GATEWAY_SECRET_KEY": "the-secret-key",
        "CI_GATEWAY_SESSION_TOKEN": "the-token",
    }
    credentials = load_from_environment(environ)
    assert credentials == Credentials("AKIDenv", "the-secret-key", "the-token")
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert "the-secret-key" not in text and "the-token" not in text
        assert "AKIDenv" in text


def test_missing_environment_credentials_are_refused() -> None:
    assert load_from_environment({"CI_GATEWAY_SECRET_ID": "AKID"}) is None
    with pytest.raises(NoCredentialsError, match="CI_GATEWAY_SECRET_KEY"):
        EnvironmentCredentialsProvider({})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CI_GATEWAY_SECRET_ID", "AKIDpasted\n"),
        ("CI_GATEWAY_SECRET_KEY", "key with spaces"),
        ("CI_GATEWAY_SESSION_TOKEN", "token\r\n"),
    ],
)
def test_environment_credentials_that_cannot_be_sent_are_refused_at_start(
    name: str, value: str
) -> None:
    """A SecretId or token with a newline cannot go in an HTTP header: refused at start
    (`serve` exits 2 naming the variable), not with every call failing while readiness is OK."""
    environ = {
        "CI_GATEWAY_SECRET_ID": "AKIDenv",
        "CI_GATEWAY_SECRET_KEY": "the-secret-key",
        "CI_GATEWAY_SESSION_TOKEN": "the-token",
    }
    environ[name] = value
    with pytest.raises(NoCredentialsError, match=name) as caught:
        EnvironmentCredentialsProvider(environ)
    assert value.strip() not in str(caught.value)


def test_retry_section_reaches_the_ci_client_policy(tmp_path: Path) -> None:
    from gateway.credentials import StaticCredentialsProvider
    from gateway.model import Target
    from gateway.upstream.client import CiClient
    from gateway.upstream.retry import read_only_policy
    from gateway.upstream.transport import Transport

    settings = load_settings(
        config_file=write(
            tmp_path,
            "[retry]\nmax_attempts = 5\nthrottled_base_s = 1.5\nbudget_capacity = 7\n"
            "max_in_flight_upstream = 3\n",
        ),
        environ={"CI_GATEWAY_RETRY_TRANSIENT_BASE_S": "0.25"},
    )
    policy = read_only_policy(settings.retry)
    assert policy.max_attempts == 5
    assert (policy.backoff.transient_base_s, policy.backoff.throttled_base_s) == (0.25, 1.5)
    client = CiClient(
        settings=settings,
        credentials=StaticCredentialsProvider(Credentials("AKIDx", "k")),
        transport=Transport(max_body_bytes=settings.max_response_bytes),
    )
    assert client.budget_for(Target("b-1250000000", "ap-guangzhou")).tokens == 7


@pytest.mark.parametrize(
    "text",
    [
        "[retry]\nmax_attempts = 0",
        "[retry]\ntransient_base_s = 9",  # above the 5 s cap
        "[retry]\nmax_in_flight_rpcs = 0",
        "[retry]\nbudget_capacity = -1",
    ],
)
def test_bad_retry_settings_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match="retry"):
        load_settings(config_file=write(tmp_path, text))
