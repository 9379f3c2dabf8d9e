"""Valid deliveries of hostile payloads, generated: the worker never crashes, every one is counted
exactly once, and /metrics can always be rendered."""

import json
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.corpus import KRZKO, accepted, load

pytestmark = pytest.mark.integration
REAL = load(KRZKO.format("job", "9_workflow_job_completed")).data
REAL_RUN = load(KRZKO.format("run", "8_workflow_run_completed")).data

EXTREME_TIMES = [
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00+14:00", "2023-10-13T10:11:27-12:00",
    "2023-10-19T10:12:08Z", "2023-10-13T10:01:52Z", "2023-10-13T10:11:52.999999Z",
]  # fmt: skip
HUGE_TEXTS = ["x" * 20_000, "𝄞" * 5_000, "é" * 300, "a" * 257]
TIME_FIELDS = ["created_at", "started_at", "completed_at", "run_started_at", "updated_at"]
LABEL_BYTES = 256  # metrics.max_label_value_bytes, default
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=50),
    st.sampled_from(
        ["", "\u0000", "é", "🚀", "a\nb", 'q"uote', "2023-10-13T10:11:27Z", "not a time", "\ud800"]
    ),
    st.sampled_from(EXTREME_TIMES),
    st.sampled_from(HUGE_TEXTS),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
JOB_FIELDS = [
    "id", "run_id", "run_attempt", "name", "workflow_name", "status", "conclusion", "labels", "runner_name",
    "runner_group_name", "created_at", "started_at", "completed_at", "steps", "head_branch",
]  # fmt: skip
RUN_FIELDS = ["id", "run_attempt", "name", "event", "status", "conclusion", "created_at", "run_started_at",
              "updated_at", "head_branch"]  # fmt: skip


@st.composite
def payloads(draw):
    """A real payload with some fields replaced by anything, or something else altogether."""
    kind = draw(st.sampled_from(["job", "run", "raw", "deep"]))
    if kind == "raw":
        return "workflow_job", json.dumps(draw(json_values))
    if kind == "deep":
        depth = draw(st.integers(1, 5000))
        return "workflow_run", "[" * depth + "]" * depth
    data = json.loads(json.dumps(REAL if kind == "job" else REAL_RUN))
    inner, fields = (
        (data["workflow_job"], JOB_FIELDS) if kind == "job" else (data["workflow_run"], RUN_FIELDS)
    )
    for field in draw(st.lists(st.sampled_from(fields), max_size=4)):
        inner[field] = draw(json_values)
    if draw(st.booleans()):
        data[draw(st.sampled_from(["action", "repository"]))] = draw(json_values)
    if draw(st.booleans()):
        data["repository"] = {"full_name": draw(st.text(max_size=30)), "private": draw(scalars)}
    if kind == "job" and draw(st.booleans()):  # many and huge runner labels
        inner["labels"] = draw(st.lists(st.sampled_from(["self-hosted", "gpu", *HUGE_TEXTS]), max_size=300))
    if draw(st.booleans()):  # timestamps no job can have, or only just
        for field in draw(st.lists(st.sampled_from(TIME_FIELDS), max_size=3)):
            inner[field] = draw(st.sampled_from(EXTREME_TIMES))
    return ("workflow_job" if kind == "job" else "workflow_run"), json.dumps(data)


def with_job_name(name: str) -> tuple[str, str]:
    data = json.loads(json.dumps(REAL))
    data["workflow_job"]["name"] = name
    return "workflow_job", json.dumps(data)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads())
@example(payload=with_job_name("\ud800"))  # a lone surrogate, spelled as a JSON escape, once broke /metrics
@example(payload=with_job_name('new\nline "quoted" \\ back'))
def test_no_payload_crashes_the_worker_and_each_is_counted_once(exporter, payload):
    event, body = payload
    before = exporter.total("webhook_deliveries_processed_total")
    exporter.processor.process_batch(
        exporter.queued(accepted(event, str(uuid.uuid4()), body.encode(), "fuzz", 1.0))
    )
    # every label value it stored can be exposed, and parsed back
    samples = [sample for family in exporter.families() for sample in family.samples]
    totals = {name: sum(s.value for s in samples if s.name == exporter.prefix + name)
              for name in ("webhook_deliveries_processed_total", "job_billable_minutes_total")}  # fmt: skip
    assert totals["webhook_deliveries_processed_total"] == before + 1
    for sample in samples:
        assert all(len(v.encode()) <= LABEL_BYTES for v in sample.labels.values()), sample.name
    # no job lasts more than 5 days, so no delivery bills more than 7,200 minutes
    assert totals["job_billable_minutes_total"] <= 7_200 * (before + 1)
