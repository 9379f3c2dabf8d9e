"""Build the Grafana dashboard (``task dashboard`` writes ``deploy/grafana/dashboards/gha-exporter.json``).

Written as code so every panel's query stays readable and reviewable; a test checks that the
committed JSON is this script's output and that every query names metrics the exporter exposes.
Counters read from Redis are identical on every worker replica, so queries take ``max`` over
replicas before summing (``sum`` alone would multiply them).
"""

from __future__ import annotations

import json
import sys
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
REPO = 'repository=~"$repository"'
COST = "github_actions_job_cost_usd_total"
RERUNS = REPO + ',attempt="rerun"'
EXEMPLAR_HINT = "Stars: the newest {} of each bucket; hover for its ids, click for its page on GitHub."


def replicas(expr: str) -> str:
    """One value per series whatever the number of worker replicas scraped."""
    return f"max without (instance, pod) ({expr})"


def panel(
    title: str,
    targets: list[tuple[str, str]],
    grid: tuple[int, int, int, int],
    *,
    kind: str = "timeseries",
    unit: str = "short",
    description: str = "",
    exemplars: bool = False,
) -> dict[str, Any]:
    """A panel; with ``exemplars``, its queries ask for the exemplars of the histograms they read
    (the stars: the newest job or run of a bucket, linked to GitHub by the data source's exemplar
    links, see deploy/grafana/provisioning/datasources)."""
    x, y, w, h = grid
    extra = {"exemplar": True} if exemplars else {}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
            | extra
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def row(title: str, y: int) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}


def increase(metric: str, selector: str = REPO, window: str = "$__rate_interval") -> str:
    return replicas(f"increase({metric}{{{selector}}}[{window}])")


def quantiles(metric: str, by: str, selector: str = REPO) -> list[tuple[str, str]]:
    rate = replicas(f"rate({metric}_bucket{{{selector}}}[$__rate_interval])")
    return [
        (f"histogram_quantile({q}, sum by ({by}, le) ({rate}))", f"p{int(q * 100)} {{{{{by}}}}}")
        for q in (0.5, 0.95)
    ]


def success_rate(metric: str, by: str) -> str:
    done = replicas(f'increase({metric}{{{REPO},conclusion!~"skipped|cancelled"}}[$__rate_interval])')
    ok = replicas(f'increase({metric}{{{REPO},conclusion="success"}}[$__rate_interval])')
    return f"sum by ({by}) ({ok}) / sum by ({by}) ({done})"


