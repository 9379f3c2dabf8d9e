"""Each Redis script alone, on a real Redis, with crafted KEYS and ARGV (the marks' scripts are in
test_marks.py). Every ``.lua`` file of the project must have a test here or there."""

import json
from pathlib import Path

import pytest
from redis import Redis

from shared.scripts import LuaScript
from worker.inflight import Inflight, Phase

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SEP = "\x1f"


@pytest.fixture(name="redis")
def _redis(redis_url):
    connection = Redis.from_url(redis_url)
    yield connection
    connection.close()


def test_every_script_file_is_tested():
    tested = {"shared/marks.create.lua", "shared/marks.read.lua", "shared/marks.settle.lua"}
    source = Path(__file__).read_text()
    files = {str(p.relative_to(ROOT)) for p in ROOT.glob("*/*.lua")}
    assert files, "no script files found"
    for name in files - tested:
        package, script = name.removesuffix(".lua").split("/")
        assert f'LuaScript("{package}", "{script}")' in source, f"{name} has no test"


# -- worker/ledger.*.lua ---------------------------------------------------------------------
def test_ledger_read_returns_each_hash_in_order(redis):
    redis.hset("s:1", mapping={"phase": "queued"})
    read = LuaScript("worker", "ledger.read")
    assert read(redis, ["s:1", "s:none"]) == [[b"phase", b"queued"], []]


def apply(redis, **batch):
    batch = {"limit": 10, "sep": SEP, "at": "at", "states": [], "zrem": [], "zadd": [], "aggs": [],
             "folded": ["folded", "v"], "gate": "", **batch}  # fmt: skip
    return LuaScript("worker", "ledger.write")(redis, (), [json.dumps(batch)])


def latest(value, at):
    return ["agg", "", 'a="x"', 'a="__overflow__"', 'family="f"', [["v", "l", value, at]], 1]


def test_ledger_apply_writes_only_through_its_gate_and_closes_it(redis):
    """The marks' apply sets the gate when it applied the batch's deliveries (test_marks.py)."""
    counter = ["agg", "", 'a="x"', 'a="__overflow__"', 'family="f"', [["v", "n", "1"]], 1]
    assert apply(redis, gate="gate", aggs=[counter]) == 0  # not set: the deliveries were not applied
    assert redis.exists("agg") == 0
    redis.set("gate", "1")
    assert apply(redis, gate="gate", aggs=[counter]) == 1
    assert redis.hget("agg", f'a="x"{SEP}v') == b"1"
    assert redis.exists("gate") == 0


def test_ledger_apply_keeps_the_newest_fact_and_on_a_tie_the_larger_value(redis):
    apply(redis, aggs=[latest("5.0", "100.0")])
    apply(redis, aggs=[latest("9.0", "50.0")])  # older: ignored
    assert redis.hget("agg", f'a="x"{SEP}v') == b"5.0"
    apply(redis, aggs=[latest("3.0", "100.0")])  # same time, smaller: ignored
    assert redis.hget("agg", f'a="x"{SEP}v') == b"5.0"
    apply(redis, aggs=[latest("7.0", "100.0")])  # same time, larger: wins, so any order agrees
    assert redis.hget("agg", f'a="x"{SEP}v') == b"7.0"
    apply(redis, aggs=[latest("1.0", "200.0")])  # newer: wins even when smaller
    assert redis.hgetall("agg") == {f'a="x"{SEP}v'.encode(): b"1.0", f'a="x"{SEP}at'.encode(): b"200.0"}


def test_ledger_apply_replaces_states_moves_inflight_and_guards_cardinality(redis):
    redis.hset("state", mapping={"old": "1"})
    redis.zadd("inflight:queued", {"member": 1})

    def counter(labels, updates=1):  # one entry standing for `updates` merged increments of 1
        return ["agg", "guard", labels, 'a="__overflow__"', 'family="f"', [["v", "n", str(updates)]], updates]

    apply(
        redis,
        limit=2,
        states=[["state", ["phase", "in_progress"], 60]],
        zrem=[["inflight:queued", "member"]],
        zadd=[["inflight:in_progress", "5", "member", "", "", "", "", "state"]],
        aggs=[counter('a="1"'), counter('a="2"'), counter('a="3"'), counter('a="1"')],
    )
    assert redis.hgetall("state") == {b"phase": b"in_progress"}
    assert 0 < redis.ttl("state") <= 60
    assert redis.zrange("inflight:queued", 0, -1) == []
    assert redis.zrange("inflight:in_progress", 0, -1, withscores=True) == [(b"member", 5.0)]
    fields = {k.decode(): int(v) for k, v in redis.hgetall("agg").items()}
    assert fields == {f'a="1"{SEP}v': 2, f'a="2"{SEP}v': 1, f'a="__overflow__"{SEP}v': 1}
    assert redis.hgetall("folded") == {f'family="f"{SEP}v'.encode(): b"1"}
    apply(redis, limit=2, aggs=[counter('a="4"', updates=3)])  # folded: counts the three updates
    assert redis.hget("agg", f'a="__overflow__"{SEP}v') == b"4"
    assert redis.hgetall("folded") == {f'family="f"{SEP}v'.encode(): b"4"}


