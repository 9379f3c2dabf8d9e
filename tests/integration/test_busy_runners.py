"""Busy self-hosted runners from the webhooks alone (worker/busy_runners.py), against a real Redis:
distinct runners, their busy seconds, the anomalies, the sweeper, two workers, any order."""

import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.corpus import SEQUENCE, load
from tests.runner_jobs import delivered, lifecycle, runner_job
from worker.busy_runners import HISTORY

pytestmark = pytest.mark.integration
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def feed(exporter, payloads, batch_size=1, prefix="r"):
    entries = exporter.queued(*delivered(payloads, prefix))
    for start in range(0, len(entries), batch_size):
        exporter.processor.process_batch(entries[start : start + batch_size])


def test_a_runner_is_busy_while_its_job_runs_and_counted_once_however_many_jobs(exporter):
    feed(exporter, [runner_job(1, "in_progress", 7, 0), runner_job(2, "in_progress", 8, 3, group="gpu")])
    assert exporter.value("runners_busy", runner_group="pool") == 1
    assert exporter.value("runners_busy", runner_group="gpu") == 1
    # runner 7 finishes job 1 and takes job 3: still one busy runner, never two
    feed(exporter, [runner_job(1, "completed", 7, 0, 60), runner_job(3, "in_progress", 7, 61)], prefix="s")
    assert exporter.value("runners_busy", runner_group="pool") == 1
    assert exporter.value("runner_busy_seconds_total", runner_group="pool") == 60
    feed(exporter, [runner_job(3, "completed", 7, 61, 91), runner_job(2, "completed", 8, 3, 13, group="gpu")],
         prefix="t")  # fmt: skip
    assert exporter.total("runners_busy") == 0
    assert exporter.value("runner_busy_seconds_total", runner_group="pool") == 90
    assert exporter.value("runner_busy_seconds_total", runner_group="gpu") == 10
    assert exporter.total("runner_anomalies_total") == 0
    assert exporter.total("job_run_total", runner_group="pool", runs_on="linux,self-hosted") == 2


def test_hosted_runners_are_left_out(exporter):
    """GitHub-hosted jobs (the corpus's real run) make no runner busy: their names repeat."""
    entries = exporter.queued(*[load(p).accepted(f"d-{i}") for i, p in enumerate(SEQUENCE[:3])])
    exporter.processor.process_batch(entries)
    assert exporter.total("jobs_in_progress") == 1
    assert exporter.total("runners_busy") == 0
    assert not exporter.connection.keys("gha-exporter:state:runner:*")


def test_runners_of_different_owners_with_the_same_number_and_name_are_different_runners(exporter):
    feed(
        exporter,
        [runner_job(1, "in_progress", 1, 0, owner="a"), runner_job(2, "in_progress", 1, 0, owner="b")],
    )
    assert exporter.value("runners_busy", runner_group="pool") == 2
    assert exporter.total("runner_anomalies_total") == 0


def test_two_jobs_at_once_on_one_runner_are_one_overlap_counted_at_the_second_completion(exporter):
    feed(exporter, [*lifecycle(1, 7, 0, None), *lifecycle(2, 7, 10, None)])
    assert exporter.value("runners_busy", runner_group="pool") == 1  # busy with the latest, job 2
    assert exporter.total("runner_anomalies_total") == 0  # job 1 may yet have completed before 10
    feed(exporter, [runner_job(1, "completed", 7, 0, 30)], prefix="s")
    assert exporter.total("runner_anomalies_total") == 0  # job 2's end is not known yet
    feed(exporter, [runner_job(2, "completed", 7, 10, 40)] * 2, prefix="t")
    assert exporter.value("runner_anomalies_total", kind="overlap") == 1
    assert exporter.total("runners_busy") == 0


def test_a_job_that_ended_as_the_next_began_is_no_overlap(exporter):
    feed(exporter, [*lifecycle(1, 7, 0, 30), *lifecycle(2, 7, 30, 40)])
    assert exporter.total("runner_anomalies_total") == 0


def test_a_job_that_never_completed_while_its_runner_took_later_ones_is_superseded_once(exporter):
    stuck = lifecycle(1, 7, 0, None)
    later = [p for j in range(HISTORY) for p in lifecycle(10 + j, 7, 100 + 10 * j, 105 + 10 * j)]
    feed(exporter, [*stuck, *later])
    assert exporter.value("runner_anomalies_total", kind="superseded") == 1
    assert exporter.total("runners_busy") == 0
    # its completion, arriving after it left the history, changes nothing on the runner
    feed(exporter, [runner_job(1, "completed", 7, 0, 50)], prefix="late")
    assert exporter.value("runner_anomalies_total", kind="superseded") == 1
    assert exporter.total("runner_anomalies_total") == 1
    assert exporter.value("runner_busy_seconds_total", runner_group="pool") == 5 * HISTORY + 50


