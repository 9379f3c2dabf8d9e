"""What a batch's write hands the apply script: the batch's JSON and each series' label text."""

import json

from worker import codec, write_encoding
from worker.metrics import LabelPolicy, Update
from worker.write_encoding import WriteEncoder, batch_json

PROCESSED = "webhook_deliveries_processed_total"


def test_the_batch_json_is_what_json_writes_with_non_ascii_text():
    series = ["k", "", 'repository="o/ré\\"po"', [["value", "f", "1.0"]], 3]
    batch = {"limit": 100, "sep": codec.SEPARATOR, "aggs": [series]}
    assert json.loads(batch_json(batch)) == batch


def test_an_integer_past_64_bits_is_written_by_json_instead():
    batch = {"aggs": [], "count": 2**70}
    assert json.loads(batch_json(batch)) == batch


def test_label_texts_kept_per_series_stay_right_past_the_bound(make_settings, monkeypatch):
    monkeypatch.setattr(write_encoding, "MAX_KEPT_LABEL_TEXTS", 2)
    policy = LabelPolicy(make_settings().metrics)
    encoder = WriteEncoder(policy, settled_ttl=lambda: 60, job_ttl=60, run_ttl=60, recent=200)
    for labels in [("workflow_job", "changed"), ("run", 'a"b'), ("x", "y"), ("workflow_job", "changed")]:
        text = encoder._encode(Update(PROCESSED, labels, "inc", 1))[2]
        assert text == codec.label_text(policy.names[PROCESSED], labels)
    assert len(encoder._label_texts) <= 2