def test_ledger_apply_guards_the_inflight_gauges_and_records_a_folded_member_in_the_state(redis):
    def entering(n, labels):
        state = f"state:{n}"
        return [state, ["member", f"m{n}"], 60], [
            "inflight:queued", str(n), f"m{n}", "guard:q", labels, f"overflow{n}", 'family="q"', state,
        ]  # fmt: skip

    entries = [entering(1, "r=1"), entering(2, "r=2"), entering(3, "r=3"), entering(4, "r=1")]
    apply(redis, limit=2, states=[e[0] for e in entries], zadd=[e[1] for e in entries])
    assert redis.zrange("inflight:queued", 0, -1) == [b"m1", b"m2", b"overflow3", b"m4"]
    assert redis.smembers("guard:q") == {b"r=1", b"r=2"}
    assert redis.hget("state:3", "member") == b"overflow3"  # so its next move removes what was added
    assert redis.hget("state:4", "member") == b"m4"
    assert redis.hgetall("folded") == {f'family="q"{SEP}v'.encode(): b"1"}


def test_expiry_sweep_counts_entries_whose_state_is_gone_5000_looked_at_per_set_a_call(redis):
    """An entry expires when its state did (by its last write), whatever its score (GitHub's time)."""

    def member(attempt: str) -> str:
        return '["ubuntu-latest"]\x1f' + attempt

    redis.zadd("z:jobs", {member(f"job:{i}:1"): i for i in range(6000)})
    for i in range(1000):  # written lately: in flight, though their scores are old
        redis.set(f"s:job:{i}:1", "state")
    redis.zadd("z:runs", {member("run:1:1"): 1, member("run:2:1"): 1, member("run:3:1"): 10**9})
    redis.set("s:run:1:1", "state")
    sweep = LuaScript("worker", "expiry.sweep")
    args = ["5000", "s:", "\x1f", "100", "expired", "jobs", "100", "expired", "runs"]
    assert sweep(redis, ["z:jobs", "z:runs"], args) == 4000 + 1  # 1,000 alive and 4,000 gone looked at
    assert sweep(redis, ["z:jobs", "z:runs"], args) == 1000
    assert sweep(redis, ["z:jobs", "z:runs"], args) == 0
    assert redis.zcard("z:jobs") == 1000
    assert redis.zrange("z:runs", 0, -1) == [member("run:1:1").encode(), member("run:3:1").encode()]
    assert redis.hgetall("expired") == {b"jobs": b"5000", b"runs": b"1"}


def test_ledger_apply_adds_trace_entries_and_drops_the_oldest_not_being_sent_past_its_bounds(redis):
    outbox = ["ob", "ob:bytes", "ob:sending", "ob:dropped", 3, 1000]
    write = LuaScript("worker", "ledger.write")
    batch = {"limit": 10, "sep": SEP, "at": "at", "states": [], "zrem": [], "zadd": [], "aggs": [],
             "folded": ["folded", "v"], "gate": "", "outbox": outbox}  # fmt: skip
    assert write(redis, (), [json.dumps(batch), "a" * 10, "b" * 10]) == 1
    first = redis.xrange("ob")[0][0]
    redis.set("ob:sending", first)  # a worker is sending the oldest: never dropped
    assert write(redis, (), [json.dumps(batch), "c" * 10, "d" * 10]) == 1  # 4 > 3: one dropped
    assert [fields[b"e"][:1] for _id, fields in redis.xrange("ob")] == [b"a", b"c", b"d"]
    assert redis.hgetall("ob:dropped") == {b"outbox_full": b"1"}
    assert redis.get("ob:bytes") == b"30"
    bigger = {**batch, "outbox": [*outbox[:5], 35]}  # past the bytes bound: down to 30, "a" kept
    assert write(redis, (), [json.dumps(bigger), "e" * 10]) == 1
    assert [fields[b"e"][:1] for _id, fields in redis.xrange("ob")] == [b"a", b"d", b"e"]
    assert redis.hgetall("ob:dropped") == {b"outbox_full": b"2"}


