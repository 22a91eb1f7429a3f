"""Strict reading of configuration tables: TOML tables, or JSON objects (they parse alike).

Every configuration file (settings, access, credentials, the emulator's) is a few nested tables
written by hand, so the same two mistakes recur: a misspelt key, and a value of the wrong type.
Left alone, the first silently keeps a setting at its default (a typo in `token_sha256` would
admit nobody, or a typo in a limit would keep the default limit), and the second surfaces later
as a `TypeError` far from the file. So each table is read through `table`, which names the keys
it accepts and refuses any other, and each value through `required` / `optional`, which check
its type. Errors are `ValueError`s that say where the value sits (`accounts.main: path must be
a string`); the caller prefixes the file's name. None of them quotes a value, so a secret in
the wrong place is never echoed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_KIND_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
}


def _at(where: str, problem: str) -> str:
    return f"{where}: {problem}" if where else problem


def load(path: Path) -> dict[str, Any]:
    """The parsed TOML file; `ValueError` naming `path` when it is not TOML (an `OSError` when
    it cannot be read)."""
    with path.open("rb") as handle:
        try:
            return tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: {exc}") from None


def table(value: object, where: str, keys: Collection[str] | None = None) -> dict[str, Any]:
    """`value` as a table whose keys are all among `keys` (None: any key, for tables keyed by
    names the caller checks itself); `where` names the table in errors ("" for the top)."""
    if not isinstance(value, Mapping):
        raise ValueError(_at(where or "the document", "must be a table"))
    if keys is not None:
        unknown = sorted(str(key) for key in value if key not in keys)
        if unknown:
            raise ValueError(_at(where, f"unknown key(s) {', '.join(unknown)}"))
    return dict(value)


def optional(values: Mapping[str, Any], key: str, kind: type[T], where: str = "") -> T | None:
    """`values[key]` checked to be a `kind` (an integer counts as a float), or None if absent."""
    value = values.get(key)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return kind(value)  # type: ignore[call-arg]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        name = _KIND_NAMES.get(kind, kind.__name__)
        raise ValueError(_at(where, f"{key} must be {name}"))
    return value


def required(values: Mapping[str, Any], key: str, kind: type[T], where: str = "") -> T:
    """`values[key]`, which must be present, checked to be a `kind`."""
    value = optional(values, key, kind, where)
    if value is None:
        raise ValueError(_at(where, f"{key} is required"))
    return value


def array(values: Mapping[str, Any], key: str, where: str = "") -> list[object]:
    """`values[key]` checked to be an array (`[[key]]` tables or a list); empty if absent."""
    return optional(values, key, list, where) or []