def panels() -> list[dict[str, Any]]:
    jobs_now = "sum by (runs_on) (max without (instance, pod) (github_actions_jobs_{}))"
    return [
        row("Workflows and jobs", 0),
        panel(
            "Run success rate",
            [(success_rate("github_actions_workflow_run_total", "workflow"), "{{workflow}}")],
            (0, 1, 12, 8),
            unit="percentunit",
            description="Successful runs among finished runs (skipped and cancelled left out), by workflow.",
        ),
        panel(
            "Job success rate",
            [(success_rate("github_actions_job_run_total", "repository"), "{{repository}}")],
            (12, 1, 12, 8),
            unit="percentunit",
            description="Successful jobs among finished jobs, by repository.",
        ),
        panel(
            "Run duration p50 / p95",
            quantiles("github_actions_workflow_run_duration_seconds", "workflow"),
            (0, 9, 12, 8),
            unit="s",
            description=EXEMPLAR_HINT.format("run"),
            exemplars=True,
        ),
        panel(
            "Job duration p50 / p95",
            quantiles("github_actions_job_run_duration_seconds", "job"),
            (12, 9, 12, 8),
            unit="s",
            description=EXEMPLAR_HINT.format("job"),
            exemplars=True,
        ),
        panel(
            "Queue time p50 / p95 by runner label",
            quantiles("github_actions_job_queue_duration_seconds", "runs_on"),
            (0, 17, 12, 8),
            unit="s",
            description="How long jobs waited for a runner, by runs-on labels. "
            + EXEMPLAR_HINT.format("job"),
            exemplars=True,
        ),
        panel(
            "Queue time p95 by runner group",
            quantiles("github_actions_job_queue_duration_seconds", "runner_group")[1:],
            (12, 17, 12, 8),
            unit="s",
            description=EXEMPLAR_HINT.format("job"),
            exemplars=True,
        ),
        panel(
            "Jobs queued and running now",
            [
                (jobs_now.format("queued"), "queued {{runs_on}}"),
                (jobs_now.format("in_progress"), "running {{runs_on}}"),
                (jobs_now.format("waiting"), "waiting for approval {{runs_on}}"),
            ],
            (0, 25, 12, 8),
        ),
        panel(
            "Oldest queued job",
            [(replicas("github_actions_oldest_queued_job_age_seconds"), "{{runs_on}}")],
            (12, 25, 12, 8),
            unit="s",
            description="Age of the oldest job still waiting for a runner.",
        ),
        panel(
            "Cost per repository (last 24 h)",
            [
                (
                    f"sort_desc(sum by (repository) ({increase(COST, window='1d')}))",
                    "{{repository}}",
                )
            ],
            (0, 33, 12, 8),
            kind="bargauge",
            unit="currencyUSD",
            description="List-price estimate: billable minutes times runner rates, not the invoice.",
        ),
        panel(
            "Cost, rolling 24 h, by runner class",
            [
                (
                    f"sum by (runner_class) ({increase('github_actions_job_cost_usd_total', window='1d')})",
                    "{{runner_class}}",
                )
            ],
            (12, 33, 12, 8),
            unit="currencyUSD",
        ),
        panel(
            "Re-runs",
            [
                (
                    f"sum by (workflow) ({increase('github_actions_workflow_run_total', RERUNS)})",
                    "{{workflow}}",
                )
            ],
            (0, 41, 12, 8),
            description="Workflow run attempts after the first.",
        ),
        panel(
            "Billable minutes by runner class",
            [
                (
                    f"sum by (runner_class) ({increase('github_actions_job_billable_minutes_total')})",
                    "{{runner_class}}",
                )
            ],
            (12, 41, 12, 8),
        ),
        row("Exporter health", 49),
        panel(
            "Deliveries by outcome",
            [
                (
                    "sum by (outcome) (rate(github_actions_webhook_deliveries_total[$__rate_interval]))",
                    "{{outcome}}",
                )
            ],
            (0, 50, 8, 8),
            unit="reqps",
        ),
        panel(
            "Rejections by reason",
            [
                (
                    "sum by (reason) (rate(github_actions_webhook_rejections_total[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            (8, 50, 8, 8),
            unit="reqps",
        ),
        panel(
            "Processing errors",
            [
                (
                    "sum by (event, reason)"
                    " (rate(github_actions_webhook_processing_errors_total[$__rate_interval]))",
                    "{{event}} {{reason}}",
                )
            ],
            (16, 50, 8, 8),
            unit="reqps",
        ),
        panel(
            "Processing lag p95",
            [
                (
                    "histogram_quantile(0.95, sum by (le)"
                    " (rate(github_actions_webhook_processing_lag_seconds_bucket[$__rate_interval])))",
                    "p95",
                )
            ],
            (0, 58, 8, 8),
            unit="s",
            description="From the receiver accepting a delivery to its metrics moving.",
        ),
        panel(
            "Queue depth",
            [(replicas("github_actions_queue_batches"), "{{state}}")],
            (8, 58, 8, 8),
            description="Batches (of one or more deliveries) by state.",
        ),
        panel(
            "Targets up, Redis readable",
            [
                ('up{job=~"gha-exporter.*"}', "{{job}} {{instance}}"),
                ("github_actions_redis_up", "redis readable {{instance}}"),
            ],
            (16, 58, 8, 8),
        ),
        panel(
            "Expired state and folded series",
            [
                (
                    f"sum by (kind, phase) ({increase('github_actions_state_expired_total', '')})",
                    "expired {{kind}} {{phase}}",
                ),
                (
                    f"sum by (family) ({increase('github_actions_series_folded_total', '')})",
                    "folded {{family}}",
                ),
            ],
            (0, 66, 12, 8),
        ),
        panel(
            "Enqueue failures (503)",
            [
                (
                    "sum (increase(github_actions_webhook_enqueue_failures_total[$__rate_interval]))",
                    "503 answers",
                )
            ],
            (12, 66, 12, 8),
        ),
        row("Reconciliation with GitHub (github.hooks)", 74),
        panel(
            "Redeliveries asked for",
            [
                (
                    "sum by (hook, reason)"
                    " (increase(github_actions_reconcile_redeliveries_total[$__rate_interval]))",
                    "{{hook}} {{reason}}",
                ),
                (
                    "sum by (hook, reason)"
                    " (increase(github_actions_reconcile_unrecoverable_total[$__rate_interval]))",
                    "unrecoverable {{hook}} {{reason}}",
                ),
            ],
            (0, 75, 8, 8),
            description="Deliveries GitHub failed to make, or that Redis lost, asked for again;"
            " and those too old or retried too often to be.",
        ),
        panel(
            "Since the last successful pass",
            [
                (
                    "time() - max by (hook) (github_actions_reconcile_last_success_timestamp_seconds)",
                    "{{hook}}",
                )
            ],
            (8, 75, 8, 8),
            unit="s",
            description="More than a few github.reconcile_interval_seconds: see the API errors.",
        ),
        panel(
            "GitHub API errors and rate limit left",
            [
                (
                    "sum by (status) (increase(github_actions_github_api_errors_total[$__rate_interval]))",
                    "errors {{status}}",
                ),
                ("min (github_actions_github_rate_limit_remaining)", "rate limit left"),
            ],
            (16, 75, 8, 8),
        ),
        row("Traces (traces.otlp_endpoint)", 83),
        panel(
            "Spans sent and export errors",
            [
                ("sum (rate(github_actions_traces_exported_total[$__rate_interval]))", "spans sent/s"),
                (
                    "sum by (status) (increase(github_actions_traces_export_errors_total[$__rate_interval]))",
                    "errors {{status}}",
                ),
            ],
            (0, 84, 8, 8),
            description="Spans the collector took, and failed export requests by status (the spans stay"
            " in the outbox and are sent again).",
        ),
        panel(
            "Waiting in the outbox",
            [(replicas("github_actions_traces_pending"), "jobs and runs waiting")],
            (8, 84, 8, 8),
            description="Completed jobs and runs whose spans wait; past traces.max_pending the oldest"
            " are dropped.",
        ),
        panel(
            "Dropped",
            [
                (
                    replicas(
                        "sum by (reason) (increase(github_actions_traces_dropped_total[$__rate_interval]))"
                    ),
                    "{{reason}}",
                )
            ],
            (16, 84, 8, 8),
            description="outbox_full: the outbox reached its bound (a long collector outage);"
            " rejected: the collector refused them.",
        ),
        row("Runners beside the queue (busy from the webhooks; the rest with github.runners)", 92),
        panel(
            "Runners by state",
            [
                ("sum by (state) (" + replicas("github_actions_runners") + ")", "{{state}} (polled)"),
                ("sum (" + replicas("github_actions_runners_busy") + ")", "busy (webhooks)"),
            ],
            (0, 93, 8, 8),
            description="Polled runners idle, busy and offline (github.runners), and the self-hosted"
            " runners the webhooks say are busy now (always on).",
        ),
        panel(
            "Queue time p95 and waiting jobs per label set",
            [
                (
                    "histogram_quantile(0.95, sum by (runs_on, le) ("
                    + replicas("rate(github_actions_job_queue_duration_seconds_bucket[$__rate_interval])")
                    + "))",
                    "p95 wait {{runs_on}}",
                ),
            ],
            (8, 93, 8, 8),
            unit="s",
            description="How long jobs waited for a runner, by the labels they asked for: read beside"
            " the next panel.",
        ),
        panel(
            "Jobs no runner can take, and saturated label sets",
            [
                (replicas("github_actions_jobs_queued_unmatched") + " > 0", "no runner has {{runs_on}}"),
                (replicas("github_actions_jobs_queued_saturated") + " > 0", "all busy: {{runs_on}}"),
            ],
            (16, 93, 8, 8),
            description="Queued jobs whose labels no online runner has (a typo in runs-on, a dead pool),"
            " and those whose matching runners are all busy (add runners).",
        ),
    ]


def dashboard() -> dict[str, Any]:
    return {
        "uid": "gha-exporter",
        "title": "GitHub Actions (gha-exporter)",
        "tags": ["github-actions", "ci"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
                {
                    "name": "repository",
                    "type": "query",
                    "label": "Repository",
                    "datasource": DATASOURCE,
                    "query": {
                        "query": "label_values(github_actions_job_run_total, repository)",
                        "refId": "repos",
                    },
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                },
            ]
        },
        "panels": [dict(p, id=i + 1) for i, p in enumerate(panels())],
    }


if __name__ == "__main__":
    json.dump(dashboard(), sys.stdout, indent=2)
    sys.stdout.write("\n")
