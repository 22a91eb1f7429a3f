"""Naming a job's output files: keys from templates, files in the staging folder, and the
`WorkerResult` (with each file's MD5 and the main output's MediaInfo) the parent publishes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from ci_emulator.media import placeholders
from ci_emulator.media.errors import INTERNAL_ERROR, MediaFailure, invalid
from ci_emulator.media.task import MediaTask, Produced, WorkerResult
from ci_emulator.objects import is_mappable_key
from ci_emulator.probe import ProbeError, probe

_MD5_CHUNK = 1024 * 1024


class Outputs:
    """The files one job writes, in the order they were made."""

    def __init__(self, task: MediaTask) -> None:
        self.task = task
        self.staging = Path(task.staging)
        self._files: list[tuple[str, str, Literal["main", "sprite"]]] = []

    def key(self, template: str | None, ext: str, number: int | None = None) -> str:
        if template is None:
            raise invalid("the output needs an Object")
        key = placeholders.expand(
            template, input_key=self.task.input_key or "", ext=ext, number=number
        )
        if not is_mappable_key(key):
            raise invalid(f"the output key {key!r} is not a valid object key")
        return key

    def file(self, key: str, role: Literal["main", "sprite"] = "main") -> Path:
        """A new staging file for `key` (named by position: keys may repeat directories)."""
        ext = key.rsplit(".", 1)[-1] if "." in key.rsplit("/", 1)[-1] else "bin"
        name = f"{len(self._files)}.{ext}"
        self._files.append((name, key, role))
        return self.staging / name

    def adopt(self, name: str, key: str, role: Literal["main", "sprite"] = "main") -> None:
        """Register a file a muxer wrote itself (an HLS segment) under `name`."""
        self._files.append((name, key, role))

    def result(
        self, *, probe_main: bool = True, extra: tuple[tuple[str, str], ...] = ()
    ) -> WorkerResult:
        produced = []
        for name, key, role in self._files:
            path = self.staging / name
            if not path.is_file() or path.stat().st_size == 0:
                raise MediaFailure(INTERNAL_ERROR, f"the output {key} was not written")
            produced.append(Produced(name, key, role, _md5(path)))
        info = None
        if probe_main and produced:
            try:
                info = probe(self.staging / produced[0].name)
            except ProbeError as exc:
                raise MediaFailure(INTERNAL_ERROR, f"the output is unreadable: {exc}") from exc
        return WorkerResult(tuple(produced), info, extra)


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - CI's Md5Info is an MD5, not a security measure
    with path.open("rb") as file:
        # Bounded by the file's size.
        while chunk := file.read(_MD5_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
