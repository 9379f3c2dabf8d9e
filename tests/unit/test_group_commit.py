import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from receiver.group_commit import CommitStopped, GroupCommit
from receiver.intake import Accepted, Admission
from shared.envelope import Envelope

pytestmark = pytest.mark.anyio


def envelope(i: int) -> Accepted:
    return Accepted(Envelope("workflow_job", f"d-{i}", "h", 1.0), b"{}")


class SlowWrites:
    """A submit function whose first write waits until released, so others gather behind it."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail = fail

    async def __call__(self, deliveries):
        self.batches.append([d.envelope.delivery_id for d in deliveries])
        if len(self.batches) == 1:
            await asyncio.wait_for(self.release.wait(), 5)
        if self.fail:
            raise RedisConnectionError("down")
        return [Admission.QUEUED] * len(deliveries)


async def test_a_lone_delivery_is_written_alone():
    writes = SlowWrites()
    writes.release.set()
    commit = GroupCommit(writes, max_batch=10)
    commit.start()
    assert await commit.submit(envelope(1)) is Admission.QUEUED
    await commit.stop()
    assert writes.batches == [["d-1"]]


async def test_deliveries_arriving_during_a_write_share_the_next_one_up_to_the_limit():
    writes = SlowWrites()
    sizes: list[int] = []
    commit = GroupCommit(writes, max_batch=4, observe_batch=sizes.append)
    commit.start()
    first = asyncio.ensure_future(commit.submit(envelope(0)))
    while not writes.batches:
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(commit.submit(envelope(i))) for i in range(1, 7)]
    await asyncio.sleep(0.01)
    writes.release.set()
    results = await asyncio.gather(first, *rest)
    await commit.stop()
    assert results == [Admission.QUEUED] * 7
    assert writes.batches == [["d-0"], ["d-1", "d-2", "d-3", "d-4"], ["d-5", "d-6"]]
    assert sizes == [1, 4, 2]


async def test_a_failed_write_fails_every_delivery_waiting_on_it():
    writes = SlowWrites(fail=True)
    commit = GroupCommit(writes, max_batch=10)
    commit.start()
    first = asyncio.ensure_future(commit.submit(envelope(0)))
    while not writes.batches:
        await asyncio.sleep(0.001)
    second = asyncio.ensure_future(commit.submit(envelope(1)))
    await asyncio.sleep(0.01)
    writes.release.set()
    for future in (first, second):
        with pytest.raises(RedisConnectionError):
            await future
    await commit.stop()


async def test_stopping_answers_the_batch_in_flight_and_the_pending_ones():
    writes = SlowWrites()  # never released: the first write is in flight when the receiver stops
    commit = GroupCommit(writes, max_batch=10)
    commit.start()
    in_flight = asyncio.ensure_future(commit.submit(envelope(0)))
    while not writes.batches:
        await asyncio.sleep(0.001)
    pending = asyncio.ensure_future(commit.submit(envelope(1)))
    await asyncio.sleep(0)
    await commit.stop()
    for future in (in_flight, pending):
        with pytest.raises(CommitStopped):  # a RedisError: the handler answers 503
            await future


async def settled(future: asyncio.Future) -> asyncio.Future:
    """``future`` once done (a guard of 5 s, so that a broken watch fails instead of hanging)."""
    done, _ = await asyncio.wait({future}, timeout=5)
    assert done, "still waiting: its deadline never fired"
    return future


async def test_a_delivery_past_its_deadline_fails_and_is_left_out_of_the_next_write():
    writes = SlowWrites()
    commit = GroupCommit(writes, max_batch=10)
    commit.start()
    loop = asyncio.get_running_loop()
    in_flight = asyncio.ensure_future(commit.submit(envelope(0)))
    while not writes.batches:
        await asyncio.sleep(0.001)
    late = asyncio.ensure_future(commit.submit(envelope(1), loop.time() + 0.05))
    with pytest.raises(TimeoutError):
        (await settled(late)).result()
    writes.release.set()
    assert await in_flight is Admission.QUEUED
    await commit.stop()
    assert writes.batches == [["d-0"]]


async def test_deadlines_fire_earliest_first_whatever_order_they_came_in():
    writes = SlowWrites()  # never released: nothing is answered but by its deadline
    commit = GroupCommit(writes, max_batch=10)
    commit.start()
    loop = asyncio.get_running_loop()
    patient = asyncio.ensure_future(commit.submit(envelope(0), loop.time() + 0.5))
    hasty = asyncio.ensure_future(commit.submit(envelope(1), loop.time() + 0.02))
    with pytest.raises(TimeoutError):
        (await settled(hasty)).result()
    assert not patient.done()
    with pytest.raises(TimeoutError):
        (await settled(patient)).result()
    await commit.stop()