def test_a_busy_runner_whose_state_expired_is_counted_by_the_sweeper_once(exporter):
    feed(exporter, lifecycle(1, 7, 0, None))
    assert exporter.expiry.sweep(time.time()) == 0
    [runner] = exporter.connection.keys("gha-exporter:state:runner:*")
    assert runner == b"gha-exporter:state:runner:krzko:7:runner-7"
    assert 0 < exporter.connection.ttl(runner) <= exporter.settings.state.job_ttl_seconds
    exporter.connection.delete(runner)  # its TTL ran out
    job = exporter.connection.keys("gha-exporter:state:job:*")
    exporter.connection.delete(*job)
    assert exporter.expiry.sweep(time.time()) == 2  # the job and its runner
    assert exporter.expiry.sweep(time.time()) == 0
    assert exporter.value("state_expired_total", kind="runner", phase="busy") == 1
    assert exporter.total("runners_busy") == 0


def test_an_idle_runner_is_kept_as_long_as_the_marks(exporter):
    feed(exporter, lifecycle(1, 7, 0, 10))
    [runner] = exporter.connection.keys("gha-exporter:state:runner:*")
    dedupe = exporter.settings.webhook.dedupe_ttl_seconds
    assert dedupe - 60 < exporter.connection.ttl(runner) <= dedupe < exporter.settings.state.job_ttl_seconds


def test_two_workers_at_once_keep_each_runner_exactly(make_exporter):
    """Two workers apply six runners' jobs at the same time, each delivery once, in whatever order
    their threads interleave: each runner ends busy with its last job, every job counted once, no
    anomaly (every runner's jobs fit in its history, so no order can push one out)."""
    first, second = make_exporter(), make_exporter()
    payloads = []
    for runner in range(6):
        for j in range(HISTORY - 1):
            payloads += lifecycle(100 * runner + j + 1, runner, 100 * j, 100 * j + 50)
        payloads += lifecycle(100 * runner + 99, runner, 10_000, None)
    entries = first.queued(*delivered(payloads))

    def work(exporter, mine):
        for entry in mine:
            exporter.processor.process_batch([entry])

    pairs = ((first, entries[0::2]), (second, entries[1::2]))
    threads = [threading.Thread(target=work, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first.total("webhook_deliveries_processed_total") == len(payloads)
    assert first.value("runner_busy_seconds_total", runner_group="pool") == 6 * (HISTORY - 1) * 50
    assert first.value("runners_busy", runner_group="pool") == 6
    assert first.total("runner_anomalies_total") == 0


# -- any order ----------------------------------------------------------------------------------
# Two runners, at most HISTORY jobs each: a clean pair, an overlap, a job never completed, a job
# of another group, a job that never started on a runner's history. Every fact is in the final state.
JOBS = [
    *lifecycle(1, 7, 0, 30), *lifecycle(2, 7, 20, 50), *lifecycle(3, 7, 60, 90), *lifecycle(4, 7, 100, None),
    *lifecycle(5, 8, 0, None), *lifecycle(6, 8, 10, 20, group="gpu"), *lifecycle(7, 8, 30, None),
]  # fmt: skip


def final(exporter, entries, order, batch_size):
    exporter.connection.flushall()
    queued = exporter.queued(*entries)
    ordered = [queued[i] for i in order]
    for start in range(0, len(ordered), batch_size):
        exporter.processor.process_batch(ordered[start : start + batch_size])
    wanted = ("runners_busy", "runner_busy_seconds_total", "runner_anomalies_total", "job_run_total")
    figures = sorted(
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in exporter.families()
        for sample in family.samples
        if sample.name.removeprefix(exporter.prefix) in wanted
    )
    states = {
        key: exporter.connection.hgetall(key)
        for key in sorted(exporter.connection.keys("gha-exporter:state:runner:*"))
    }
    return figures, states


@FAST
@given(
    order=st.lists(st.integers(0, len(JOBS) - 1), max_size=len(JOBS)).flatmap(
        lambda extra: st.permutations(list(range(len(JOBS))) + extra)
    ),
    batch_size=st.integers(1, 5),
)
def test_busy_runners_and_their_anomalies_are_the_same_in_any_order_with_repeats(exporter, order, batch_size):
    entries = delivered(JOBS)
    expected = final(exporter, entries, range(len(JOBS)), 1)
    assert ("github_actions_runners_busy", (("runner_group", "pool"),), 2.0) in expected[0]  # runners 7, 8
    assert ("github_actions_runner_anomalies_total", (("kind", "overlap"),), 1.0) in expected[0]
    assert final(exporter, entries, order, batch_size) == expected
