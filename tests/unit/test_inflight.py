"""The in-flight sets summarised per group: counts, each group's oldest, and the oldest attempts of
several sets merged, filtered and limited, from scores as RESP2 (text) or RESP3 (floats) gives them."""

import pytest

from worker.codec import JobGroup, inflight_group, inflight_member
from worker.inflight import Inflight, Phase

GPU = ["self-hosted,gpu", "gpu-pool", "o/a"]
LINUX = ["ubuntu-latest", "", "o/b"]


def phase(kind, name, attempts, resp2):
    """A set as ZRANGE gives it: (group, attempt key, score), in score order."""
    ordered = sorted(attempts, key=lambda a: (a[2], inflight_member(inflight_group(kind, a[0]), a[1])))
    members = [inflight_member(inflight_group(kind, group), key).encode() for group, key, _ in ordered]
    scores = [repr(score).encode() if resp2 else score for _, _, score in ordered]
    return Phase(kind, name, members, scores)


@pytest.fixture(name="inflight", params=["RESP2", "RESP3"])
def _inflight(request):
    resp2 = request.param == "RESP2"
    return Inflight.of_sets([
        phase("job", "queued",
              [(GPU, "job:1:1", 50.0), (GPU, "job:2:1", 10.0), (LINUX, "job:3:1", 30.0)], resp2),
        phase("job", "waiting", [], resp2),
        phase("job", "in_progress", [(LINUX, "job:4:1", 20.0), (GPU, "job:5:1", 40.0)], resp2),
        phase("run", "queued", [(["o/a"], "run:9:1", 5.0)], resp2),
    ])  # fmt: skip


def test_groups_are_counted_with_their_oldest(inflight):
    queued = {tuple(g.group): (g.attempts, g.oldest) for g in inflight.groups("job", "queued")}
    assert queued == {tuple(GPU): (2, 10.0), tuple(LINUX): (1, 30.0)}
    assert inflight.groups("job", "waiting") == []
    assert inflight.groups("job", "completed") == []


def test_oldest_first_across_sets_filtered_and_limited(inflight):
    everything, total = inflight.oldest_first("job", lambda _phase, _group: True, 10)
    assert [(e.key, e.phase, e.since) for e in everything] == [
        ("job:2:1", "queued", 10.0),
        ("job:4:1", "in_progress", 20.0),
        ("job:3:1", "queued", 30.0),
        ("job:5:1", "in_progress", 40.0),
        ("job:1:1", "queued", 50.0),
    ]
    assert total == 5
    assert everything[0].group == JobGroup(*GPU)
    gpu, total = inflight.oldest_first("job", lambda _phase, group: group[0] == "self-hosted,gpu", 2)
    assert ([e.key for e in gpu], total) == (["job:2:1", "job:5:1"], 3)  # the total counts past the limit
    none, total = inflight.oldest_first("job", lambda phase, _group: phase == "waiting", 5)
    assert (none, total) == ([], 0)


def test_entries_are_every_attempt_jobs_then_runs(inflight):
    assert [e.key for e in inflight.entries()] == [
        "job:2:1",
        "job:4:1",
        "job:3:1",
        "job:5:1",
        "job:1:1",
        "run:9:1",
    ]
    assert Inflight.of_sets([]).entries() == []
