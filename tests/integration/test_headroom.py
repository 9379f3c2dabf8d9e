"""The receivers' memory high-water mark (receiver.headroom) on a Redis of its own with a maxmemory,
and the worker applying a batch Redis refuses for memory in halves (worker.batches)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import OutOfMemoryError

from receiver.headroom import RESUME_MARGIN, Headroom, RedisFull
from receiver.intake import Accepted, AsyncIntake
from shared.envelope import Envelope
from shared.marks import AsyncDeliveryMarks
from shared.queueing import BATCH_FUNCTION, make_queue
from stack.redis_server import RedisServer
from worker import batches
from worker.combine import Combiner

MB = 2**20


@pytest.fixture(name="small_redis")
def _small_redis(tmp_path: Path) -> Iterator[Redis]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    client = Redis(port=server.port)
    yield client
    client.close()
    server.stop()


def room(client: Redis, megabytes: float) -> None:
    """maxmemory that many MB above what Redis uses now."""
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(used + int(megabytes * MB)))


def fill(client: Redis, share: float) -> list[str]:
    """Write keys of 50 KB (a request counts against maxmemory too) until Redis uses ``share`` of
    its maxmemory; their names."""
    names: list[str] = []
    while True:
        memory = client.info("memory")
        if int(memory["used_memory"]) >= share * int(memory["maxmemory"]):
            return names
        names.append(f"filler:{len(names)}")
        client.set(names[-1], b"x" * 50_000)


def test_the_receivers_stop_at_the_high_water_mark_and_resume_below_it(small_redis: Redis):
    async def scenario() -> list[bool]:
        connection = AsyncRedis(port=small_redis.connection_pool.connection_kwargs["port"])
        headroom = Headroom(connection, 0.9)
        seen = [await headroom.read() and headroom.full]  # no maxmemory: never full
        room(small_redis, 4)
        await headroom.read()
        seen.append(headroom.full)
        filled = fill(small_redis, 0.93)  # past 90 % of maxmemory
        await headroom.read()
        seen.append(headroom.full)
        with pytest.raises(RedisFull):
            headroom.check()
        small_redis.delete(*filled)
        await headroom.read()
        seen.append(headroom.full)
        headroom.wrote(5 * MB, 1)  # what this receiver wrote since the last read counts at once
        seen.append(headroom.full)
        await headroom.read()
        seen.append(headroom.full)
        await connection.aclose()
        return seen

    assert asyncio.run(scenario()) == [False, False, True, False, True, False]


def test_a_paused_receiver_resumes_only_well_below_the_mark(small_redis: Redis):
    """Redis hovering at the mark (clients' buffers come and go) does not flip /ready at each read."""

    async def scenario() -> list[bool]:
        connection = AsyncRedis(port=small_redis.connection_pool.connection_kwargs["port"])
        headroom = Headroom(connection, 0.9)
        room(small_redis, 16)  # a key of 50 KB is 0.3 % of it: each level below is met closely
        filled = fill(small_redis, 0.91)
        await headroom.read()
        seen = [headroom.full]
        while share_used(small_redis) >= 0.88:  # below the mark, above the margin under it
            small_redis.delete(filled.pop())
        await headroom.read()
        seen.append(headroom.full)
        while share_used(small_redis) >= 0.9 - RESUME_MARGIN:
            small_redis.delete(filled.pop())
        await headroom.read()
        seen.append(headroom.full)
        fill(small_redis, 0.87)  # not paused: below the mark is room again
        assert share_used(small_redis) < 0.9
        await headroom.read()
        seen.append(headroom.full)
        await connection.aclose()
        return seen

    assert asyncio.run(scenario()) == [True, True, False, False]


def share_used(client: Redis) -> float:
    memory = client.info("memory")
    return int(memory["used_memory"]) / int(memory["maxmemory"])


def test_a_write_refused_for_memory_pauses_the_receiver_until_redis_has_room(small_redis, make_settings):
    settings = make_settings()

    async def scenario() -> tuple[bool, bool]:
        connection = AsyncRedis(port=small_redis.connection_pool.connection_kwargs["port"])
        headroom = Headroom(connection, 0.99)
        queue = make_queue(small_redis, settings.queue)
        marks = AsyncDeliveryMarks(connection, lambda: 3600)
        intake = AsyncIntake(connection, marks, queue, settings.queue, headroom)
        small_redis.config_set("maxmemory", str(int(small_redis.info("memory")["used_memory"]) - 1000))
        accepted = Accepted(Envelope("workflow_job", "d-1", "1", 0.0), b"{}")
        with pytest.raises(OutOfMemoryError):  # before the first read: Redis itself refuses
            await intake.submit([accepted])
        paused = headroom.full
        small_redis.config_set("maxmemory", "0")
        await headroom.read()
        await intake.submit([accepted])
        await connection.aclose()
        return paused, headroom.full

    assert asyncio.run(scenario()) == (True, False)
    assert small_redis.llen(make_queue(small_redis, settings.queue).key) == 1


class RoomFor:
    """A processor whose Redis takes batches of at most ``most`` deliveries (OOM past it)."""

    def __init__(self, most: int, refusals_of_one: int = 0) -> None:
        self.most = most
        self.refusals_of_one = refusals_of_one
        self.applied: list[list[int]] = []

    def process_batch(self, entries: list[int]) -> None:
        if len(entries) > self.most or (len(entries) == 1 and self.refusals_of_one > 0):
            if len(entries) == 1:
                self.refusals_of_one -= 1
            raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
        self.applied.append(list(entries))


def test_a_batch_refused_for_memory_is_applied_in_halves(monkeypatch):
    monkeypatch.setattr(batches, "OOM_PAUSE_SECONDS", 0.0)
    processor = RoomFor(most=3)
    batches.apply_in_pieces(processor, list(range(10)))  # type: ignore[arg-type]
    assert [e for batch in processor.applied for e in batch] == list(range(10))  # in order, each once
    assert max(len(batch) for batch in processor.applied) <= 3

    one = RoomFor(most=1, refusals_of_one=batches.OOM_TRIES - 1)
    batches.apply_in_pieces(one, [7])  # type: ignore[arg-type]
    assert one.applied == [[7]]  # refused nine times, then it had room

    never = RoomFor(most=0)
    with pytest.raises(OutOfMemoryError):  # no room at all: the batch fails (RQ retries it)
        batches.apply_in_pieces(never, [7])  # type: ignore[arg-type]


class ClaimsUntilFull:
    """RQ's queue as the combiner sees it: the first round of claims fits, the next is refused."""

    queue = SimpleNamespace(name="q")

    def __init__(self) -> None:
        self.rounds = 0

    def claim(self, _claimed: str, count: int, _score: float) -> list[str]:
        self.rounds += 1
        if self.rounds > 1:
            raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
        return [f"job-{i}" for i in range(count)]

    def fetch(self, ids: list[str]) -> list[SimpleNamespace]:
        return [SimpleNamespace(id=i, func_name=BATCH_FUNCTION, kwargs={}, args=([{}],)) for i in ids]

    def renew(self, _claimed: str, ids: list[str], _score: float) -> None:
        self.renewed = list(ids)


def test_claims_refused_for_memory_end_the_round_and_keep_what_was_claimed():
    jobs = ClaimsUntilFull()
    combiner = Combiner(jobs, max_batch=300)  # type: ignore[arg-type]
    taken = combiner.take(1)
    assert [job.id for job in taken] == [f"job-{i}" for i in range(100)]  # the first round's
    assert jobs.rounds == 2
    combiner.renew()  # what it holds is what it took: applied and deleted, or given back, with them
    assert jobs.renewed == [job.id for job in taken]
