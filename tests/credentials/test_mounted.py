"""Credentials from a mounted directory: loaded, swapped on change, kept when the change is bad."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

import pytest

from gateway._files import Fingerprint, fingerprint
from gateway.credentials import check_credentials, has_valid_credentials, mounted
from gateway.credentials.mounted import DirectoryCredentialsProvider
from gateway.errors import NoCredentialsError
from tests.access.helpers import (
    FakeClock,
    FakeSleep,
    SecretVolume,
    canary_credentials,
    write_plain_credentials,
)


async def test_reads_a_kubernetes_secret_volume_and_swaps_on_rotation(tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path / "secret")
    first, second = canary_credentials("one", token=True), canary_credentials("two")
    volume.publish_credentials(first)
    provider = DirectoryCredentialsProvider(volume.root)
    await provider.start()
    try:
        assert await provider.get() == first  # the token travels with the keys
        assert provider.generation == 1
        assert not await provider.poll()  # nothing changed: nothing read

        volume.publish_credentials(second)  # `..data` swapped, the old directory deleted
        assert await provider.poll()
        assert await provider.get() == second
        assert (await provider.get()).token is None  # the new set has no token file
        assert [s.generation for s in provider.statuses()] == [2]
    finally:
        await provider.close()


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda d: (d / "secret_key").write_text(""), "secret_key is empty"),
        (lambda d: (d / "secret_key").unlink(), "secret_key cannot be read: No such file"),
        (lambda d: (d / "secret_id").write_bytes(b"AKID\xff"), "secret_id is not ASCII"),
        (lambda d: (d / "secret_key").write_text("half written"), "spaces or control"),
        (lambda d: (d / "expired_time").write_text("soon"), "expired_time is not Unix"),
        # float() reads these, but no instant is NaN (the keys would never be handed out) or
        # infinite (temporary keys the gateway would use forever).
        (lambda d: (d / "expired_time").write_text("nan"), "expired_time is not Unix"),
        (lambda d: (d / "expired_time").write_text("inf"), "expired_time is not Unix"),
        (lambda d: (d / "expired_time").write_text("1e999"), "expired_time is not Unix"),
    ],
)
async def test_a_bad_change_keeps_the_previous_credentials_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object, named: str
) -> None:
    good = canary_credentials("good")
    write_plain_credentials(tmp_path, good)
    provider = DirectoryCredentialsProvider(tmp_path)
    await provider.start()
    try:
        caplog.set_level(logging.DEBUG)
        damage(tmp_path)  # type: ignore[operator]
        # A directory without `..data` may be written file by file: a change is adopted only
        # once two checks agree, so it takes two polls to be read (and refused).
        for _ in range(2):
            assert not await provider.poll()
        assert await provider.get() == good
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "keeping the previous" in warnings[0].getMessage()
        assert named in str(warnings[0].__dict__["fields"]["problem"])
        assert good.secret_key not in caplog.text

        assert not await provider.poll()  # unchanged since: no second warning
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
        write_plain_credentials(tmp_path, replacement := canary_credentials("fixed"))
        (tmp_path / "expired_time").unlink(missing_ok=True)
        for _ in range(2):
            await provider.poll()
        assert await provider.get() == replacement
    finally:
        await provider.close()


async def test_a_file_by_file_writer_is_never_read_halfway(tmp_path: Path) -> None:
    """Without `..data`, a new SecretId next to the old SecretKey must not be adopted."""
    old, new = canary_credentials("old"), canary_credentials("new")
    write_plain_credentials(tmp_path, old)
    provider = DirectoryCredentialsProvider(tmp_path)
    await provider.start()
    try:
        (tmp_path / "secret_id").write_text(new.secret_id)  # the writer is between two files
        assert not await provider.poll()
        assert await provider.get() == old
        (tmp_path / "secret_key").write_text(new.secret_key)  # done
        assert not await provider.poll()  # changed again since the last check: wait once more
        assert await provider.poll()
        assert await provider.get() == new
    finally:
        await provider.close()


async def test_without_files_there_are_no_credentials_and_readiness_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    provider = DirectoryCredentialsProvider(tmp_path / "not-mounted-yet")
    await provider.start()
    try:
        with pytest.raises(NoCredentialsError, match="no valid credentials from directory:"):
            await provider.get()
        assert not has_valid_credentials(provider)
        with pytest.raises(NoCredentialsError, match="not-mounted-yet"):
            await check_credentials(provider)
        assert "none loaded" in caplog.text

        volume = SecretVolume(tmp_path / "not-mounted-yet")
        volume.publish_credentials(keys := canary_credentials("late"))
        assert await provider.poll()
        assert await provider.get() == keys
        assert has_valid_credentials(provider)
        await check_credentials(provider)
    finally:
        await provider.close()


async def test_expired_mounted_credentials_are_never_handed_out(tmp_path: Path) -> None:
    clock = FakeClock()
    volume = SecretVolume(tmp_path / "secret")
    volume.publish_credentials(canary_credentials("t", token=True, expires_at=clock() + 3600))
    provider = DirectoryCredentialsProvider(volume.root, clock=clock)
    await provider.start()
    try:
        assert (await provider.get()).expires_at == int(clock() + 3600)
        assert provider.expires_at() == int(clock() + 3600)
        clock.advance(3600 - 30)  # within the last minute: an attempt might arrive too late
        with pytest.raises(NoCredentialsError, match="have expired"):
            await provider.get()
        assert not has_valid_credentials(provider)
    finally:
        await provider.close()


async def test_the_watcher_polls_at_its_interval_and_picks_up_a_rotation(tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path / "secret")
    volume.publish_credentials(canary_credentials("a"))
    sleep = FakeSleep()
    provider = DirectoryCredentialsProvider(volume.root, poll_interval_s=7.0, sleep=sleep)
    await provider.start()
    try:
        assert await sleep.next_delay() == 7.0
        volume.publish_credentials(rotated := canary_credentials("b"))
        sleep.release()  # one interval passes: the watcher checks
        assert await sleep.next_delay() == 7.0  # ... and went back to sleep, having swapped
        assert provider.generation == 2
        assert await provider.get() == rotated
    finally:
        await provider.close()


class CountedChecks:
    """`mounted.fingerprint` as it is, counting the checks of the files; `hold()` makes the
    next one wait, after it looked, until `let_go()` (it runs in a worker thread)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._hold_next = False
        self.looked = threading.Event()
        self._gone = threading.Event()
        monkeypatch.setattr(mounted, "fingerprint", self)

    def __call__(self, paths: list[Path]) -> Fingerprint:
        self.calls += 1
        seen = fingerprint(paths)
        if self._hold_next:
            self._hold_next = False
            self.looked.set()
            self._gone.wait(5)  # bounded: the test lets it go at once
        return seen

    def hold(self) -> None:
        self._hold_next = True

    def let_go(self) -> None:
        self._gone.set()


