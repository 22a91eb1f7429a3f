"""The egress proxy's settings: the standard variables as curl and httpx read them, the
`[upstream]` settings over them, a way to ignore them, and the password in no repr or error."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.config.load import load_settings
from gateway.config.settings import Settings, Upstream
from gateway.upstream.proxy import from_settings

PASSWORD = "pr0xy-pa55-c4n4ry"
ENV_PROXY = f"http://env-user:{PASSWORD}@env-proxy.internal:3128"
EXPLICIT = "http://explicit-proxy.internal:8080"


def upstream(environ: dict[str, str], **more: str) -> Upstream:
    return load_settings(environ=environ | more).upstream


def test_https_proxy_and_no_proxy_are_read_from_the_environment() -> None:
    loaded = upstream({"HTTPS_PROXY": ENV_PROXY, "NO_PROXY": ".internal"})
    assert (loaded.proxy_url, loaded.no_proxy) == (ENV_PROXY, ".internal")
    proxy = from_settings(loaded)
    assert proxy is not None and proxy.address == "env-proxy.internal:3128"
    assert proxy.no_proxy.bypasses("ci.internal", 443)


def test_the_lowercase_name_wins_when_both_are_set() -> None:
    environ = {
        "HTTPS_PROXY": "http://upper:1",
        "https_proxy": "http://lower:2",
        "NO_PROXY": "upper.example",
        "no_proxy": "lower.example",
    }
    assert (upstream(environ).proxy_url, upstream(environ).no_proxy) == (
        "http://lower:2",
        "lower.example",
    )
    # An empty or blank variable counts as unset.
    assert upstream(environ | {"https_proxy": ""}).proxy_url == "http://upper:1"
    assert upstream(environ | {"https_proxy": " \t"}).proxy_url == "http://upper:1"
    assert upstream(environ | {"no_proxy": " "}).no_proxy == "upper.example"


def test_a_proxy_without_a_scheme_is_http() -> None:
    assert upstream({"https_proxy": "proxy.internal:3128"}).proxy_url == (
        "http://proxy.internal:3128"
    )


def test_https_origins_read_https_proxy_and_a_plain_endpoint_http_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://for-https:1", "HTTP_PROXY": "http://for-http:2"}
    assert upstream(environ).proxy_url == "http://for-https:1"
    plain = {"CI_GATEWAY_ENDPOINT_URL": "http://127.0.0.1:9000"}
    assert upstream(environ, **plain).proxy_url == "http://for-http:2"
    tls = {"CI_GATEWAY_ENDPOINT_URL": "https://ci.internal"}
    assert upstream(environ, **tls).proxy_url == "http://for-https:1"
    assert upstream({"HTTP_PROXY": "http://for-http:2"}).proxy_url == ""  # CI is https


def test_an_explicit_setting_wins_over_its_variable(tmp_path: Path) -> None:
    environ = {"HTTPS_PROXY": ENV_PROXY, "NO_PROXY": "from-env.example"}
    by_variable = upstream(environ, CI_GATEWAY_UPSTREAM_PROXY_URL=EXPLICIT)
    assert (by_variable.proxy_url, by_variable.no_proxy) == (EXPLICIT, "from-env.example")
    config = tmp_path / "gateway.toml"
    config.write_text(f'[upstream]\nproxy_url = "{EXPLICIT}"\nno_proxy = "*"\n')
    by_file = load_settings(config_file=config, environ=environ).upstream
    assert (by_file.proxy_url, by_file.no_proxy) == (EXPLICIT, "*")
    secret = tmp_path / "proxy_url"
    secret.write_text(EXPLICIT + "\n")
    by_secret_file = upstream(environ, CI_GATEWAY_UPSTREAM_PROXY_URL_FILE=str(secret))
    assert (by_secret_file.proxy_url, by_secret_file.proxy_url_file) == (EXPLICIT, "")


@pytest.mark.parametrize("spelling", ["false", "0", "off"])
def test_proxy_from_env_off_ignores_the_variables(spelling: str) -> None:
    environ = {
        "HTTPS_PROXY": ENV_PROXY,
        "NO_PROXY": "x",
        "CI_GATEWAY_UPSTREAM_PROXY_FROM_ENV": spelling,
    }
    loaded = upstream(environ)
    assert (loaded.proxy_url, loaded.no_proxy) == ("", "")
    assert from_settings(loaded) is None
    explicit = upstream(environ, CI_GATEWAY_UPSTREAM_PROXY_URL=EXPLICIT)
    assert explicit.proxy_url == EXPLICIT  # the explicit setting still works


def test_no_variables_and_no_settings_mean_direct() -> None:
    assert from_settings(upstream({})) is None
    assert from_settings(Settings().upstream) is None
    # Settings built in code never read the process's environment.
    assert Settings().upstream.proxy_url == ""


@pytest.mark.parametrize(
    "value",
    [
        f"https://u:{PASSWORD}@proxy:443",
        f"socks5://u:{PASSWORD}@proxy:1080",
        f"http://u:{PASSWORD}@proxy:http",
        f"http://u:{PASSWORD}@proxy:3128/path?q",
    ],
)
def test_a_bad_proxy_url_names_its_source_never_its_value(value: str) -> None:
    with pytest.raises(ValueError) as from_env:
        load_settings(environ={"HTTPS_PROXY": value})
    assert str(from_env.value).startswith("HTTPS_PROXY: upstream.proxy_url must be http://")
    with pytest.raises(ValueError) as from_setting:
        load_settings(environ={"CI_GATEWAY_UPSTREAM_PROXY_URL": value})
    for error in (from_env.value, from_setting.value):
        assert PASSWORD not in str(error) and error.__cause__ is None


def test_the_password_is_in_no_repr() -> None:
    settings = load_settings(environ={"HTTPS_PROXY": ENV_PROXY})
    proxy = from_settings(settings.upstream)
    assert settings.upstream.proxy_url == ENV_PROXY
    for text in (repr(settings), str(settings), repr(settings.upstream), repr(proxy)):
        assert PASSWORD not in text and "env-user" not in text
    assert repr(proxy) == "Proxy(env-proxy.internal:3128, with credentials)"


def test_a_proxy_url_and_its_file_together_are_refused() -> None:
    with pytest.raises(ValueError, match="both set"):
        replace(Upstream(), proxy_url=EXPLICIT, proxy_url_file="/run/secrets/proxy")
