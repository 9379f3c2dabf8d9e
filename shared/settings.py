"""The configuration: every option declared once, as a field of its section's dataclass.

A field's type is the setting's type; ``option(parser, default, help)`` says how a value is parsed
and checked, its default and what it does, and whether a reload applies it (:mod:`shared.options`).
The loader (:mod:`shared.settings_loader`), the environment variables' names and the README's
configuration reference (``python -m shared.settings``) all follow from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_type_hints

from shared.options import (
    DAY,
    DURATION_BUCKETS,
    LAG_BUCKETS,
    QUEUE_BUCKETS,
    RATES_2026,
    Option,
    boolean,
    buckets,
    choice,
    fraction,
    integer,
    label_sets,
    non_negative_number,
    option,
    optional_text,
    options_of,
    positive_number,
    rates,
    reference_markdown,
    secrets,
    text,
    text_list,
    text_mapping,
)
from shared.settings_outbound import GithubSettings, TracesSettings


# fmt: off
@dataclass(frozen=True)
class RedisSettings:  # Where Redis is and how it is reached.
    url: str = option(text, "redis://localhost:6379/0",
        "Redis holding the queue, the redelivery marks, the job and run state and the metric totals; may "
        "carry a password.", secret=True)
    username: str | None = option(optional_text, None, "Redis ACL user (instead of one in redis.url).")
    password: str | None = option(optional_text, None,
        "Redis password (instead of one in redis.url); with _FILE, read from a file.", secret=True)
    tls_ca_file: str | None = option(optional_text, None,
        "PEM CA bundle to verify Redis's certificate (TLS: a rediss:// URL, or Sentinel).")
    tls_cert_file: str | None = option(optional_text, None,
        "PEM client certificate, when Redis asks for one (with redis.tls_key_file).")
    tls_key_file: str | None = option(optional_text, None, "PEM private key of redis.tls_cert_file.")
    sentinels: tuple[str, ...] = option(text_list, (),
        "Redis Sentinel addresses (host:port); when set, the primary is asked of them by "
        "redis.sentinel_master and followed through failovers (redis.url then only gives the database "
        "number).")
    sentinel_master: str = option(text, "mymaster", "The name Sentinel knows the primary by.")
    sentinel_username: str | None = option(optional_text, None, "ACL user for the Sentinels.")
    sentinel_password: str | None = option(optional_text, None,
        "Password for the Sentinels; with _FILE, read from a file.", secret=True)
    min_replicas_ack: int = option(integer(0), 0,
        "The receiver answers 202 only once this many replicas have each batch (Redis WAIT, up to 2 s; else "
        "503): a delivery acknowledged just before the primary dies is on the replica that takes over. 0: "
        "as soon as the primary has it.")
    socket_timeout_seconds: float = option(positive_number, 5.0,
        "Longest wait for any Redis answer (both processes); a command past it fails. The worker's wait for "
        "new batches is cut into 1 s slices below it.")
    connect_timeout_seconds: float = option(positive_number, 2.0, "Longest wait for a connection to Redis.")
    memory_high_water: float = option(fraction(0.5, 0.99), 0.9,
        "The receivers answer 503 once Redis uses this share of its maxmemory (read every 0.5 s), keeping "
        "the rest for the worker, which must write before it can free anything; they accept again 0.05 "
        "below it.")


@dataclass(frozen=True)
class WebhookSettings:  # What a delivery must carry to be taken in.
    secrets: tuple[str, ...] = option(secrets, (),
        "Webhook secrets; a delivery signed with any of them is accepted (rotation). Required.",
        reload=True, secret=True)
    max_body_bytes: int = option(integer(1), 25 * 1024 * 1024,
        "Largest request body accepted; larger gets 413 (GitHub caps payloads at 25 MB).", reload=True)
    dedupe_ttl_seconds: int = option(integer(60), 3 * DAY + DAY // 2,
        "How long a (hook id, delivery id) is remembered to recognise redeliveries, and a completed job's "
        "or run's state kept for late deliveries: GitHub redelivers for 3 days (7 on GitHub Enterprise "
        "Server: raise it with github.redelivery_window_seconds), plus half a day. Must exceed "
        "github.redelivery_window_seconds and github.reconcile_lookback_seconds.", reload=True)


@dataclass(frozen=True)
class ReceiverSettings:  # The receiver's HTTP server and its bounds.
    host: str = option(text, "0.0.0.0", "Address the receiver listens on.")
    port: int = option(integer(0, 65535), 8000,
        "Port of /webhook, /health, /ready and the receiver's /metrics.")
    metrics_host: str | None = option(optional_text, None,
        "Address of the receiver's /metrics when served on its own port (default: receiver.host).")
    metrics_port: int = option(integer(0, 65535), 0,
        "Serve the receiver's /metrics on this port instead of the webhook port (0: the webhook port), so "
        "it can stay off the public network.")
    max_batch: int = option(integer(1, 10_000), 100,
        "Group commit: at most this many concurrent deliveries are written to Redis (and queued as one RQ "
        "job) together.")
    limit_concurrency: int = option(integer(1), 1000,
        "Connections kept at once (fewer if the descriptor limit is lower): past it, the connection that "
        "waited longest without a request in progress is closed, and when every one is being answered the "
        "receiver answers 503 at once.")
    body_timeout_seconds: float = option(positive_number, 10.0,
        "A request must arrive whole, head and body, within this long of its first byte (of the connection, "
        "for its first request); past it the connection is closed (slow_request). GitHub sends a delivery "
        "at once.")
    max_header_bytes: int = option(integer(1024, 1024 * 1024), 16 * 1024,
        "Longest request head (request line and headers) accepted; past it the receiver answers 431 and "
        "closes the connection before reading more. GitHub's heads are about 2 KB.")
    keep_alive_seconds: int = option(integer(1), 5, "How long an idle keep-alive connection is kept open.")
    tls_certfile: str | None = option(optional_text, None, "PEM certificate: serve HTTPS when set.")
    tls_keyfile: str | None = option(optional_text, None, "PEM private key for receiver.tls_certfile.")
    deadline_seconds: float = option(positive_number, 8.0,
        "Longest time a delivery waits for Redis before it is answered 503 (GitHub gives up at 10 s).",
        reload=True)
    graceful_shutdown_seconds: float = option(positive_number, 10.0,
        "On SIGTERM, the longest time until the receiver exits, whatever Redis does: requests in flight get "
        "until 1 s before it; one still unanswered then is failed for GitHub, which redelivers it. Keep it "
        "below the orchestrator's grace (compose 20 s here, Kubernetes 30 s).")


@dataclass(frozen=True)
class WorkerSettings:  # The worker's HTTP server, batches, leases and stop.
    host: str = option(text, "0.0.0.0", "Address of the worker's /metrics and /health.")
    port: int = option(integer(0, 65535), 9100, "Port of the worker's /metrics and /health.")
    allowed_hosts: tuple[str, ...] = option(text_list, (),
        "Host names the worker's HTTP server answers (name, or name:port), besides IP addresses; others get "
        "400. Empty: any. Set it to the names the worker is reached by, so a page in a user's browser "
        "cannot read the API through DNS rebinding.")
    max_connections: int = option(integer(1), 100,
        "Connections the worker's HTTP server keeps at once (fewer if the descriptor limit is lower); past "
        "it the one that waited longest without a request in progress is closed.")
    body_timeout_seconds: float = option(positive_number, 10.0,
        "A request to the worker must arrive whole within this long of its first byte (of the connection, "
        "for its first request); past it the connection is closed.")
    api_cache_seconds: float = option(non_negative_number, 1.0,
        "The in-flight sets are read from Redis at most once per this long, for every API request and "
        "scrape together (0: at each).")
    api_concurrency: int = option(integer(1, 1000), 4,
        "API requests answered at once; past it the API answers 429.")
    scrape_timeout_seconds: float = option(positive_number, 2.0,
        "Longest time /metrics waits for Redis; past it the answer has the process's own families and "
        "redis_up 0.")
    stall_seconds: int = option(integer(5), 120,
        "/health fails when deliveries wait and none was applied for this long (a wedged worker is "
        "restarted).")
    lease_seconds: int = option(integer(3), 10,
        "A worker renews its hold on the batches it is applying every third of this; a dead worker's jobs "
        "go back to the queue this long after its last renewal.")
    max_scrape_bytes: int = option(integer(1024 * 1024), 64 * 1024 * 1024,
        "Most bytes one /metrics scrape renders (before gzip); past it the remaining series are left out "
        "and the scrape says so (scrape_truncated 1).")
    recent_failures: int = option(integer(1, 10_000), 200,
        "Completed jobs that did not succeed kept for /api/v1/recent and the page (the newest).")
    max_batch: int = option(integer(1, 10_000), 500,
        "Deliveries the worker applies together: with the batch in hand it takes further queued jobs until "
        "their deliveries reach this many (RQ's bookkeeping costs about 25 round trips per job).")
    stop_grace_seconds: float = option(positive_number, 10.0,
        "On SIGTERM, the longest time until the worker exits, whatever Redis does (an outage, a failover): "
        "the batch in hand is applied or abandoned, and an abandoned one goes back to the queue when its "
        "lease lapses. Keep it below the orchestrator's grace.")


@dataclass(frozen=True)
class StateSettings:  # How long in-flight states are kept.
    job_ttl_seconds: int = option(integer(60), 7 * DAY,
        "How long a job may stay queued or in progress with no delivery before it counts as expired and its "
        "state goes (the sweeper goes by when the state was last written, never by GitHub's timestamps; "
        "self-hosted jobs can run 5 days). A completed job's state is kept as long as the marks.")
    run_ttl_seconds: int = option(integer(60), 36 * DAY,
        "The same for workflow run attempts (a run can last 35 days).")
    sweep_interval_seconds: int = option(integer(1), 60,
        "How often a worker looks for in-flight entries past their TTL and counts them as expired.")


@dataclass(frozen=True)
class QueueSettings:  # The RQ queue between the receivers and the workers.
    name: str = option(text, "gha-exporter", "RQ queue the receiver fills and the worker drains.")
    job_timeout_seconds: int = option(integer(1), 60,
        "Longest time one batch of deliveries may run: past it, it fails and is retried. A "
        "worker killed mid-job is another matter: its job goes back to the queue about worker.lease_seconds "
        "later.")
    result_ttl_seconds: int = option(integer(1), 60,
        "How long RQ keeps a finished job (at least 1: 0 makes a retried abandoned job run twice).")
    failure_ttl_seconds: int = option(integer(1), 7 * 24 * 3600,
        "How long RQ keeps a failed job for inspection (RQ's default is a year).")
    max_retries: int = option(integer(1), 5,
        "How often a failed or abandoned job is retried before it is left in the failed registry.")
    compress_bodies: bool = option(boolean, True,
        "The receiver keeps each queued body LZ4-compressed: 3.2 KB of Redis per queued 12 KB delivery "
        "instead of 12.8 KB, for about 10 us of CPU (and fewer bytes to send: faster at 64 connections); "
        "the worker reads either form.")
    maintenance_interval_seconds: int = option(integer(1), 15,
        "How often RQ's own upkeep (its registries' cleanup) runs in each worker. Jobs a dead worker held "
        "are put back by the sweeper every 2 s, not by this.")


@dataclass(frozen=True)
class MetricsSettings:  # What the metrics carry and the bounds on them.
    prefix: str = option(text, "github_actions_", "Prefix of every metric name.")
    duration_buckets: tuple[float, ...] = option(buckets, DURATION_BUCKETS,
        "Histogram buckets (seconds) of run and job durations.")
    queue_buckets: tuple[float, ...] = option(buckets, QUEUE_BUCKETS,
        "Histogram buckets (seconds) of job queue time.")
    lag_buckets: tuple[float, ...] = option(buckets, LAG_BUCKETS,
        "Histogram buckets (seconds) of receiver-to-worker processing lag.")
    labels: dict[str, tuple[str, ...]] = option(label_sets, {},
        "Per metric family (e.g. job_run_total), the label names it carries; unset families keep their "
        "defaults.")
    max_series_per_family: int = option(integer(1), 10_000,
        "Cardinality guard: label sets per family past this go to one `__overflow__` set.")
    max_label_value_bytes: int = option(integer(32, 65536), 256,
        "Longest label value, in UTF-8 bytes: a longer one (a job, workflow or repository name, a runner "
        "label) is cut and ends in `…[` and 8 hex digits of its hash `]`, and counted in "
        "label_values_truncated_total.")
    max_job_seconds: int = option(integer(60), 5 * DAY,
        "Longest plausible job (GitHub stops a job after 5 days on a self-hosted runner): a job whose "
        "completed_at - started_at is longer is refused as implausible_duration.")
    max_run_seconds: int = option(integer(60), 35 * DAY,
        "Longest plausible run (GitHub's limit: 35 days, waits and approvals included), and so the longest "
        "plausible queue time: longer ones are refused as implausible_duration or implausible_queue_time.")
    clock_skew_seconds: int = option(integer(0), 300,
        "How far an end may precede its start before a duration counts as implausible (shorter negative "
        "durations count as 0).")
    branches: tuple[str, ...] = option(text_list, (),
        "Branch label: names matching one of these globs are kept, others become `other`; empty: `default` "
        "for the repository's default branch, else `other`.")
    inflight_repository_label: bool = option(boolean, False,
        "Add `repository` to the in-flight job and run gauges.")
    step_metrics: bool = option(boolean, False,
        "Also count steps: step conclusions and durations by job and step name.")
    exemplars: bool = option(boolean, True,
        "Keep, per bucket of the job duration, job queue time and run duration histograms, the newest job "
        "(`run_id`, `job_id`) or run (`run_id`) observed there, shown as an exemplar when the scraper asks "
        "for OpenMetrics.")


@dataclass(frozen=True)
class CostSettings:  # The list prices a job's cost is computed with.
    effective_date: str = option(text, "2026-01-01",
        "Date from which `cost.rates` apply; shown on the rate metric.")
    rates: dict[str, float] = option(rates, RATES_2026,
        "USD per minute by runner SKU; entries given here replace GitHub's list prices of 2026-01-01 one by "
        "one.")
    label_skus: dict[str, str] = option(text_mapping, {},
        "Runner label -> SKU for larger runners, whose labels are names their admins chose (e.g. "
        "`ubuntu-22.04-16core: linux_16_core`).")
    self_hosted_rate: float = option(non_negative_number, 0.0,
        "USD per minute for self-hosted runners (GitHub's announced $0.002 fee is postponed).")
    self_hosted_groups: tuple[str, ...] = option(text_list, (),
        "Runner groups whose jobs are self-hosted even without the `self-hosted` label.")


@dataclass(frozen=True)
class LogSettings:  # What is logged and how.
    level: str = option(choice("trace", "debug", "info", "success", "warning", "error", "critical"), "info",
        "Least severe log level written.", reload=True)
    format: str = option(choice("text", "json"), "text",
        "`json`: one JSON object per line (production); `text`: readable lines.", reload=True)
# fmt: on


@dataclass(frozen=True)
class Settings:
    redis: RedisSettings
    webhook: WebhookSettings
    receiver: ReceiverSettings
    worker: WorkerSettings
    state: StateSettings
    queue: QueueSettings
    metrics: MetricsSettings
    cost: CostSettings
    github: GithubSettings
    traces: TracesSettings
    log: LogSettings
    config_file: str | None = None

    def secret_values(self) -> tuple[str, ...]:
        """Everything that must never reach a log line."""
        passwords = (
            self.redis.password, self.redis.sentinel_password, self.github.token, self.github.app_private_key,
            self.traces.headers, *self.traces.header_values(),
        )  # fmt: skip
        return self.webhook.secrets + tuple(p for p in passwords if p)


SECTIONS: dict[str, type[Any]] = get_type_hints(Settings)
del SECTIONS["config_file"]
OPTIONS: tuple[Option, ...] = tuple(each for name, cls in SECTIONS.items() for each in options_of(name, cls))


if __name__ == "__main__":
    print(reference_markdown(OPTIONS))  # noqa: T201 - a command-line tool
