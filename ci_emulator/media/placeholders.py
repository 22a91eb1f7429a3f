"""CI's output-key placeholders: `${Number}` (also `${number}`), `${InputName}`, `${ext}`.

* `${Number}`: the file's sequence number within one output, counted from 0 (UNCONFIRMED:
  CI's samples show the placeholder, never a result; 0 is FFmpeg's and the segmenters'
  convention). Required in keys that name several files (Snapshot, SmartCover, sprite sheets,
  mp4 segments); refused in a key that names one file, where it could only mislead.
* `${InputName}`: the input object's file name without its extension (`input/a.mp4` -> `a`).
* `${ext}`: the extension of the format written (`mp4`, `m3u8`, `jpg`, ...).
"""

from __future__ import annotations

import re
from typing import Final

NUMBER: Final = re.compile(r"\$\{[Nn]umber\}")
_INPUT_NAME: Final = "${InputName}"
_EXT: Final = "${ext}"


def has_number(template: str) -> bool:
    return NUMBER.search(template) is not None


def input_name(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


def expand(template: str, *, input_key: str, ext: str, number: int | None = None) -> str:
    """The object key for one output file; `number` fills `${Number}` when the key has it."""
    key = template.replace(_INPUT_NAME, input_name(input_key)).replace(_EXT, ext)
    if number is not None:
        key = NUMBER.sub(str(number), key)
    return key


def extension(template: str) -> str | None:
    """The extension an output key ends with (`out/a.mp4` -> `mp4`), None if it has none."""
    name = template.rsplit("/", 1)[-1]
    if name.endswith(_EXT):
        return None
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem and ext.isalnum() else None
