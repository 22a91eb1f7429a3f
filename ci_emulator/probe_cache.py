"""Remember a file's MediaInfo while the file is unchanged, so repeated jobs cost no FFmpeg.

Benchmarks and demos submit the same object thousands of times; probing it afresh each time
made the emulator spend its one core in FFmpeg instead of answering requests. MediaInfo is a
pure function of the file's bytes, so a probe is reused while the file's identity is unchanged:
device, inode, size and nanosecond mtime (`os.stat`). Rewriting a file, or replacing it by a
rename, changes at least one of them, so a client never sees the MediaInfo of an older file.
Failures are never cached: a missing object may appear, and an unreadable one be fixed.

The cache is bounded (least recently used first out) and belongs to one `Probe` value, hence
to one emulator configuration; tests that inject their own probe never meet it.
"""

from __future__ import annotations

import collections
import copy
import os
from pathlib import Path
from typing import TypeAlias

from ci_emulator.probe_types import MediaInfo, Probe

DEFAULT_MAX_ENTRIES = 512

_Identity: TypeAlias = tuple[str, int, int, int, int]


class CachedProbe:
    """A `Probe` that asks `probe` only for files it has not seen in their current state."""

    def __init__(self, probe: Probe, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._probe = probe
        self._max_entries = max_entries
        self._entries: collections.OrderedDict[_Identity, MediaInfo] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    async def __call__(self, path: Path) -> MediaInfo:
        identity = _identity(path)
        if identity is not None and identity in self._entries:
            self._entries.move_to_end(identity)
            self.hits += 1
            # A copy: a consumer that mutates its MediaInfo must not change the next job's.
            return copy.deepcopy(self._entries[identity])
        self.misses += 1
        info = await self._probe(path)
        # Cache under the identity seen *before* probing: if the file changed meanwhile, the
        # entry is simply never hit again.
        if identity is not None:
            self._entries[identity] = copy.deepcopy(info)
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return info


def _identity(path: Path) -> _Identity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # let the probe report what is wrong
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
