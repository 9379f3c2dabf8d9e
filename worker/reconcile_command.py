"""``python -m worker reconcile [--since DURATION] [--dry-run] [--config FILE]``: one reconciliation
pass now, whatever the schedule, printing per hook what it found and what it redelivered (or, with
``--dry-run``, would)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from shared.cli import start
from shared.logs import Redactor
from shared.marks import DeliveryMarks
from shared.redis_connect import connect
from worker.metrics import ReconcileMetrics
from worker.reconcile import HookReport, Reconciler

DURATION = re.compile(r"(\d+)([smhd]?)")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``6h``, ``2d``: seconds."""
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m, 6h or 2d")
    return int(match.group(1)) * UNITS[match.group(2)]


def describe(report: HookReport, dry_run: bool) -> str:
    since = datetime.fromtimestamp(report.since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    head = f"{report.hook}: {report.attempts} attempts since {since}"
    if report.error is not None:
        return f"{head}; stopped: {report.error}"
    verb = "would redeliver" if dry_run else "redelivered"
    return (
        f"{head}; {verb} {report.count('redeliver')}"
        f" ({report.count('redeliver', 'failed')} failed, {report.count('redeliver', 'missing')} missing);"
        f" not redelivered: {report.count('too_old')} too old, {report.count('exhausted')} exhausted"
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="worker reconcile", description=__doc__)
    parser.add_argument("--config", help="YAML configuration file (default: $GHA_EXPORTER_CONFIG)")
    parser.add_argument("--since", type=duration, help="how far back to read (default: since the last pass)")
    parser.add_argument("--dry-run", action="store_true", help="find, but ask GitHub for nothing")
    args = parser.parse_args(argv)
    holder = start("worker", args.config)
    if holder is None:
        return 2
    settings = holder.current
    if not settings.github.hooks:
        print("github.hooks is empty: there is nothing to reconcile", file=sys.stderr)  # noqa: T201
        return 2
    connection = connect(settings.redis)
    try:
        marks = DeliveryMarks(connection, lambda: settings.webhook.dedupe_ttl_seconds)
        metrics = ReconcileMetrics(CollectorRegistry(), settings.metrics.prefix)
        reconciler = Reconciler(connection, marks, lambda: settings.github, metrics)
        since = None if args.since is None else time.time() - args.since
        report = reconciler.run_pass(since=since, dry_run=args.dry_run)
    finally:
        connection.close()
    redactor = Redactor(settings.secret_values())  # what GitHub echoes (a token) is masked as in the logs
    for hook in report.hooks:
        print(redactor.text(describe(hook, args.dry_run)))  # noqa: T201 - the command's output
    return 0 if report.result == "ok" else 1
