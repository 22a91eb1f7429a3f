"""Settings from a TOML file, the environment and flags; then the secrets' files.

Precedence, lowest first: the declared defaults (`gateway.config.settings`), the TOML file,
environment variables, flags. The file and the flags are checked against `OPTIONS`, so an
unknown key is an error naming it rather than a typo silently left at its default, and every
value is coerced to the declared type with an error naming the setting and where its value came
from: the file's path, the environment variable (the name set, alias or not), the flag. The
user typed that name, not necessarily the setting's key. The environment cannot
be held to that (it carries the operator CLI's own `CI_GATEWAY_*` variables, and whatever else
a pod sets): `unknown_variables` names the `CI_GATEWAY_*` ones that set nothing, for `serve`
to warn about.

**Environment variables.** A setting's canonical name is `CI_GATEWAY_<SECTION>_<NAME>`
(`CI_GATEWAY_<NAME>` at the top level), derived from its declaration (`Option.env`). Names the
gateway used before that rule stay accepted as aliases (`Option.aliases`, listed in the README),
so existing deployments keep working. When a canonical name and an alias are both set, the
canonical name wins: it is the documented one, and a leftover alias in an old manifest must not
silently override it. An empty variable counts as unset.

**Secret files.** `callbacks.token` and `shared.redis_url` may instead be read from the file
their `*_file` twin names (a mounted Kubernetes Secret). `resolve_secret_files` reads each once,
with the one secret-file reader (`gateway._files.read_secret_file`), and replaces the `*_file`
setting by the value it holds; its errors name the setting and the path, never the content.

**Proxy variables.** Last, unless `upstream.proxy_from_env` is off, the standard
`HTTPS_PROXY` (or `HTTP_PROXY`) and `NO_PROXY` fill `upstream.proxy_url` and `upstream.no_proxy`
where nothing else set them (`proxy_from_environment`; the rules are in
`gateway.config.settings.Upstream`). They are read here, with the rest of the environment, so
the transport is given settings and never reads the process's environment itself.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway import _toml
from gateway._files import read_secret_file
from gateway.config.settings import OPTIONS, Option, Settings

_BY_KEY: dict[str, Option] = {option.key: option for option in OPTIONS}
# Every accepted environment variable (canonical names and aliases) -> settings key.
ENVIRONMENT: dict[str, str] = {
    name: option.key for option in OPTIONS for name in (option.env, *option.aliases)
}


# The sections: `[name]` tables in TOML, "name.key" in `OPTIONS`.
_SECTIONS = {option.key.split(".")[0] for option in OPTIONS if "." in option.key}
# Secret settings that may come from a file instead: the file's setting is the key + `_file`.
SECRET_FILES: tuple[str, ...] = tuple(option.key for option in OPTIONS if option.secret)


# How a switch may be written in the environment (TOML has its own `true` / `false`).
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _coerce_bool(option: Option, value: Any) -> bool:
    """A switch: TOML's booleans, or one of the words above. `bool("false")` is True, so
    Python's own conversion would turn every written-out `false` on."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{option.key}: {value!r} is not a valid bool (true or false)")


