"""The probe cache: reuse while a file is unchanged, never after it changes, never for errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ci_emulator.probe import ProbeError, ProbeErrorCode
from ci_emulator.probe_cache import CachedProbe
from ci_emulator.probe_types import MediaInfo


class CountingProbe:
    def __init__(self) -> None:
        self.calls: list[Path] = []

    async def __call__(self, path: Path) -> MediaInfo:
        self.calls.append(path)
        return _fake_info(path)


def _fake_info(path: Path) -> MediaInfo:
    if not path.exists():
        raise ProbeError(ProbeErrorCode.RESOURCE_NOT_FOUND, "gone")
    return {"Format": {"Size": str(path.stat().st_size)}, "Stream": {"Video": []}}


async def test_an_unchanged_file_is_probed_once(tmp_path: Path) -> None:
    inner = CountingProbe()
    cached = CachedProbe(inner)
    path = tmp_path / "a.mp4"
    path.write_bytes(b"1234")
    first, second = await cached(path), await cached(path)
    assert first == second == {"Format": {"Size": "4"}, "Stream": {"Video": []}}
    assert len(inner.calls) == 1 and (cached.hits, cached.misses) == (1, 1)


async def test_a_changed_file_is_probed_again(tmp_path: Path) -> None:
    inner = CountingProbe()
    cached = CachedProbe(inner)
    path = tmp_path / "a.mp4"
    path.write_bytes(b"1234")
    await cached(path)
    path.write_bytes(b"123456")  # another size
    assert (await cached(path))["Format"] == {"Size": "6"}
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # same size, newer mtime
    await cached(path)
    replacement = tmp_path / "b.mp4"
    replacement.write_bytes(b"abcdef")
    os.replace(replacement, path)  # same size, a new inode
    await cached(path)
    assert len(inner.calls) == 4


async def test_failures_are_not_cached(tmp_path: Path) -> None:
    inner = CountingProbe()
    cached = CachedProbe(inner)
    path = tmp_path / "later.mp4"
    with pytest.raises(ProbeError):
        await cached(path)
    path.write_bytes(b"now")
    assert (await cached(path))["Format"] == {"Size": "3"}
    assert len(inner.calls) == 2


async def test_answers_are_copies(tmp_path: Path) -> None:
    cached = CachedProbe(CountingProbe())
    path = tmp_path / "a.mp4"
    path.write_bytes(b"1")
    first = await cached(path)
    first["Format"]["Size"] = "changed"  # type: ignore[index]
    assert (await cached(path))["Format"] == {"Size": "1"}


async def test_the_cache_is_bounded(tmp_path: Path) -> None:
    inner = CountingProbe()
    cached = CachedProbe(inner, max_entries=2)
    paths = []
    for name in "abc":
        paths.append(tmp_path / name)
        paths[-1].write_bytes(name.encode())
        await cached(paths[-1])
    await cached(paths[2])  # still cached
    await cached(paths[0])  # the least recently used: evicted
    assert inner.calls == [*paths, paths[0]]
