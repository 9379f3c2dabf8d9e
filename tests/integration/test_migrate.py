"""Aggregates written in the earlier layout (label values as JSON) are converted once, at start."""

import json

import pytest

from worker.migrate import EarlierLayout

pytestmark = pytest.mark.integration
OLD_JOBS = "gha-exporter:agg:job_run_total:repository,workflow,job,conclusion,runner_group,runs_on,attempt"
OLD_QUEUE = "gha-exporter:agg:job_queue_duration_seconds:repository,workflow,job,runner_group,runs_on"
OLD_COST = "gha-exporter:agg:job_cost:repository,workflow,job,runner_class"
OLD_SET = "gha-exporter:series:job_run_total:repository,workflow,job,conclusion,runner_group,runs_on,attempt"
JOB = ["o/r", "CI", 'say "hi"\\now', "success", "GitHub Actions", "ubuntu-latest", "first"]


def labels_json(values):
    return json.dumps(values, separators=(",", ":"))


def test_old_aggregates_show_the_same_numbers_after_conversion(exporter):
    redis = exporter.connection
    redis.hset(OLD_JOBS, labels_json(JOB) + "\x1fv", "3")
    redis.sadd(OLD_SET, labels_json(JOB))
    queue_labels = labels_json(["o/r", "CI", "build", "GitHub Actions", "ubuntu-latest"])
    redis.hset(OLD_QUEUE, mapping={queue_labels + "\x1f10.0": 2, queue_labels + "\x1fcount": 2,
                                   queue_labels + "\x1fsum": 7.5})  # fmt: skip
    redis.hset(OLD_COST, mapping={labels_json(["o/r", "CI", "build", "linux"]) + "\x1fv": 0.012,
                                  labels_json(["o/r", "CI", "build", "linux"]) + "\x1fat": 100})  # fmt: skip
    earlier = EarlierLayout(redis, exporter.policy)
    assert earlier.convert() == 4
    assert earlier.convert() == 0  # once
    assert not list(redis.scan_iter("gha-exporter:agg:*"))
    assert not list(redis.scan_iter("gha-exporter:series:*"))
    job = dict(
        zip(
            ["repository", "workflow", "job", "conclusion", "runner_group", "runs_on", "attempt"],
            JOB,
            strict=True,
        )
    )
    assert exporter.value("job_run_total", **job) == 3
    queue = {"repository": "o/r", "workflow": "CI", "job": "build", "runner_group": "GitHub Actions",
             "runs_on": "ubuntu-latest"}  # fmt: skip
    assert exporter.value("job_queue_duration_seconds_count", **queue) == 2
    assert exporter.value("job_queue_duration_seconds_sum", **queue) == 7.5
    assert exporter.value("job_queue_duration_seconds_bucket", le="10.0", **queue) == 2
    cost = {"repository": "o/r", "workflow": "CI", "job": "build", "runner_class": "linux"}
    assert exporter.value("job_cost", **cost) == 0.012
    # the guard knows the label set: counting it again does not make a second series
    # a worker of the earlier version, still running during a rolling upgrade, counts two more
    redis.hincrby(OLD_JOBS, labels_json(JOB) + "\x1fv", 2)
    assert earlier.convert() == 1
    assert exporter.value("job_run_total", **job) == 5
    assert redis.scard(exporter.ledger.series_key("job_run_total")) == 1
    [member] = redis.smembers(exporter.ledger.series_key("job_run_total"))
    assert member.decode() + "\x1fv" in {
        f.decode() for f in redis.hkeys(exporter.ledger.agg_key("job_run_total"))
    }


@pytest.mark.parametrize(
    ("stored", "earlier", "kept"),
    [
        ((0.5, 200.0), (0.9, 100.0), 0.5),  # the current key's fact is newer: kept
        ((0.5, 100.0), (0.9, 200.0), 0.9),  # the earlier key's fact is newer: it wins
        ((0.5, 100.0), (0.9, 100.0), 0.9),  # the same time: the larger value, as the ledger decides
    ],
)
def test_a_latest_value_gauge_keeps_the_newer_fact(exporter, stored, earlier, kept):
    redis = exporter.connection
    labels = ["o/r", "CI", "build", "linux"]
    text = 'repository="o/r",workflow="CI",job="build",runner_class="linux"'
    new_key = exporter.ledger.agg_key("job_cost")
    redis.hset(new_key, mapping={text + "\x1fv": stored[0], text + "\x1fat": stored[1]})
    redis.hset(
        OLD_COST,
        mapping={labels_json(labels) + "\x1fv": earlier[0], labels_json(labels) + "\x1fat": earlier[1]},
    )
    assert EarlierLayout(redis, exporter.policy).convert() == 1
    cost = {"repository": "o/r", "workflow": "CI", "job": "build", "runner_class": "linux"}
    assert exporter.value("job_cost", **cost) == kept
    assert not redis.exists(OLD_COST)
