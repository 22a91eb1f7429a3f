"""The serving process's event loop (`event_loop`) and its settled heap."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from gateway.api import process
from gateway.config.settings import Settings


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_auto_means_uvloop_where_installed_and_asyncio_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert process.loop_name("auto") == "uvloop"  # a dependency on Linux
    assert process.run(_loop_module()) == "uvloop"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert process.loop_name("auto") == "asyncio"
    assert process.run(_loop_module()) == "asyncio"


def test_a_loop_named_is_the_loop_used() -> None:
    assert process.run(_loop_module(), event_loop="asyncio") == "asyncio"
    assert process.run(_loop_module(), event_loop="uvloop") == "uvloop"
    with pytest.raises(ValueError, match="event_loop"):
        process.loop_name("trio")


def test_an_unknown_event_loop_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="event_loop 'trio' must be one of"):
        Settings(event_loop="trio")
