"""`gateway._files`: the poller that notices mounted files change, and the one secret-file reader.

The volume is written the way kubelet writes a Secret or ConfigMap (`SecretVolume`: a new
timestamped directory, `..data` swapped by `rename`); the poller's sleep is injected, so each
round runs when the test says and none waits on the clock.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway._files import (
    MAX_SECRET_FILE_BYTES,
    Fingerprint,
    Poller,
    SecretFileError,
    fingerprint,
    read_secret_file,
)
from tests.access.helpers import FakeSleep, SecretVolume

SECRET = "s3cr3t-value-that-must-never-be-quoted"


class Watch:
    """What an owner of a `Poller` does: compare fingerprints each round, count the changes."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.seen: Fingerprint = fingerprint(paths)
        self.changes = 0
        self.rounds = 0

    async def check(self) -> None:
        self.rounds += 1
        now = await asyncio.to_thread(fingerprint, self.paths)
        if now != self.seen:
            self.seen, self.changes = now, self.changes + 1


async def test_the_poller_notices_a_kubernetes_data_symlink_swap(tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path / "volume")
    volume.publish({"token": "one"})
    watch = Watch([volume.root / "..data", volume.root / "token"])
    sleep = FakeSleep()
    poller = Poller(watch.check, 7.0, name="volume", sleep=sleep)
    poller.start()
    try:
        assert await sleep.next_delay() == 7.0
        sleep.release()
        assert await sleep.next_delay() == 7.0
        assert (watch.rounds, watch.changes) == (1, 0)  # nothing changed: nothing noticed

        # Same size, same name: only where `..data` points (and what it holds) changed.
        volume.publish({"token": "two"})
        sleep.release()
        assert await sleep.next_delay() == 7.0
        assert (watch.rounds, watch.changes) == (2, 1)
        assert (volume.root / "token").read_text() == "two"
    finally:
        await poller.close()
    assert not poller.running


def test_a_fingerprint_follows_the_symlink_and_marks_missing_files(tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path / "volume")
    volume.publish({"token": "one"})
    ((path, resolved, identity),) = fingerprint([volume.root / "token"])
    assert path == str(volume.root / "token")
    assert resolved is not None and "..2026" in resolved  # through `..data`
    assert identity is not None and identity[2] == len("one")
    assert fingerprint([tmp_path / "absent"]) == ((str(tmp_path / "absent"), None, None),)


async def test_a_failing_check_is_logged_by_class_and_the_poller_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds = 0

    async def check() -> None:
        nonlocal rounds
        rounds += 1
        raise RuntimeError(SECRET)

    sleep = FakeSleep()
    poller = Poller(check, 1.0, name="failing", sleep=sleep)
    poller.start()
    try:
        for _ in range(2):
            await sleep.next_delay()
            sleep.release()
        await sleep.next_delay()
        assert rounds == 2 and poller.running
    finally:
        await poller.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["failing: check failed (RuntimeError)"] * 2
    assert SECRET not in caplog.text


def test_a_poll_interval_must_be_positive() -> None:
    async def check() -> None:
        return None

    with pytest.raises(ValueError, match="positive"):
        Poller(check, 0, name="never")


# ---- read_secret_file -------------------------------------------------------------------------


def assert_names_the_file_not_the_content(error: SecretFileError, named: str) -> None:
    assert named in str(error)
    assert SECRET not in str(error)
    # Nothing chained either: a traceback would print it.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_the_value_is_stripped_of_surrounding_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"\n  {SECRET}\t\n")
    assert read_secret_file(path) == SECRET
    assert read_secret_file(str(path)) == SECRET


def test_the_size_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "large"
    path.write_text("x" * MAX_SECRET_FILE_BYTES)
    assert len(read_secret_file(path)) == MAX_SECRET_FILE_BYTES  # exactly the cap: fine
    path.write_text(SECRET * (MAX_SECRET_FILE_BYTES // len(SECRET) + 1))
    with pytest.raises(SecretFileError) as caught:
        read_secret_file(path)
    assert_names_the_file_not_the_content(caught.value, f"'{path}' is larger than 65536 bytes")
    path.write_text(SECRET)
    with pytest.raises(SecretFileError, match="larger than 8 bytes"):
        read_secret_file(path, max_bytes=8)


def test_a_device_is_read_only_up_to_the_cap() -> None:
    with pytest.raises(SecretFileError, match="larger than"):
        read_secret_file("/dev/zero")


@pytest.mark.parametrize(
    ("content", "encoding", "problem"),
    [
        (b"", "utf-8", "is empty"),
        (b" \n\t\n", "utf-8", "is empty"),
        (b"\xff" + SECRET.encode(), "utf-8", "is not UTF-8 text"),
        ("caf\u00e9-".encode() + SECRET.encode(), "ascii", "is not ASCII text"),
    ],
)
def test_unusable_content_is_named_never_quoted(
    tmp_path: Path, content: bytes, encoding: str, problem: str
) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content)
    with pytest.raises(SecretFileError) as caught:
        read_secret_file(path, encoding=encoding)
    assert_names_the_file_not_the_content(caught.value, f"'{path}' {problem}")
    assert not caught.value.missing


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(SecretFileError) as caught:
        read_secret_file(tmp_path / "absent", label="callbacks.token_file")
    assert_names_the_file_not_the_content(
        caught.value, "callbacks.token_file cannot be read: No such file"
    )
    assert caught.value.missing


def test_an_unreadable_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(SecretFileError) as caught:
        read_secret_file(tmp_path)
    assert_names_the_file_not_the_content(caught.value, f"'{tmp_path}' cannot be read")
    assert not caught.value.missing


def test_it_is_a_value_error_for_the_configuration_loaders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="absent"):
        read_secret_file(tmp_path / "absent")
