"""The periodic helper: ticks until stopped, a failing tick does not end the loop, wake() runs one at
once; as a ``with`` block it ends with the block."""

import threading

from shared.periodic import Periodic


def test_a_failing_tick_is_logged_and_the_next_comes():
    ticks: list[int] = []
    done = threading.Event()

    def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise ConnectionError("Redis gone for a moment")
        if len(ticks) == 3:
            done.set()

    loop = Periodic(0.01, tick, name="test-loop")
    loop.start()
    assert done.wait(10)  # a guard, not a measure
    loop.stop()
    assert len(ticks) >= 3
    assert not loop._thread or not loop._thread.is_alive()


def test_wake_runs_a_tick_at_once_and_a_block_ends_with_it():
    woken = threading.Event()
    with Periodic(3600.0, woken.set, name="test-wake") as loop:  # would tick in an hour
        loop.wake()
        assert woken.wait(10)
    assert loop._thread is not None
    assert not loop._thread.is_alive()