# -- worker/outbox.*.lua -------------------------------------------------------------------------
def test_outbox_delete_counts_what_it_deleted_and_what_it_dropped_once(redis):
    ids = [redis.xadd("ob", {"e": body}) for body in ("aaaa", "bb", "c")]
    redis.set("ob:bytes", 7)
    delete = LuaScript("worker", "outbox.delete")
    keys_ = ["ob", "ob:bytes", "ob:dropped"]
    assert delete(redis, keys_, ["", ids[0], 4]) == 1  # sent
    assert redis.get("ob:bytes") == b"3"
    assert delete(redis, keys_, ["rejected", ids[1], 2, ids[0], 4]) == 1  # the first one is gone already
    assert redis.get("ob:bytes") == b"1"
    assert redis.hgetall("ob:dropped") == {b"rejected": b"1"}
    assert delete(redis, keys_, ["rejected", ids[1], 2]) == 0  # nothing twice
    assert redis.hgetall("ob:dropped") == {b"rejected": b"1"}
    assert redis.xlen("ob") == 1


# -- shared/rqadapter/storage.*.lua ------------------------------------------------------------------
def test_claim_pops_from_the_head_into_the_claims(redis):
    redis.rpush("queue", "j1", "j2", "j3")
    claim = LuaScript("shared.rqadapter", "storage.claim")
    assert claim(redis, ["queue", "claims"], [2, 42]) == [b"j1", b"j2"]
    assert redis.lrange("queue", 0, -1) == [b"j3"]
    assert redis.zrange("claims", 0, -1, withscores=True) == [(b"j1", 42.0), (b"j2", 42.0)]
    assert claim(redis, ["queue", "claims"], [5, 43]) == [b"j3"]
    assert claim(redis, ["queue", "claims"], [5, 44]) == []


def test_reclaim_puts_old_claims_back_in_order_and_skips_deleted_jobs(redis):
    redis.rpush("queue", "waiting")
    redis.zadd("claims", {"a": 1, "b": 2, "gone": 3, "young": 100})
    for job_id in ("a", "b", "young"):
        redis.hset(f"job:{job_id}", "status", "queued")
    reclaim = LuaScript("shared.rqadapter", "storage.reclaim")
    assert reclaim(redis, ["queue", "claims"], [50, "job:"]) == 3
    assert redis.lrange("queue", 0, -1) == [b"a", b"b", b"waiting"]
    assert redis.zrange("claims", 0, -1) == [b"young"]


def test_ledger_apply_pushes_recent_entries_and_keeps_the_newest(redis):
    apply(redis, recent=["recent", "3", "a", "b"])
    apply(redis, recent=["recent", "3", "c", "d"])
    assert redis.lrange("recent", 0, -1) == [b"d", b"c", b"b"]


def test_ledger_reads_summary_counts_each_group_with_its_oldest_across_pages(redis):
    """2,500 members (three pages) in four groups, scores tied across groups: the same counts and
    oldest as the sets read whole and counted here; a missing set is empty."""
    members = {}
    for i in range(2_500):
        group = json.dumps([f"pool-{i % 4}", "", "o/r"])
        members[f"{group}{SEP}job:{i}:1"] = float(1_000 + i // 3)
    redis.zadd("inflight:job:queued", members)
    summary = LuaScript("worker", "ledger_reads.summary")(
        redis, ["inflight:job:queued", "inflight:none"], [SEP]
    )
    whole = redis.zrange("inflight:job:queued", 0, -1, withscores=True)
    expected = Inflight.of_sets([Phase("job", "queued", [m for m, _ in whole], [s for _, s in whole])])
    got = Inflight({("job", "queued"): list(zip(*[iter(summary[0])] * 3, strict=True))}, expected_pages)
    assert got.groups("job", "queued") == expected.groups("job", "queued")
    assert sum(g.attempts for g in got.groups("job", "queued")) == 2_500
    assert summary[1] == []


def expected_pages(*_args):  # the summary alone is under test
    return [], []
