"""Environment variable names: one rule, derived from the declarations, old names kept as aliases.

Every setting's canonical name is `CI_GATEWAY_<SECTION>_<NAME>` (`CI_GATEWAY_<NAME>` at the top
level). Each is checked to set its setting; every name the gateway accepted before the rule is
checked to still set the same setting; and when both are set, the canonical name wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config.load import ENVIRONMENT, load_settings
from gateway.config.reference import reference_markdown
from gateway.config.settings import OPTIONS, Option, Settings, env_name
from gateway.credentials import ENV_SECRET_ID, ENV_SECRET_KEY, ENV_SESSION_TOKEN

TOKEN = "env-token-" + "t" * 30
REDIS_URL = "redis://:pa55@redis.example.internal:6379/0"
PROXY_URL = "http://egress:pa55@proxy.example.internal:3128"

# One valid, non-default value per setting as a variable spells it, and what it becomes. A new
# setting fails `test_every_setting_has_a_sample` until it has one here.
SAMPLES: dict[str, tuple[str, object]] = {
    "listen": ("127.0.0.1:5005", "127.0.0.1:5005"),
    "default_bucket": ("env-1250000000", "env-1250000000"),
    "default_region": ("ap-beijing", "ap-beijing"),
    "endpoint_url": ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    "timeouts.connect_s": ("2.5", 2.5),
    "timeouts.read_s": ("9", 9.0),
    "timeouts.rpc_deadline_s": ("45", 45.0),
    "upstream.proxy_url": (PROXY_URL, PROXY_URL),
    "upstream.no_proxy": (".internal,10.0.0.0/8", ".internal,10.0.0.0/8"),
    "upstream.proxy_from_env": ("false", False),
    "max_response_bytes": ("131072", 131072),
    "log_level": ("DEBUG", "DEBUG"),
    "log_format": ("text", "text"),
    "event_loop": ("asyncio", "asyncio"),
    "metrics_listen": ("127.0.0.1:9091", "127.0.0.1:9091"),
    "health_listen": ("127.0.0.1:8082", "127.0.0.1:8082"),
    "shutdown_grace_s": ("7.5", 7.5),
    "access_file": ("/etc/ci-gateway/access.toml", "/etc/ci-gateway/access.toml"),
    "credentials_file": ("/etc/ci-gateway/credentials.toml", "/etc/ci-gateway/credentials.toml"),
    "server.max_message_bytes": ("1048576", 1048576),
    "server.max_request_bytes": ("65536", 65536),
    "server.max_request_memory_mb": ("24", 24),
    "server.request_receive_timeout_s": ("2.5", 2.5),
    "server.keepalive_time_s": ("30", 30.0),
    "server.keepalive_timeout_s": ("5", 5.0),
    "server.max_connection_age_s": ("120", 120.0),
    "server.max_connection_age_grace_s": ("15", 15.0),
    "server.max_concurrent_rpcs": ("500", 500),
    "server.max_ops_calls": ("200", 200),
    "server.max_connections": ("500", 500),
    "server.max_streams_per_connection": ("128", 128),
    "server.max_connection_idle_s": ("45", 45.0),
    "retry.max_attempts": ("5", 5),
    "retry.transient_base_s": ("0.25", 0.25),
    "retry.throttled_base_s": ("1.5", 1.5),
    "retry.backoff_cap_s": ("8", 8.0),
    "retry.submit_settle_s": ("2.5", 2.5),
    "retry.budget_capacity": ("70", 70.0),
    "retry.budget_retry_cost": ("3", 3.0),
    "retry.budget_timeout_cost": ("6", 6.0),
    "retry.budget_success_refund": ("0.5", 0.5),
    "retry.max_in_flight_upstream": ("64", 64),
    "retry.max_in_flight_rpcs": ("256", 256),
    "tracking.poll_initial_s": ("1", 1.0),
    "tracking.poll_max_s": ("60", 60.0),
    "tracking.max_watchers": ("50", 50),
    "tracking.max_watchers_per_client": ("5", 5),
    "tracking.unreachable_s": ("30", 30.0),
    "callbacks.listen": ("127.0.0.1:8080", "127.0.0.1:8080"),
    "callbacks.public_url": (
        "https://ci-callbacks.example.com",
        "https://ci-callbacks.example.com",
    ),
    "callbacks.token": (TOKEN, TOKEN),
    "shared.redis_url": (REDIS_URL, REDIS_URL),
    "shared.fanout": ("redis", "redis"),
    "shared.submit_store": ("redis", "redis"),
    "shared.submit_store_max_mb": ("64", 64.0),
    "tracing.enabled": ("true", True),
}
# The `*_file` settings name a file holding their secret twin's value (sampled above); once
# loaded, the twin holds the value and the `*_file` setting is empty.
FILE_TWINS = {
    "callbacks.token_file": "callbacks.token",
    "shared.redis_url_file": "shared.redis_url",
    "upstream.proxy_url_file": "upstream.proxy_url",
}
# A second valid value, for settings whose default cannot stand for "some other value".
OTHER_VALUES = {
    "callbacks.listen": "127.0.0.1:8181",
    "callbacks.public_url": "https://elsewhere.example.com",
    "callbacks.token": "other-token-" + "o" * 30,
    "shared.redis_url": "redis://redis.other.internal:6379/1",
}

# Every variable the gateway accepted before names followed one rule, and what it set. Each must
# keep working (as the canonical name or as an alias).
OLD_NAMES = {
    "CI_GATEWAY_LISTEN": "listen",
    "CI_GATEWAY_DEFAULT_BUCKET": "default_bucket",
    "CI_GATEWAY_DEFAULT_REGION": "default_region",
    "CI_GATEWAY_ENDPOINT_URL": "endpoint_url",
    "CI_GATEWAY_CONNECT_TIMEOUT_S": "timeouts.connect_s",
    "CI_GATEWAY_READ_TIMEOUT_S": "timeouts.read_s",
    "CI_GATEWAY_RPC_DEADLINE_S": "timeouts.rpc_deadline_s",
    "CI_GATEWAY_MAX_RESPONSE_BYTES": "max_response_bytes",
    "CI_GATEWAY_LOG_LEVEL": "log_level",
    "CI_GATEWAY_LOG_FORMAT": "log_format",
    "CI_GATEWAY_METRICS_LISTEN": "metrics_listen",
    "CI_GATEWAY_HEALTH_LISTEN": "health_listen",
    "CI_GATEWAY_SHUTDOWN_GRACE_S": "shutdown_grace_s",
    "CI_GATEWAY_ACCESS_FILE": "access_file",
    "CI_GATEWAY_CREDENTIALS_FILE": "credentials_file",
    "CI_GATEWAY_MAX_MESSAGE_BYTES": "server.max_message_bytes",
    "CI_GATEWAY_KEEPALIVE_TIME_S": "server.keepalive_time_s",
    "CI_GATEWAY_KEEPALIVE_TIMEOUT_S": "server.keepalive_timeout_s",
    "CI_GATEWAY_MAX_CONNECTION_AGE_S": "server.max_connection_age_s",
    "CI_GATEWAY_MAX_CONNECTION_AGE_GRACE_S": "server.max_connection_age_grace_s",
    "CI_GATEWAY_MAX_CONCURRENT_RPCS": "server.max_concurrent_rpcs",
    "CI_GATEWAY_MAX_ATTEMPTS": "retry.max_attempts",
    "CI_GATEWAY_TRANSIENT_BASE_S": "retry.transient_base_s",
    "CI_GATEWAY_THROTTLED_BASE_S": "retry.throttled_base_s",
    "CI_GATEWAY_BACKOFF_CAP_S": "retry.backoff_cap_s",
    "CI_GATEWAY_RETRY_BUDGET_CAPACITY": "retry.budget_capacity",
    "CI_GATEWAY_RETRY_BUDGET_RETRY_COST": "retry.budget_retry_cost",
    "CI_GATEWAY_RETRY_BUDGET_TIMEOUT_COST": "retry.budget_timeout_cost",
    "CI_GATEWAY_RETRY_BUDGET_SUCCESS_REFUND": "retry.budget_success_refund",
    "CI_GATEWAY_MAX_IN_FLIGHT_UPSTREAM": "retry.max_in_flight_upstream",
    "CI_GATEWAY_MAX_IN_FLIGHT_RPCS": "retry.max_in_flight_rpcs",
    "CI_GATEWAY_POLL_INITIAL_S": "tracking.poll_initial_s",
    "CI_GATEWAY_POLL_MAX_S": "tracking.poll_max_s",
    "CI_GATEWAY_MAX_WATCHERS": "tracking.max_watchers",
    "CI_GATEWAY_MAX_WATCHERS_PER_CLIENT": "tracking.max_watchers_per_client",
    "CI_GATEWAY_CALLBACK_LISTEN": "callbacks.listen",
    "CI_GATEWAY_CALLBACK_PUBLIC_URL": "callbacks.public_url",
    "CI_GATEWAY_CALLBACK_TOKEN": "callbacks.token",
    "CI_GATEWAY_CALLBACK_TOKEN_FILE": "callbacks.token_file",
    "CI_GATEWAY_REDIS_URL": "shared.redis_url",
    "CI_GATEWAY_REDIS_URL_FILE": "shared.redis_url_file",
    "CI_GATEWAY_FANOUT": "shared.fanout",
    "CI_GATEWAY_SUBMIT_STORE": "shared.submit_store",
}

ALIASED = [option for option in OPTIONS if option.aliases]


def value_of(settings: Settings, key: str) -> Any:
    value: Any = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def assert_sets(name: str, key: str, tmp_path: Path) -> None:
    """Setting `name` alone in the environment sets `key` to its sample."""
    if key in FILE_TWINS:
        twin = FILE_TWINS[key]
        raw, expected = SAMPLES[twin]
        path = tmp_path / f"{key}.secret"
        path.write_text(raw + "\n")
        settings = load_settings(environ={name: str(path)})
        assert value_of(settings, twin) == expected, name
        assert value_of(settings, key) == "", name
    else:
        raw, expected = SAMPLES[key]
        assert value_of(load_settings(environ={name: raw}), key) == expected, name


def test_canonical_names_follow_one_rule() -> None:
    assert env_name("listen") == "CI_GATEWAY_LISTEN"
    assert env_name("timeouts.read_s") == "CI_GATEWAY_TIMEOUTS_READ_S"
    assert env_name("shared.redis_url_file") == "CI_GATEWAY_SHARED_REDIS_URL_FILE"
    for option in OPTIONS:
        assert option.env == "CI_GATEWAY_" + option.key.replace(".", "_").upper()


def test_every_name_is_accepted_once() -> None:
    names = [name for option in OPTIONS for name in (option.env, *option.aliases)]
    credentials = [ENV_SECRET_ID, ENV_SECRET_KEY, ENV_SESSION_TOKEN]
    assert len(set(names + credentials)) == len(names) + len(credentials)
    assert set(ENVIRONMENT) == set(names)


def test_every_setting_has_a_sample() -> None:
    assert set(SAMPLES) | set(FILE_TWINS) == {option.key for option in OPTIONS}


@pytest.mark.parametrize("option", OPTIONS, ids=[option.env for option in OPTIONS])
def test_every_canonical_name_sets_its_setting(option: Option, tmp_path: Path) -> None:
    assert_sets(option.env, option.key, tmp_path)


@pytest.mark.parametrize(("name", "key"), OLD_NAMES.items(), ids=list(OLD_NAMES))
def test_every_old_name_still_works(name: str, key: str, tmp_path: Path) -> None:
    assert ENVIRONMENT[name] == key
    assert_sets(name, key, tmp_path)


def test_the_aliases_are_exactly_the_old_names_that_differ() -> None:
    aliases = {alias: option.key for option in OPTIONS for alias in option.aliases}
    renamed = {name: key for name, key in OLD_NAMES.items() if name != env_name(key)}
    assert aliases == renamed
    table = reference_markdown()  # the README's table, which test_readme_ops keeps equal
    for option in ALIASED:
        (row,) = [line for line in table.splitlines() if line.startswith(f"| `{option.key}` |")]
        assert f"`{option.env}` (alias `{option.aliases[0]}`)" in row


@pytest.mark.parametrize("option", ALIASED, ids=[option.env for option in ALIASED])
def test_the_canonical_name_wins_over_an_alias(option: Option, tmp_path: Path) -> None:
    (alias,) = option.aliases
    if option.key in FILE_TWINS:
        # Two files: the one the canonical name gives is read.
        twin = FILE_TWINS[option.key]
        chosen, ignored = tmp_path / "chosen", tmp_path / "ignored"
        chosen.write_text(SAMPLES[twin][0])
        ignored.write_text(OTHER_VALUES[twin])
        settings = load_settings(environ={alias: str(ignored), option.env: str(chosen)})
        assert value_of(settings, twin) == SAMPLES[twin][1]
        return
    raw, expected = SAMPLES[option.key]
    other = OTHER_VALUES.get(option.key, str(option.default))
    assert other != raw
    settings = load_settings(environ={alias: other, option.env: raw})
    assert value_of(settings, option.key) == expected


def test_an_empty_canonical_variable_counts_as_unset() -> None:
    environ = {"CI_GATEWAY_TIMEOUTS_READ_S": "", "CI_GATEWAY_READ_TIMEOUT_S": "12"}
    assert load_settings(environ=environ).timeouts.read_s == 12.0


def test_the_environment_still_sits_between_file_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("[retry]\nmax_attempts = 2\nbackoff_cap_s = 4\n")
    environ = {"CI_GATEWAY_RETRY_MAX_ATTEMPTS": "6", "CI_GATEWAY_BACKOFF_CAP_S": "7"}
    settings = load_settings(
        config_file=config, environ=environ, overrides={"retry.max_attempts": 9}
    )
    assert settings.retry.max_attempts == 9  # flag beats environment
    assert settings.retry.backoff_cap_s == 7.0  # an alias beats the file like any variable
