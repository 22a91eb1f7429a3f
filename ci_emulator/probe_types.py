"""What a media probe is: the types `config` (which holds the probe) and `probe_cache` (which
wraps one) both need.

They live here, below both, so neither imports the other for them: `config` builds its default
probe from `probe_cache`, and `probe_cache` needs only these two names, not the configuration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeAlias

MediaInfo: TypeAlias = Mapping[str, object]
"""A probe's answer: CI node name -> text, a nested mapping, or a list of mappings (repeats)."""

Probe: TypeAlias = Callable[[Path], Awaitable[MediaInfo]]
"""Reads one local file and returns its MediaInfo; raises `probe.ProbeError` for non-media."""
