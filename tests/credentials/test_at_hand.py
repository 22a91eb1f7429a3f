"""`at_hand`: what `get` would hand out without waiting, or None when `get` may wait.

The CI client asks `at_hand` first on every attempt and awaits `get` (under its deadline's bound,
`SIGN_BY`) only when it answers None, so `at_hand` must hand out exactly what `get` would, raise
what `get` would, and never answer for a `get` that may wait.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.credentials import (
    SIGN_BY,
    BucketCredentialsProvider,
    Credentials,
    EnvironmentCredentialsProvider,
    StaticCredentialsProvider,
)
from gateway.credentials.mounted import DirectoryCredentialsProvider
from gateway.errors import NoCredentialsError
from tests.access.helpers import FakeClock, canary_credentials, write_plain_credentials
from tests.credentials.test_refreshing import LIFETIME_S, MINUTE, StsDouble, provider_for

WAIT_S = 5.0


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


async def test_temporary_keys_are_at_hand_only_while_get_would_do_nothing_else() -> None:
    """STS's: at hand while fresh (usable, before the advisory window), as `get` would hand
    them out; None from the advisory window on (`get` starts a background refresh there, waits
    for one in the mandatory window, fails once expired), and never a fetch of its own."""
    clock = FakeClock(1_000_000.0)
    sts = StsDouble(clock)
    provider = provider_for(sts)
    try:
        assert provider.at_hand() is None and sts.calls == 0  # no keys yet: `get` would fetch
        assert await provider.refresh()
        first = sts.issued[0]
        assert provider.at_hand() is first is await provider.get()

        clock.advance(LIFETIME_S - 15 * MINUTE)  # the advisory window's first second
        sts.gate = asyncio.Event()  # held in flight: the windows stay as they are
        assert provider.at_hand() is None and sts.calls == 1  # not at hand, and no fetch started
        assert await provider.get() is first  # and starts a refresh: the second keys below
        clock.advance(5 * MINUTE)  # the mandatory window: `get` would wait for the refresh
        assert provider.at_hand() is None
        clock.advance(10 * MINUTE - 30)  # inside the expiry margin: `get` would not hand them out
        assert provider.at_hand() is None
        sts.gate.set()
        # Only `get` started a fetch (the provider not started: no background task).
        await asyncio.wait_for(provider.wait_for_generation(2), WAIT_S)
        assert provider.at_hand() is sts.issued[1] is await provider.get()
        assert sts.calls == 2
    finally:
        await provider.close()


async def test_temporary_keys_after_a_failed_refresh_are_at_hand_as_get_hands_them_out() -> None:
    """A failed refresh before the advisory window (the background one starts up to its jitter
    earlier): `get` keeps handing out the keys in hand and does nothing else, so they are at
    hand too."""
    clock = FakeClock(1_000_000.0)
    sts = StsDouble(clock)
    provider = provider_for(sts)
    assert await provider.refresh()
    clock.advance(LIFETIME_S - 16 * MINUTE)
    sts.failing = True
    assert not await provider.refresh()
    assert provider.at_hand() is sts.issued[0] is await provider.get()
    assert sts.calls == 2  # neither fetched again


async def test_several_accounts_have_at_hand_what_their_default_has(tmp_path: Path) -> None:
    """`BucketCredentialsProvider.get` is its default's, and so is `at_hand`."""
    keys = canary_credentials("default")
    write_plain_credentials(tmp_path, keys)
    default = DirectoryCredentialsProvider(tmp_path)
    other = StaticCredentialsProvider(canary_credentials("other"))
    provider = BucketCredentialsProvider(default, {"other-1250000001": other})
    assert provider.at_hand() is None  # the default's directory not read yet
    try:
        await provider.start()
        assert provider.at_hand() == keys == await provider.get()
        assert provider.for_bucket("other-1250000001").at_hand() is await other.get()
    finally:
        await provider.close()


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
