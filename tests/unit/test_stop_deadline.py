"""The stop deadline: armed by the first stop signal, it ends the process when the grace is over."""

import signal
import threading

from shared.stop_deadline import EXIT_CODE, StopDeadline
from worker.rqworker import StopFlag


class Exits:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_an_armed_deadline_exits_once_its_grace_is_over():
    exits = Exits()
    deadline = StopDeadline(0.05, "worker", on_expiry=exits)
    assert not deadline.armed
    deadline.arm()
    deadline.arm()  # a second signal does not start a second countdown
    assert exits.called.wait(10)
    for thread in threading.enumerate():
        if thread.name == "stop-deadline":
            thread.join(10)
    assert exits.codes == [EXIT_CODE]


def test_a_deadline_never_armed_never_exits():
    exits = Exits()
    StopDeadline(0.01, "worker", on_expiry=exits)
    assert not exits.called.wait(0.2)


def test_a_stop_signal_arms_the_deadline_and_a_stop_by_hand_does_not():
    exits = Exits()
    by_hand = StopFlag(StopDeadline(3600, "worker", on_expiry=exits))
    by_hand.set()
    assert by_hand.is_set()
    assert by_hand.deadline is not None
    assert not by_hand.deadline.armed
    signalled = StopFlag(StopDeadline(3600, "worker", on_expiry=exits))
    signalled.set(signal.SIGTERM)
    assert signalled.is_set()
    assert signalled.deadline is not None
    assert signalled.deadline.armed
    assert exits.codes == []
