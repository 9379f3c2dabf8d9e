from worker.liveness import Liveness


def test_a_worker_is_wedged_only_when_it_made_no_progress_while_deliveries_wait():
    now = [0.0]
    liveness = Liveness(stall_seconds=60, clock=lambda: now[0])
    liveness.saw_queue(5)
    now[0] = 59
    assert liveness.healthy()
    now[0] = 61
    assert not liveness.healthy()  # deliveries wait, and the RQ loop did nothing for a minute
    liveness.progressed()
    assert liveness.healthy()
    now[0] = 200
    liveness.saw_queue(0)
    assert liveness.healthy()  # nothing to do is not a stall
    liveness.saw_queue(None)
    assert liveness.healthy()  # unreadable after an empty read: still nothing known to wait
    liveness.saw_queue(3)
    assert not liveness.healthy()
    liveness.saw_queue(None)
    assert not liveness.healthy()  # an error while checking is no progress (Redis refusing writes)
