"""`ReceiveDeadline`'s cancellation and its taking back (`taken_back`), the one piece every reader
of a request shares (`read_own_request` for the API's calls, `OpsReads` for health and
reflection): a wait the deadline cancelled goes on with `RequestTimeout` as its request, with
exactly the deadline's own cancellation undone (`Task.uncancel` counts, one for one), and any
other cancellation goes through. Driven on real tasks whose wait stands for `context.read()`;
the readers themselves are tested through real gateways (`test_receive_timeout`,
`test_ops_reads`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway._chain import NotRead
from gateway.api.receive_timeout import Arrival, ReceiveDeadline
from gateway.errors import Overloaded, RequestTimeout

WAIT_S = 5.0
TIMEOUT_S = 0.0  # due at once: the timer fires on the loop's next turn


class Reader:
    """A reader as `OpsReads.read` is: each wait registered in `arriving` while it waits, and
    answered by the deadline's `taken_back` when cancelled. `cancel_too`: its owner cancels
    the late task as well (as its client might, at the same moment)."""

    def __init__(self, cancel_too: bool = False) -> None:
        self.arriving: dict[asyncio.Task[Any], Arrival] = {}
        self.expired: list[asyncio.Task[Any]] = []
        self.fired = asyncio.Event()
        self.cancel_too = cancel_too
        self.deadline = ReceiveDeadline(TIMEOUT_S, self.arriving, self.expire)
        self.waiting = asyncio.Event()

    def expire(self, task: asyncio.Task[Any]) -> None:
        self.expired.append(task)
        del self.arriving[task]
        self.fired.set()
        if self.cancel_too:
            task.cancel()

    async def read(self, request: asyncio.Future[str]) -> Any:
        task = asyncio.current_task()
        assert task is not None
        self.arriving[task] = (0, asyncio.get_running_loop().time())
        self.waiting.set()
        try:
            return await request
        except asyncio.CancelledError:
            if (stand_in := self.deadline.taken_back(task, "the test's start")) is None:
                raise
            return stand_in
        finally:
            self.arriving.pop(task, None)
            self.deadline.forget(task)


async def test_a_wait_the_deadline_cancels_goes_on_with_request_timeout() -> None:
    reader = Reader()
    task = asyncio.create_task(reader.read(asyncio.get_running_loop().create_future()))
    await asyncio.wait_for(reader.waiting.wait(), WAIT_S)
    reader.deadline.arm()

    stand_in = await asyncio.wait_for(task, WAIT_S)

    assert isinstance(stand_in, NotRead) and isinstance(stand_in.error, RequestTimeout)
    assert stand_in.error.timeout_s == TIMEOUT_S
    assert "of the test's start" in str(stand_in.error)
    assert task.cancelling() == 0  # the deadline's one cancel, taken back once
    assert reader.expired == [task] and not reader.arriving
    assert not reader.deadline.armed  # nothing arriving any more
    assert reader.deadline.taken_back(task) is None  # answered once, not kept


async def test_another_cancellation_is_not_taken_back() -> None:
    reader = Reader()
    task = asyncio.create_task(reader.read(asyncio.get_running_loop().create_future()))
    await asyncio.wait_for(reader.waiting.wait(), WAIT_S)

    task.cancel()  # its client's, say: the deadline never fired
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT_S)
    assert reader.expired == [] and not reader.arriving


async def test_only_the_deadlines_own_cancellation_is_undone() -> None:
    """Cancelled by the deadline and by someone else before the wait could answer: the wait
    still gets its stand-in, and the other cancellation stays requested (`cancelling() == 1`)
    for the code after the read to see."""
    reader = Reader(cancel_too=True)
    after_read: list[int] = []

    async def read_then_look(request: asyncio.Future[str]) -> Any:
        stand_in = await reader.read(request)
        task = asyncio.current_task()
        assert task is not None
        after_read.append(task.cancelling())
        return stand_in

    task = asyncio.create_task(read_then_look(asyncio.get_running_loop().create_future()))
    await asyncio.wait_for(reader.waiting.wait(), WAIT_S)
    reader.deadline.arm()

    # The other cancellation, still requested, ends the task at its next await, if any: none.
    assert isinstance(await asyncio.wait_for(task, WAIT_S), NotRead)
    assert after_read == [1]


async def test_a_task_done_before_the_deadline_is_not_cancelled_nor_kept() -> None:
    reader = Reader()
    task = asyncio.create_task(asyncio.sleep(0, "done"))
    assert await task == "done"
    reader.arriving[task] = (0, 0.0)  # left behind, as `InFlight`'s still due `_gone` leaves it
    reader.deadline.arm()
    await asyncio.wait_for(reader.fired.wait(), WAIT_S)

    assert reader.expired == [task]
    assert task.cancelling() == 0
    assert reader.deadline.taken_back(task) is None


async def test_a_wait_ended_with_a_refusal_goes_on_with_that_refusal() -> None:
    """`end` with a refusal (as `OpsReads` ends a read for a newer one): the same taking back,
    with the refusal given instead of the time-out's."""
    reader = Reader()
    task = asyncio.create_task(reader.read(asyncio.get_running_loop().create_future()))
    await asyncio.wait_for(reader.waiting.wait(), WAIT_S)
    refusal = Overloaded("reads", 8)
    del reader.arriving[task]  # the owner takes it out of its counts first
    reader.deadline.end(task, refusal)

    stand_in = await asyncio.wait_for(task, WAIT_S)

    assert isinstance(stand_in, NotRead) and stand_in.error is refusal
    assert task.cancelling() == 0
    assert reader.deadline.taken_back(task) is None
