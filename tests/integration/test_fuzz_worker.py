"""Valid deliveries of hostile payloads, generated: the worker never crashes, every one is counted
exactly once, and /metrics can always be rendered."""

import json
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.envelope import Envelope
from tests.corpus import KRZKO, load

pytestmark = pytest.mark.integration
REAL = load(KRZKO.format("job", "9_workflow_job_completed")).data
REAL_RUN = load(KRZKO.format("run", "8_workflow_run_completed")).data

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=50),
    st.sampled_from(
        ["", "\u0000", "é", "🚀", "a\nb", 'q"uote', "2023-10-13T10:11:27Z", "not a time", "\ud800"]
    ),
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
    item = Envelope(event, str(uuid.uuid4()), "fuzz", 1.0, body).to_dict()
    exporter.processor.process_batch([item])
    assert exporter.total("webhook_deliveries_processed_total") == before + 1
    assert exporter.families()  # every label value it stored can be exposed, and parsed back
