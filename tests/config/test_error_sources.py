"""A bad setting's error names where its value came from, as the user wrote it there.

`CI_GATEWAY_TIMEOUTS_READ_S=abc` was refused as "timeouts.read_s: 'abc' is not a valid float":
the user typed neither `timeouts.read_s` nor knew whether the value came from the file, the
environment or a flag. The error now starts with the variable actually set (canonical or
alias), the file's path, or the flag, and goes on as before. A secret's value is still never in
it, whichever source it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config.load import load_settings
from gateway.config.settings import OPTIONS, Option
from gateway.credentials import Credentials
from tests.fixtures.serve_process import ServeRefusal


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def refusal(**sources: object) -> ValueError:
    with pytest.raises(ValueError) as caught:
        load_settings(**sources)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        # Not a number: the coercion's message.
        (
            {"CI_GATEWAY_TIMEOUTS_READ_S": "abc"},
            "CI_GATEWAY_TIMEOUTS_READ_S: timeouts.read_s: 'abc' is not a valid float",
        ),
        # The alias set, not the canonical name.
        (
            {"CI_GATEWAY_READ_TIMEOUT_S": "abc"},
            "CI_GATEWAY_READ_TIMEOUT_S: timeouts.read_s: 'abc' is not a valid float",
        ),
        # Both set: the canonical one is read, so it is the one named.
        (
            {"CI_GATEWAY_TIMEOUTS_READ_S": "abc", "CI_GATEWAY_READ_TIMEOUT_S": "9"},
            "CI_GATEWAY_TIMEOUTS_READ_S: timeouts.read_s: 'abc' is not a valid float",
        ),
        (
            {"CI_GATEWAY_TRACING_ENABLED": "maybe"},
            "CI_GATEWAY_TRACING_ENABLED: tracing.enabled: 'maybe' is not a valid bool "
            "(true or false)",
        ),
        # A number the settings' own checks refuse (in `Settings`, and in a section).
        (
            {"CI_GATEWAY_TIMEOUTS_READ_S": "-1"},
            "CI_GATEWAY_TIMEOUTS_READ_S: timeouts.read_s must be positive",
        ),
        (
            {"CI_GATEWAY_RETRY_MAX_ATTEMPTS": "0"},
            "CI_GATEWAY_RETRY_MAX_ATTEMPTS: retry.max_attempts must be >= 1",
        ),
        # A check of two settings: the one of this section the message names, not the others
        # the environment set there.
        (
            {"CI_GATEWAY_TRACKING_POLL_INITIAL_S": "100", "CI_GATEWAY_TRACKING_MAX_WATCHERS": "9"},
            "CI_GATEWAY_TRACKING_POLL_INITIAL_S: tracking: need 0 < poll_initial_s <= poll_max_s",
        ),
        (
            {"CI_GATEWAY_DEFAULT_BUCKET": "Bad_Bucket"},
            "CI_GATEWAY_DEFAULT_BUCKET: default_bucket 'Bad_Bucket' is not 'name-APPID'",
        ),
    ],
)
def test_a_bad_environment_value_names_its_variable(environ: dict[str, str], message: str) -> None:
    assert str(refusal(environ=environ)) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[timeouts]\nread_s = "soon"', "timeouts.read_s: 'soon' is not a valid float"),
        ("[timeouts]\nread_s = -1", "timeouts.read_s must be positive"),
        ("[tracking]\npoll_initial_s = 100", "tracking: need 0 < poll_initial_s <= poll_max_s"),
        ("[tracking]\nunreachable_s = 0", "tracking.unreachable_s must be > 0"),
        (
            "[server]\nrequest_receive_timeout_s = 0",
            "server.request_receive_timeout_s must be positive",
        ),
        ('default_bucket = "Bad_Bucket"', "default_bucket 'Bad_Bucket' is not 'name-APPID'"),
    ],
)
def test_a_bad_file_value_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path, text)
    assert str(refusal(config_file=config)) == f"{config}: {message}"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "server.keepalive_time_s",
            "abc",
            "--keepalive-time-s: server.keepalive_time_s: 'abc' is not a valid float",
        ),
        (
            "server.max_message_bytes",
            "1024",
            "--max-message-bytes: server.max_message_bytes must be at least 65536",
        ),
        (
            "default_bucket",
            "Bad_Bucket",
            "--default-bucket: default_bucket 'Bad_Bucket' is not 'name-APPID'",
        ),
    ],
)
def test_a_bad_flag_value_names_the_flag(key: str, value: str, message: str) -> None:
    assert str(refusal(overrides={key: value})) == message


def test_the_source_that_set_the_bad_value_is_named_not_another(tmp_path: Path) -> None:
    """The file's good value, the environment's bad one: the variable is named, not the file."""
    config = write(tmp_path, "[timeouts]\nread_s = 9")
    error = refusal(config_file=config, environ={"CI_GATEWAY_TIMEOUTS_READ_S": "abc"})
    assert str(error).startswith("CI_GATEWAY_TIMEOUTS_READ_S: ")
    assert str(config) not in str(error)


def test_serve_names_the_variable(serve_refusal: ServeRefusal) -> None:
    """The walk-through's own command: `CI_GATEWAY_TIMEOUTS_READ_S=abc ci-gateway serve`."""
    stderr = serve_refusal(
        "--listen",
        "127.0.0.1:0",
        credentials=Credentials("AKIDx", "never-printed-secret"),
        CI_GATEWAY_TIMEOUTS_READ_S="abc",
    )
    assert stderr == (
        "ci-gateway: CI_GATEWAY_TIMEOUTS_READ_S: timeouts.read_s: 'abc' is not a valid float\n"
    )


# The secret settings, each with a bad value that holds a secret (a token too short, a password
# in a URL of the wrong kind) and the start of the error, which names the setting.
MARK = "s3cr3t-marker"
SECRETS = {
    "callbacks.token": (MARK, "callbacks.token must be"),
    "shared.redis_url": (f"http://:{MARK}@redis.internal:6379", "shared.redis_url must be"),
    "upstream.proxy_url": (f"socks5://u:{MARK}@proxy:1080", "upstream.proxy_url must be"),
}
SECRET_OPTIONS = [option for option in OPTIONS if option.secret]


def test_every_secret_setting_is_sampled() -> None:
    assert sorted(SECRETS) == sorted(option.key for option in SECRET_OPTIONS)


def chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and every exception chained to it (a traceback shows them all)."""
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:  # bounded: each exception once
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def assert_hidden(error: ValueError) -> None:
    for link in chain(error):
        assert MARK not in str(link) and MARK not in repr(link.args)


@pytest.mark.parametrize("option", SECRET_OPTIONS, ids=lambda option: option.key)
def test_a_bad_secret_names_its_source_never_its_value(option: Option, tmp_path: Path) -> None:
    value, named = SECRETS[option.key]
    for variable in (option.env, *option.aliases):
        error = refusal(environ={variable: value})
        assert str(error).startswith(f"{variable}: {named}")
        assert_hidden(error)
    section, _, name = option.key.partition(".")
    config = write(tmp_path, f'[{section}]\n{name} = "{value}"')
    error = refusal(config_file=config)
    assert str(error).startswith(f"{config}: {named}")
    assert_hidden(error)
    assert option.flag is None  # no flag to name: argv is visible to everyone (`ps`)