async def test_refusals_arriving_together_share_their_checks_of_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation makes CI refuse every call in flight at once: each asks the provider to
    look at the files (`renew`), and the refusals share checks rather than each making one,
    one after another under the provider's lock."""
    volume = SecretVolume(tmp_path / "secret")
    volume.publish_credentials(canary_credentials("old"))
    provider = DirectoryCredentialsProvider(volume.root, sleep=FakeSleep())
    await provider.start()
    try:
        refused = await provider.get()
        volume.publish_credentials(rotated := canary_credentials("new"))
        checks = CountedChecks(monkeypatch)
        renewed = await asyncio.gather(*(provider.renew(refused) for _ in range(20)))
        assert renewed == [True] * 20
        assert await provider.get() == rotated and provider.generation == 2
        # Two checks rather than twenty: the first refusal's (a fingerprint before and after
        # reading the new files), and one the nineteen share that asked once it had begun.
        assert checks.calls == 3
    finally:
        await provider.close()


async def test_a_refusal_during_a_check_begun_before_it_gets_a_check_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check that looked before the Secret changed cannot answer a refusal that came after:
    that refusal waits for it, then looks again itself."""
    volume = SecretVolume(tmp_path / "secret")
    volume.publish_credentials(canary_credentials("old"))
    provider = DirectoryCredentialsProvider(volume.root, sleep=FakeSleep())
    await provider.start()
    checks = CountedChecks(monkeypatch)
    try:
        refused = await provider.get()
        checks.hold()
        earlier = asyncio.create_task(provider.renew(refused))
        assert await asyncio.to_thread(checks.looked.wait, 5)  # it saw the old files
        volume.publish_credentials(rotated := canary_credentials("new"))
        # Scheduled before the held check can end: `later` asks while that check is on.
        later = asyncio.create_task(provider.renew(refused))
        checks.let_go()
        assert await earlier is False
        assert await later is True
        assert await provider.get() == rotated
    finally:
        checks.let_go()
        await provider.close()


def test_the_provider_repr_names_the_directory_only(tmp_path: Path) -> None:
    provider = DirectoryCredentialsProvider(tmp_path)
    assert repr(provider) == f"DirectoryCredentialsProvider({str(tmp_path)!r})"
    assert os.fspath(tmp_path) in provider.name
