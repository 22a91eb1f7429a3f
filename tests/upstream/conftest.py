"""The transport's tests run on every event loop the gateway runs on; the rest on asyncio's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

try:
    import uvloop
except ImportError:  # Windows: the gateway runs on asyncio's loop there
    uvloop = None  # type: ignore[assignment]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if item.path.name in ("test_transport.py", "test_proxy.py") and uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories
