"""`DefaultQueues`: which queue a listing may name, and for how long (the listing itself is
tested end to end in tests/integration/test_list_queue_id.py)."""

from __future__ import annotations

from gateway.model import Target
from gateway.upstream.default_queue import FAILED_TTL_S, MAX_BUCKETS, TTL_S, DefaultQueues

TARGET = Target("examplebucket-1250000000", "ap-guangzhou")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_a_single_queue_is_named() -> None:
    queues = DefaultQueues()
    assert queues.only_queue(TARGET) == (False, None)
    assert queues.remember(TARGET, ["p1"], "1") == "p1"
    assert queues.only_queue(TARGET) == (True, "p1")
    # One queue on the page but more in the bucket (TotalCount), or several, or none: no name,
    # and that answer is remembered too.
    for ids, total in ((["p1"], "2"), (["p1", "p2"], "2"), ([], "0")):
        assert queues.remember(TARGET, ids, total) is None
        assert queues.only_queue(TARGET) == (True, None)


def test_answers_expire() -> None:
    clock = Clock()
    queues = DefaultQueues(clock=clock)
    queues.remember(TARGET, ["p1"], "")
    queues.learn(TARGET, "Transcode", "p2")
    clock.now += TTL_S - 1
    assert queues.only_queue(TARGET) == (True, "p1")
    # CI's own default for the kind before the looked-up one.
    assert queues.for_recovery(TARGET, "Transcode", media=True) == "p2"
    clock.now += 1
    assert queues.only_queue(TARGET) == (False, None)
    assert queues.for_recovery(TARGET, "Transcode", media=True) is None


def test_the_recovery_takes_a_looked_up_queue_for_a_media_kind_only() -> None:
    queues = DefaultQueues()
    queues.learn(TARGET, "Transcode", "")  # an answer without QueueId teaches nothing
    assert queues.for_recovery(TARGET, "Transcode", media=True) is None
    queues.remember(TARGET, ["p1"], "1")
    assert queues.for_recovery(TARGET, "Transcode", media=True) == "p1"
    assert queues.for_recovery(TARGET, "VideoTag", media=False) is None


def test_what_is_learnt_is_per_kind() -> None:
    queues = DefaultQueues()
    queues.learn(TARGET, "VideoTag", "pai")
    assert queues.for_recovery(TARGET, "VideoTag", media=False) == "pai"
    assert queues.for_recovery(TARGET, "Transcode", media=True) is None


def test_buckets_remembered_are_bounded() -> None:
    queues = DefaultQueues()
    for index in range(MAX_BUCKETS + 10):
        target = Target(f"bucket{index}-1250000000", "ap-guangzhou")
        queues.remember(target, [f"p{index}"], "1")
        queues.learn(target, "MediaInfo", f"p{index}")
    assert queues.only_queue(Target("bucket0-1250000000", "ap-guangzhou")) == (False, None)
    last = Target(f"bucket{MAX_BUCKETS + 9}-1250000000", "ap-guangzhou")
    assert queues.only_queue(last) == (True, f"p{MAX_BUCKETS + 9}")
    assert len(queues._only) == len(queues._default) == MAX_BUCKETS


def test_a_failed_look_up_stands_for_a_minute() -> None:
    clock = Clock()
    queues = DefaultQueues(clock=clock)
    queues.failed(TARGET)
    assert queues.only_queue(TARGET) == (True, None)
    clock.now += FAILED_TTL_S
    assert queues.only_queue(TARGET) == (False, None)


def test_a_queue_learnt_again_is_renewed_from_half_its_time_and_a_new_one_at_once() -> None:
    clock = Clock()
    queues = DefaultQueues(clock=clock)
    queues.learn(TARGET, "Transcode", "p2")
    clock.now += TTL_S / 2 - 1
    queues.learn(TARGET, "Transcode", "p2")  # not renewed yet: it still had over half its time
    clock.now += TTL_S / 2 + 1
    assert queues.for_recovery(TARGET, "Transcode", media=False) is None
    queues.learn(TARGET, "Transcode", "p2")
    clock.now += TTL_S / 2 + 1
    queues.learn(TARGET, "Transcode", "p2")  # past half its time: renewed for a whole TTL
    clock.now += TTL_S - 1
    assert queues.for_recovery(TARGET, "Transcode", media=False) == "p2"
    queues.learn(TARGET, "Transcode", "p3")  # CI answers another queue: taken at once
    assert queues.for_recovery(TARGET, "Transcode", media=False) == "p3"
