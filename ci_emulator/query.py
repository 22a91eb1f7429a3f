"""Reading a resource listing's numeric query parameters as CI does: absent or empty takes the
default, anything but a positive decimal integer (within a bound, where CI has one) is
InvalidArgument. Queues, templates and workflows page alike (`pageNumber`, `pageSize`)."""

from __future__ import annotations

from collections.abc import Mapping

from ci_emulator.errors import invalid_argument


def positive(params: Mapping[str, str], name: str, default: int, most: int | None = None) -> int:
    value = params.get(name, "")
    if value == "":
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise invalid_argument(f"{name} must be a positive integer")
    if most is not None and int(value) > most:
        raise invalid_argument(f"{name} must be at most {most}")
    return int(value)
