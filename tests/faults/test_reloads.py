"""Reloads of a configuration file that would leave the receivers unable to do their job, under load."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.cluster import Cluster
from bench.load import SECRET
from tests.faults.harness import Accounting, check, play_in_background, process_metric

pytestmark = pytest.mark.faults

CONFIG = f"webhook:\n  secrets: [{SECRET}, an-older-secret]\nlog:\n  level: info\n  format: json\n"
STEPS = [  # (what is written, refused)
    ("log:\n  level: info\n  format: json\n", True),  # the webhook section left out
    ("", True),  # truncated to nothing in place
    (CONFIG[: CONFIG.index("an-older")], True),  # cut in the middle of the secrets
    (f"webhook:\n  secrets: [{SECRET}]\nlog:\n  level: info\n  format: json\n", False),  # one secret removed
    (CONFIG, False),
]


def test_bad_reloads_under_load_never_stop_intake(tmp_path: Path, accounts: list[Accounting]):
    """Expected: every configuration file that would leave the receivers without a secret (no webhook
    section, an empty file, a file cut short) is refused and counted, the running configuration
    kept: not one delivery is answered 401; removing one of two secrets is taken."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    cluster = Cluster(tmp_path)
    cluster.config_file = config
    cluster.start()
    try:
        sends, stats, player = play_in_background(cluster, 200)  # 1,800 deliveries, 36 s
        for content, _refused in STEPS:
            time.sleep(4)
            with config.open("w") as file:  # in place, as an editor or `>` would
                file.write(content)
        player.join()
        failures = [
            process_metric(cluster, name, "config_reload_failures_total")
            for name in ("receiver-0", "receiver-1", "worker-0")
        ]
        check(
            cluster,
            accounts,
            "19 bad reloads under load",
            sends,
            stats,
            200,
            notes=f"reloads refused (receivers, worker): {[int(f) for f in failures]}",
        )
        assert stats.statuses["401"] == 0
        refused = sum(refused for _content, refused in STEPS)
        assert min(failures[:2]) >= refused
        assert cluster.logs("receiver-0").count("reload refused") >= refused
    finally:
        cluster.shutdown()
