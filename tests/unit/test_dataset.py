import asyncio

import fakeredis
from loguru import logger
from prometheus_client import CollectorRegistry

from shared import keys
from shared.dataset import DatasetWatch, Epoch


def test_a_redis_that_lost_its_data_is_noticed_once_and_counted(fake_redis):
    now = [1000.0]
    registry = CollectorRegistry()
    watch = DatasetWatch(clock=lambda: now[0])
    watch.expose(registry, "p_")
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(m.record["message"]), level="ERROR")
    try:
        watch.check(fake_redis)  # the first process on an empty Redis writes the epoch
        first = watch.known
        now[0] = 1600.0
        watch.check(fake_redis)
        assert errors == []
        assert registry.get_sample_value("p_redis_dataset_age_seconds") == 600.0
        fake_redis.flushall()  # Redis came back empty
        watch.check(fake_redis)
        watch.check(fake_redis)
        assert watch.known != first
        fake_redis.set(keys.DATASET, Epoch("another", 10.0).text())  # data of another deployment
        watch.check(fake_redis)
    finally:
        logger.remove(sink)
    assert watch.resets == 2
    assert registry.get_sample_value("p_redis_dataset_resets_total") == 2.0
    assert len(errors) == 2
    assert errors[0].startswith(f"Redis lost its data: dataset {first.id} is gone")  # type: ignore[union-attr]


def test_every_process_agrees_on_the_epoch(fake_server):
    """Two processes (one blocking, one asyncio) starting on an empty Redis see one epoch."""
    blocking = DatasetWatch()
    blocking.check(fakeredis.FakeRedis(server=fake_server))
    other = DatasetWatch()

    async def check() -> None:
        await other.acheck(fakeredis.FakeAsyncRedis(server=fake_server))

    asyncio.run(check())
    assert other.known == blocking.known
    assert other.resets == blocking.resets == 0


def test_a_garbled_epoch_is_replaced(fake_redis):
    fake_redis.set(keys.DATASET, "not an epoch")
    watch = DatasetWatch()
    watch.check(fake_redis)
    assert watch.known is not None
    assert Epoch.parse(fake_redis.get(keys.DATASET)) == watch.known
