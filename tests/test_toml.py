"""`gateway._toml`: the one strict reader of configuration tables (settings, access, credentials
and emulator files all use it), so a typo or a mistyped value is an error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import _toml

SECRET = "s3cr3t-never-echoed"


def test_a_table_with_known_keys_is_returned_as_a_dict() -> None:
    source = {"name": "a", "port": 1}
    read = _toml.table(source, "server", {"name", "port", "host"})
    assert read == source and read is not source


def test_unknown_keys_are_named_sorted_with_the_table() -> None:
    with pytest.raises(ValueError) as caught:
        _toml.table({"nmae": 1, "prot": SECRET, "name": 2}, "accounts.main", {"name"})
    assert str(caught.value) == "accounts.main: unknown key(s) nmae, prot"
    with pytest.raises(ValueError, match=r"^unknown key\(s\) mood$"):
        _toml.table({"mood": "shared"}, "", {"mode"})


def test_without_a_key_list_any_key_is_accepted() -> None:
    assert _toml.table({"CreateMediaJobs": {}}, "faults") == {"CreateMediaJobs": {}}


@pytest.mark.parametrize("value", [[1, 2], "text", 3, None])
def test_a_non_table_is_refused_naming_where(value: object) -> None:
    with pytest.raises(ValueError, match=r"^tls: must be a table$"):
        _toml.table(value, "tls")
    with pytest.raises(ValueError, match=r"^the document: must be a table$"):
        _toml.table(value, "")


def test_values_are_checked_for_their_type() -> None:
    values = {"name": "a", "port": 8, "ratio": 2, "on": True, "items": [1]}
    assert _toml.required(values, "name", str, "t") == "a"
    assert _toml.required(values, "port", int, "t") == 8
    ratio = _toml.required(values, "ratio", float, "t")
    assert ratio == 2.0 and isinstance(ratio, float)  # an integer is a number
    assert _toml.required(values, "on", bool, "t") is True
    assert _toml.array(values, "items", "t") == [1]
    assert _toml.optional(values, "absent", str, "t") is None
    assert _toml.array(values, "absent", "t") == []


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (SECRET, int, "t: key must be an integer"),
        (True, int, "t: key must be an integer"),  # TOML's true is not 1
        (False, float, "t: key must be a number"),
        (1, str, "t: key must be a string"),
        (1, bool, "t: key must be true or false"),
        (SECRET, list, "t: key must be an array"),
    ],
)
def test_a_mistyped_value_is_named_never_quoted(value: object, kind: type, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        _toml.optional({"key": value}, "key", kind, "t")
    assert str(caught.value) == message
    assert SECRET not in str(caught.value)


def test_a_missing_required_value_is_named() -> None:
    with pytest.raises(ValueError, match=r"^credentials\[0\]: secret_key is required$"):
        _toml.required({}, "secret_key", str, "credentials[0]")
    with pytest.raises(ValueError, match=r"^port is required$"):
        _toml.required({}, "port", int)


def test_load_parses_a_file_and_names_it_when_it_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text('mode = "shared"\n[tls]\ncert_file = "a"\n')
    assert _toml.load(path) == {"mode": "shared", "tls": {"cert_file": "a"}}
    path.write_text(f'token = "{SECRET}"\nmode = [')
    with pytest.raises(ValueError, match=str(path)):
        _toml.load(path)
    with pytest.raises(OSError):
        _toml.load(tmp_path / "absent.toml")
