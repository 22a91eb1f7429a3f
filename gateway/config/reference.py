"""The README's configuration table, rendered from the declarations in `gateway.config.settings`.

Generated rather than written so that it cannot drift: `tests/deploy/test_readme_ops.py` fails
when the README's copy differs from `reference_markdown()`. Each row gives the setting's TOML
key, its canonical environment variable (and any older alias still accepted), its flag, its
default and one line of help.
"""

from __future__ import annotations

from typing import Any

from gateway.config.settings import OPTIONS, Option


def _markdown_default(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"  # as TOML and the environment write it
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _markdown_env(option: Option) -> str:
    text = f"`{option.env}`"
    if option.aliases:
        text += " (alias " + ", ".join(f"`{alias}`" for alias in option.aliases) + ")"
    return text


def reference_markdown() -> str:
    """The README's configuration table, one row per setting in declaration order."""
    lines = [
        "| setting | env | flag | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for option in OPTIONS:
        flag = f"`{option.flag}`" if option.flag else ""
        lines.append(
            f"| `{option.key}` | {_markdown_env(option)} | {flag} "
            f"| {_markdown_default(option.default)} | {option.help} |"
        )
    return "\n".join(lines) + "\n"