def _coerce(option: Option, value: Any) -> Any:
    template = option.default
    if isinstance(template, bool):
        return _coerce_bool(option, value)
    if value is None or isinstance(template, str) or template is None:
        return value if value is None else str(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{option.key}: {value!r} is not a valid {type(template).__name__}")
    if isinstance(template, int) and isinstance(value, float) and not value.is_integer():
        # `int(1.5)` is 1: a TOML `max_attempts = 1.5` would be cut down without a word.
        raise ValueError(f"{option.key}: {value!r} is not a valid int")
    try:
        number = type(template)(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{option.key}: {value!r} is not a valid {type(template).__name__}"
        ) from exc
    # float("nan") and float("inf") parse, and pass every `<= 0` check after them, but no
    # time-out, size or rate is either: a NaN read time-out failed every call INTERNAL.
    if not math.isfinite(number):
        raise ValueError(f"{option.key}: {value!r} is not a valid {type(template).__name__}")
    return number


def _apply(
    settings: Settings,
    values: Mapping[str, Any],
    source: str,
    names: Mapping[str, str] | None = None,
) -> Settings:
    """`settings` with `values` (keyed like `OPTIONS`, "timeouts.read_s") applied; the
    sections' own checks run on the result. `source` says where the values came from (a file's
    path, "environment", "flags") and `names` what each key was called there (the variable
    set, the flag), for an error to name what the user wrote: "CI_GATEWAY_TIMEOUTS_READ_S:
    timeouts.read_s: 'abc' is not a valid float". Only the name is added: the message is the
    coercion's (which never refuses a secret: each is a string) or the section's own check's,
    which never shows a secret's value."""
    names = names or {}
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        option = _BY_KEY.get(key)
        if option is None:
            raise ValueError(f"{source}: unknown setting {key!r}")
        with _naming(source, names, [key]):
            coerced = _coerce(option, value)
        section, _, name = key.rpartition(".")
        if section:
            nested.setdefault(section, {})[name] = coerced
        else:
            top[key] = coerced
    for section, changes in nested.items():
        with _naming(source, names, [f"{section}.{name}" for name in changes]):
            top[section] = replace(getattr(settings, section), **changes)
    with _naming(source, names, list(values)):  # `Settings` checks some sections' values too
        return replace(settings, **top)


@contextlib.contextmanager
def _naming(source: str, names: Mapping[str, str], keys: Sequence[str]) -> Iterator[None]:
    """A value of `keys` (one source's) was refused, by its coercion or by a check of the
    settings: the error, prefixed with where the values came from. From the environment or
    flags, the names of the keys the message mentions (by key, else by their name within their
    section: "tracking: need 0 < poll_initial_s <= poll_max_s"), else of them all; from a file,
    its path (the message names the settings, the file holds them all)."""
    try:
        yield
    except ValueError as exc:
        message = str(exc)
        given = [key for key in keys if key in names]
        mentioned = [key for key in given if _mentions(message, key)] or [
            key for key in given if _mentions(message, key.rpartition(".")[2])
        ]
        where = " / ".join(names[key] for key in mentioned or given) or source
        raise ValueError(f"{where}: {message}") from None


def _mentions(message: str, word: str) -> bool:
    """`word` in `message` as a name of its own: "read_s" is not in "timeouts.read_s"."""
    return re.search(rf"(?<![\w.]){re.escape(word)}\b", message) is not None


def file_values(path: Path) -> dict[str, Any]:
    """The TOML file's settings, keyed like `OPTIONS` ("timeouts.read_s"), for `_apply` to
    check: an unknown key is named the way the README's table names settings."""
    values: dict[str, Any] = {}
    for key, value in _toml.load(path).items():
        if key in _SECTIONS:
            section = _toml.table(value, f"{path}: [{key}]")
            values.update({f"{key}.{name}": item for name, item in section.items()})
        else:
            values[key] = value
    return values


def environment_names(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings `environ` sets, keyed like `OPTIONS`, each with the variable its value is
    read from: the canonical name if set, else the first alias set (see the module docstring).
    The name is what an error about the value names."""
    names: dict[str, str] = {}
    for option in OPTIONS:
        for name in (option.env, *option.aliases):
            if environ.get(name):
                names[option.key] = name
                break
    return names


def unknown_variables(environ: Mapping[str, str], also_known: Iterable[str] = ()) -> list[str]:
    """The `CI_GATEWAY_*` variables `environ` sets that are neither a setting (canonical name or
    alias) nor in `also_known` (the operator CLI's own): most likely a misspelt setting, left
    at its default. Names only: a value may be a secret."""
    known = ENVIRONMENT.keys() | set(also_known)
    return sorted(
        name
        for name, value in environ.items()
        if name.startswith("CI_GATEWAY_") and value and name not in known
    )


def resolve_secret_files(settings: Settings) -> Settings:
    """`settings` with each secret's `*_file` read now and replaced by the value it holds (the
    `*_file` setting then empty): the files are read once, at start, so a rotated file needs a
    restart. The value is validated like one set directly; errors name the file's setting and
    path, never the content."""
    changes: dict[str, Any] = {}
    for key in SECRET_FILES:
        section, _, name = key.partition(".")
        group = changes.get(section, getattr(settings, section))
        path = getattr(group, f"{name}_file")
        if not path:
            continue
        file_key = f"{key}_file"
        value = read_secret_file(path, label=f"{file_key} {path!r}")
        try:
            changes[section] = replace(group, **{name: value, f"{name}_file": ""})
        except ValueError as exc:  # the section's own check of the value: names no content
            raise ValueError(f"{file_key} {path!r}: {exc}") from None
    return replace(settings, **changes) if changes else settings


def _standard_variable(environ: Mapping[str, str], name: str) -> tuple[str, str]:
    """The variable and its value, the lowercase name first (urllib's rule, hence httpx's and
    requests'); ("", "") when neither is set or both are empty. Blank counts as empty: a
    stray `https_proxy=" "` must not hide a real HTTPS_PROXY."""
    for variable in (name, name.upper()):
        value = environ.get(variable, "").strip()
        if value:
            return variable, value
    return "", ""


def proxy_from_environment(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """`settings` with the standard proxy variables filling `upstream.proxy_url` and
    `upstream.no_proxy` when those are empty and `upstream.proxy_from_env` is on. A bad value is
    an error naming its variable, never the value (it may hold a password)."""
    upstream = settings.upstream
    if not upstream.proxy_from_env:
        return settings
    plain = (settings.endpoint_url or "").startswith("http://")
    changes: dict[str, Any] = {}
    named = []
    if not upstream.proxy_url:
        name, value = _standard_variable(environ, "http_proxy" if plain else "https_proxy")
        if value:
            changes["proxy_url"] = value if "://" in value else "http://" + value
            named.append(name)
    if not upstream.no_proxy:
        name, value = _standard_variable(environ, "no_proxy")
        if value:
            changes["no_proxy"] = value
            named.append(name)
    if not changes:
        return settings
    try:
        return replace(settings, upstream=replace(upstream, **changes))
    except ValueError as exc:  # the section's own check: fixed text, no value
        raise ValueError(f"{' / '.join(named)}: {exc}") from None


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from file < environment < overrides (flags, keyed like `OPTIONS`), then
    read the secrets' `*_file`s (`resolve_secret_files`) and, from `environ`, the standard proxy
    variables (`proxy_from_environment`); `ValueError` names the offending key and where its
    value came from (the file, the variable, the flag)."""
    settings = Settings()
    if config_file is not None:
        settings = _apply(settings, file_values(config_file), str(config_file))
    if environ is not None:
        names = environment_names(environ)
        values = {key: environ[name] for key, name in names.items()}
        settings = _apply(settings, values, "environment", names)
    if overrides:
        given = {key: value for key, value in overrides.items() if value is not None}
        flags = {key: option.flag for key in given if (option := _BY_KEY.get(key)) and option.flag}
        settings = _apply(settings, given, "flags", flags)
    settings = resolve_secret_files(settings)
    if environ is not None:
        settings = proxy_from_environment(settings, environ)
    return settings
