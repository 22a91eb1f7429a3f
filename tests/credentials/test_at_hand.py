"""`at_hand`: what `get` would hand out without waiting, or None when `get` may wait.

The CI client asks `at_hand` first on every attempt and awaits `get` (under its deadline's bound,
`SIGN_BY`) only when it answers None, so `at_hand` must hand out exactly what `get` would, raise
what `get` would, and never answer for a `get` that may wait.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.credentials import (
    SIGN_BY,
    Credentials,
    EnvironmentCredentialsProvider,
    StaticCredentialsProvider,
)
from gateway.credentials.mounted import DirectoryCredentialsProvider
from gateway.credentials.refreshing import RefreshingCredentialsProvider
from gateway.errors import NoCredentialsError
from tests.access.helpers import FakeClock, canary_credentials, write_plain_credentials


async def test_static_keys_at_hand_are_what_get_hands_out_and_fail_as_get_fails() -> None:
    clock = FakeClock(1_000_000.0)
    keys = canary_credentials("static", token=True, expires_at=clock.now + 3600)
    provider = StaticCredentialsProvider(keys, clock=clock)
    assert provider.at_hand() is await provider.get()
    clock.advance(3600 - 30)  # inside the expiry margin: neither hands them out
    with pytest.raises(NoCredentialsError) as by_get:
        await provider.get()
    with pytest.raises(NoCredentialsError) as at_hand:
        provider.at_hand()
    assert str(at_hand.value) == str(by_get.value)


async def test_environment_keys_are_at_hand() -> None:
    environ = {"CI_GATEWAY_SECRET_ID": "AKIDenv", "CI_GATEWAY_SECRET_KEY": "key"}
    provider = EnvironmentCredentialsProvider(environ)
    assert provider.at_hand() is await provider.get()


async def test_a_directory_is_at_hand_only_once_read(tmp_path: Path) -> None:
    keys = canary_credentials("mounted")
    write_plain_credentials(tmp_path, keys)
    provider = DirectoryCredentialsProvider(tmp_path)
    assert provider.at_hand() is None  # `get` would read the directory first
    try:
        await provider.start()
        assert provider.at_hand() == keys == await provider.get()
    finally:
        await provider.close()


async def test_temporary_keys_are_always_awaited() -> None:
    async def fetch() -> Credentials:
        raise AssertionError("not fetched: at_hand never starts a fetch")

    provider = RefreshingCredentialsProvider(fetch, name="sts")
    assert provider.at_hand() is None


async def test_a_subclass_with_its_own_get_is_awaited_unless_it_says_otherwise() -> None:
    class Waiting(StaticCredentialsProvider):
        bounds: list[float | None]

        async def get(self) -> Credentials:
            self.bounds.append(SIGN_BY.get())
            return await super().get()

    provider = Waiting(canary_credentials("waiting"))
    provider.bounds = []
    assert provider.at_hand() is None
    assert not provider.bounds  # `at_hand` did not call `get` either
