"""The in-flight sets' shared snapshot: one read per window for every reader, none kept on failure."""

import threading

import pytest

from worker.inflight import Inflight
from worker.snapshot import Snapshot


class Reads:
    def __init__(self) -> None:
        self.count = 0
        self.fail = False
        self.release = threading.Event()
        self.release.set()

    def __call__(self) -> Inflight:
        self.release.wait(5)
        self.count += 1
        if self.fail:
            raise ConnectionError("redis gone")
        return Inflight.of_sets([])


def test_one_read_per_window_for_every_reader():
    now = [100.0]
    reads = Reads()
    snapshot = Snapshot(reads, 1.0, clock=lambda: now[0])
    first = snapshot()
    assert snapshot() is first
    now[0] += 0.99
    assert snapshot() is first
    assert reads.count == 1
    now[0] += 0.01
    assert snapshot() is not first
    assert reads.count == 2


def test_readers_arriving_during_a_read_share_it():
    reads = Reads()
    reads.release.clear()
    snapshot = Snapshot(reads, 1.0)
    got: list[Inflight] = []
    threads = [threading.Thread(target=lambda: got.append(snapshot())) for _ in range(8)]
    for thread in threads:
        thread.start()
    reads.release.set()
    for thread in threads:
        thread.join(5)
    assert reads.count == 1
    assert len({id(value) for value in got}) == 1


def test_a_failed_read_is_not_kept():
    now = [0.0]
    reads = Reads()
    snapshot = Snapshot(reads, 1.0, clock=lambda: now[0])
    reads.fail = True
    with pytest.raises(ConnectionError):
        snapshot()
    reads.fail = False
    assert isinstance(snapshot(), Inflight)
    assert reads.count == 2
