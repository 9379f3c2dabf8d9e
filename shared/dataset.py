"""Has Redis lost its data? An epoch key, written once per Redis dataset, remembered by each process.

``gha-exporter:dataset`` holds a random id and when it was written (``<id> <unix time>``), with no
TTL. The first process to find it missing writes it (``SET NX``); every process remembers the one it
saw. When it is gone or different later, Redis came back empty or from other data (no persistence, a
flush, a wrong volume, a failover to a replica that had nothing): the deliveries queued and the
totals before it are gone. That is logged as an ERROR and counted (``redis_dataset_resets_total``),
and the new epoch is remembered. The epoch's age is exposed (``redis_dataset_age_seconds``): a young
dataset under an old deployment is the same news for a process that started after the loss.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from loguru import logger
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from shared import keys


@dataclass(frozen=True)
class Epoch:
    id: str
    created: float

    @classmethod
    def parse(cls, raw: bytes | str | None) -> Epoch | None:
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        try:
            epoch_id, created = (text or "").split(" ")
            return cls(epoch_id, float(created))
        except ValueError:
            return None

    @classmethod
    def new(cls, now: float) -> Epoch:
        return cls(uuid.uuid4().hex, now)

    def text(self) -> str:
        return f"{self.id} {self.created:.3f}"


class DatasetWatch:
    """The epoch this process saw last, checked with :meth:`check` (blocking) or :meth:`acheck`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.known: Epoch | None = None
        self.resets = 0
        self._counter: Counter | None = None

    def expose(self, registry: CollectorRegistry, prefix: str) -> None:
        self._counter = Counter(
            f"{prefix}redis_dataset_resets",
            "Times this process found Redis's data gone or replaced (its dataset epoch changed): what"
            " was queued and counted before is lost.",
            registry=registry,
        )
        registry.register(_Age(self, f"{prefix}redis_dataset_age_seconds"))

    def age(self) -> float | None:
        return None if self.known is None else self._clock() - self.known.created

    def check(self, connection: Redis) -> None:
        """Read the epoch (writing it when missing) and compare it with the one known."""
        raw = connection.get(keys.DATASET)
        if Epoch.parse(raw) is None:
            connection.set(keys.DATASET, Epoch.new(self._clock()).text(), nx=raw is None)
            raw = connection.get(keys.DATASET)
        self._saw(Epoch.parse(raw))

    async def acheck(self, connection: AsyncRedis) -> None:
        raw = await connection.get(keys.DATASET)
        if Epoch.parse(raw) is None:
            await connection.set(keys.DATASET, Epoch.new(self._clock()).text(), nx=raw is None)
            raw = await connection.get(keys.DATASET)
        self._saw(Epoch.parse(raw))

    def _saw(self, epoch: Epoch | None) -> None:
        if epoch is None or epoch == self.known:
            return
        if self.known is None:
            logger.info(
                "Redis dataset {} (first written {:.0f} s ago)", epoch.id, self._clock() - epoch.created
            )
        else:
            self.resets += 1
            if self._counter is not None:
                self._counter.inc()
            logger.error(
                "Redis lost its data: dataset {} is gone, Redis now holds {} (written {:.0f} s ago). The"
                " deliveries queued and the totals counted before are lost; with github.hooks set,"
                " reconciliation asks GitHub to redeliver those of the last 3 days",
                self.known.id,
                epoch.id,
                self._clock() - epoch.created,
            )
        self.known = epoch


class _Age(Collector):
    """The epoch's age, once the process has seen one."""

    def __init__(self, watch: DatasetWatch, name: str) -> None:
        self._watch = watch
        self._name = name

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            self._name, "Since the Redis dataset this process uses was first written (its epoch)."
        )
        age = self._watch.age()
        if age is not None:
            family.add_metric([], age)
        yield family
