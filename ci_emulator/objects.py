"""Object keys -> files in a bucket's folder, without ever leaving that folder.

COS keys are plain strings; the emulator stores them as relative file paths, so a key can only
name a file if it splits on `/` into ordinary path segments. A key with an empty, `.` or `..`
segment, a leading `/`, a backslash or a NUL cannot name any file in the folder, and neither can
a key whose resolved path (after symlinks) lands outside it. Such keys are not "forbidden" objects:
they simply do not exist in the bucket, and each endpoint reports that as it reports a missing
object (NoSuchKey on the COS host), except `POST /jobs`, which refuses them up front
(InvalidArgument), because a job could never succeed on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

MISSING_OBJECT: Final = ("ResourceNotFound", "the input resource does not exist")
"""Job failure for a key that cannot name a file. Only reachable if the folder changes under a
queued job (submit refuses such keys); real missing files are reported by the probe itself, with
this same code and message."""


def is_mappable_key(key: str) -> bool:
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        return False
    return all(segment not in ("", ".", "..") for segment in key.split("/"))


def resolve_object_path(root: Path, key: str) -> Path | None:
    """The file for `key` under `root`, or None if the key cannot name a file inside `root`.

    The returned path may not exist: whether the object is there is the caller's question.
    """
    if not is_mappable_key(key):
        return None
    path = root.joinpath(*key.split("/"))
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop or an unreadable folder
        return None
    return path if inside else None
