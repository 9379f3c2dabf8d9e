"""A batch's increments of one series are written as one, standing for as many updates."""

from worker.metrics import Update
from worker.write_encoding import merged_increments


def test_whole_increments_of_a_series_merge_at_the_first_place_and_others_keep_their_order():
    processed = ("workflow_job", "changed")
    updates = [
        Update("webhook_deliveries_processed_total", processed, "inc", 1),
        Update("job_run_duration_seconds", ("o/r",), "observe", 12.0, at=5.0, exemplar='job_id="1"'),
        Update("job_cost_usd_total", ("o/r",), "inc", 0.008),
        Update("webhook_deliveries_processed_total", ("workflow_job", "unchanged"), "inc", 1),
        Update("webhook_deliveries_processed_total", processed, "inc", 1),
        Update("job_cost_usd_total", ("o/r",), "inc", 0.008),
        Update("webhook_deliveries_processed_total", processed, "inc", 2),
    ]
    assert merged_increments(updates) == [
        (Update("webhook_deliveries_processed_total", processed, "inc", 4), 3),
        (updates[1], 1),
        (updates[2], 1),  # costs are fractions: left apart, so totals do not depend on the batching
        (updates[3], 1),
        (updates[5], 1),
    ]
