"""Every configuration key: its type, default, whether it reloads without a restart, and what it does.

One table, read by the settings loader (validation, defaults) and by the README's configuration
reference (``python -m shared.options`` prints it as Markdown), so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "GHA_EXPORTER"

DURATION_BUCKETS = (
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0,
    2700.0, 3600.0, 5400.0, 7200.0, 10800.0, 14400.0, 21600.0, 43200.0,
)  # fmt: skip
QUEUE_BUCKETS = (
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
)  # fmt: skip
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

DAY = 24 * 3600

# GitHub's per-minute list prices (USD) effective 2026-01-01, by SKU (docs: actions-runner-pricing).
RATES_2026 = {
    "linux_slim": 0.002, "linux": 0.006, "windows": 0.010, "macos": 0.062,
    "linux_2_core_advanced": 0.006, "linux_4_core": 0.012, "linux_8_core": 0.022, "linux_16_core": 0.042,
    "linux_32_core": 0.082, "linux_64_core": 0.162, "linux_96_core": 0.252,
    "windows_4_core": 0.022, "windows_8_core": 0.042, "windows_16_core": 0.082, "windows_32_core": 0.162,
    "windows_64_core": 0.322, "windows_96_core": 0.552, "macos_l": 0.077,
    "linux_2_core_arm": 0.005, "linux_4_core_arm": 0.008, "linux_8_core_arm": 0.014,
    "linux_16_core_arm": 0.026, "linux_32_core_arm": 0.050, "linux_64_core_arm": 0.098,
    "windows_2_core_arm": 0.008, "windows_4_core_arm": 0.014, "windows_8_core_arm": 0.026,
    "windows_16_core_arm": 0.050, "windows_32_core_arm": 0.098, "windows_64_core_arm": 0.194,
    "macos_xl": 0.102, "linux_4_core_gpu": 0.052, "windows_4_core_gpu": 0.102,
}  # fmt: skip


class OptionError(ValueError):
    """A value that does not fit its option; the message names what was expected."""


Parser = Callable[[Any], Any]


@dataclass(frozen=True)
class Option:
    path: str
    parse: Parser
    default: Any
    reload: bool
    help: str
    secret: bool = False
    kind: str = "string"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}_{self.path.replace('.', '__').upper()}"


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise OptionError(f"must be a string, got {type(value).__name__} {value!r} (quote it in YAML)")
    return value


def optional_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return text(value)


def integer(minimum: int, maximum: int | None = None) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise OptionError(f"must be a whole number, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise OptionError(f"must be a whole number, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise OptionError(f"must be {bound}, got {number}")
        return number

    return parse


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise OptionError(f"must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise OptionError(f"must be a number, got {value!r}") from None


def positive_number(value: Any) -> float:
    number = _number(value)
    if number <= 0:
        raise OptionError(f"must be greater than 0, got {number}")
    return number


def fraction(low: float, high: float) -> Parser:
    def parse(value: Any) -> float:
        number = _number(value)
        if not low <= number <= high:
            raise OptionError(f"must be between {low:g} and {high:g}, got {number:g}")
        return number

    return parse


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise OptionError(f"must be true or false, got {value!r}")


def non_negative_number(value: Any) -> float:
    number = _number(value)
    if number < 0:
        raise OptionError(f"must not be negative, got {number}")
    return number


def text_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value] if value else []
    if not isinstance(value, list | tuple):
        raise OptionError("must be a list of strings")
    return tuple(text(item) for item in value)


def rates(value: Any) -> dict[str, float]:
    """SKU -> USD per minute; merged over GitHub's list prices, so a partial table updates some."""
    if not isinstance(value, dict):
        raise OptionError("must be a mapping of runner SKU to USD per minute")
    merged = dict(RATES_2026)
    for sku, rate in value.items():
        try:
            merged[str(sku).lower()] = non_negative_number(rate)
        except OptionError as exc:
            raise OptionError(f"{sku}: {exc}") from None
    return merged


def text_mapping(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise OptionError("must be a mapping of strings")
    return {str(k): text(v) for k, v in value.items()}


def choice(*allowed: str) -> Parser:
    def parse(value: Any) -> str:
        word = text(value).lower()
        if word not in allowed:
            raise OptionError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return word

    return parse


def secrets(value: Any) -> tuple[str, ...]:
    """A single string is a list of one (an empty string: none); every entry must be a non-empty string."""
    items = ([value] if value else []) if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise OptionError("must be a string or a list of strings")
    parsed = tuple(text(item) for item in items)
    if any(not item for item in parsed):
        raise OptionError("must not contain an empty secret")
    return parsed


HOOK_PATH = re.compile(
    r"repos/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/hooks/\d+|orgs/[A-Za-z0-9_.-]+/hooks/\d+|app/hook"
)


def hook_paths(value: Any) -> tuple[str, ...]:
    """GitHub webhooks named by their REST API path: ``repos/OWNER/REPO/hooks/ID``,
    ``orgs/ORG/hooks/ID`` or ``app/hook``."""
    paths = tuple(item.strip().strip("/") for item in text_list(value))
    for path in paths:
        if not HOOK_PATH.fullmatch(path):
            raise OptionError(
                f"{path!r} is not a hook's API path: repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID or app/hook"
            )
    if len(set(paths)) != len(paths):
        raise OptionError("names a hook twice")
    return paths


def buckets(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise OptionError("must be a non-empty list of numbers")
    parsed = tuple(positive_number(item) for item in value)
    if list(parsed) != sorted(set(parsed)):
        raise OptionError("must be strictly increasing")
    return parsed


def label_sets(value: Any) -> dict[str, tuple[str, ...]]:
    """``{family: [label, ...]}``; which names are allowed is checked by the worker's metric catalogue."""
    if not isinstance(value, dict):
        raise OptionError("must be a mapping of metric family to a list of label names")
    parsed: dict[str, tuple[str, ...]] = {}
    for family, labels in value.items():
        if not isinstance(labels, list | tuple) or not all(isinstance(label, str) for label in labels):
            raise OptionError(f"{family}: must be a list of label names")
        parsed[str(family).lower()] = tuple(labels)
    return parsed


OPTIONS: tuple[Option, ...] = (
    Option("redis.url", text, "redis://localhost:6379/0", False,
           "Redis holding the queue, the redelivery marks, the job and run state and the metric totals;"
           " may carry a password.",
           secret=True),
    Option("redis.username", optional_text, None, False,
           "Redis ACL user (instead of one in redis.url)."),
    Option("redis.password", optional_text, None, False,
           "Redis password (instead of one in redis.url); with _FILE, read from a file.", secret=True),
    Option("redis.tls_ca_file", optional_text, None, False,
           "PEM CA bundle to verify Redis's certificate (TLS: a rediss:// URL, or Sentinel)."),
    Option("redis.tls_cert_file", optional_text, None, False,
           "PEM client certificate, when Redis asks for one (with redis.tls_key_file)."),
    Option("redis.tls_key_file", optional_text, None, False, "PEM private key of redis.tls_cert_file."),
    Option("redis.sentinels", text_list, (), False,
           "Redis Sentinel addresses (host:port); when set, the primary is asked of them by"
           " redis.sentinel_master and followed through failovers (redis.url then only gives the"
           " database number).", kind="list of strings"),
    Option("redis.sentinel_master", text, "mymaster", False, "The name Sentinel knows the primary by."),
    Option("redis.sentinel_username", optional_text, None, False, "ACL user for the Sentinels."),
    Option("redis.sentinel_password", optional_text, None, False,
           "Password for the Sentinels; with _FILE, read from a file.", secret=True),
    Option("redis.min_replicas_ack", integer(0), 0, False,
           "The receiver answers 202 only once this many replicas have each batch (Redis WAIT, up to"
           " 2 s; else 503): a delivery acknowledged just before the primary dies is on the replica"
           " that takes over. 0: as soon as the primary has it.", kind="integer"),
    Option("redis.socket_timeout_seconds", positive_number, 5.0, False,
           "Longest wait for any Redis answer (both processes); a command past it fails. The worker's"
           " wait for new RQ jobs is cut into 1 s slices below it.", kind="number"),
    Option("redis.connect_timeout_seconds", positive_number, 2.0, False,
           "Longest wait for a connection to Redis.", kind="number"),
    Option("redis.memory_high_water", fraction(0.5, 0.99), 0.9, False,
           "The receivers answer 503 once Redis uses this share of its maxmemory (read every 0.5 s),"
           " keeping the rest for the worker, which must write before it can free anything; they"
           " accept again 0.05 below it.",
           kind="number"),
    Option("webhook.secrets", secrets, (), True,
           "Webhook secrets; a delivery signed with any of them is accepted (rotation). Required.",
           secret=True, kind="list of strings"),
    Option("webhook.max_body_bytes", integer(1), 25 * 1024 * 1024, True,
           "Largest request body accepted; larger gets 413 (GitHub caps payloads at 25 MB).", kind="integer"),
    Option("webhook.dedupe_ttl_seconds", integer(60), 3 * DAY + DAY // 2, True,
           "How long a (hook id, delivery id) is remembered to recognise redeliveries, and a completed"
           " job's or run's state kept for late deliveries: GitHub redelivers for 3 days (7 on GitHub"
           " Enterprise Server: raise it with github.redelivery_window_seconds), plus half a day. Must"
           " exceed github.redelivery_window_seconds and github.reconcile_lookback_seconds.",
           kind="integer"),
    Option("receiver.host", text, "0.0.0.0", False, "Address the receiver listens on."),
    Option("receiver.port", integer(0, 65535), 8000, False,
           "Port of /webhook, /health, /ready and the receiver's /metrics.", kind="integer"),
    Option("receiver.metrics_host", optional_text, None, False,
           "Address of the receiver's /metrics when served on its own port (default: receiver.host)."),
    Option("receiver.metrics_port", integer(0, 65535), 0, False,
           "Serve the receiver's /metrics on this port instead of the webhook port (0: the webhook"
           " port), so it can stay off the public network.", kind="integer"),
    Option("receiver.max_batch", integer(1, 10_000), 100, False,
           "Group commit: at most this many concurrent deliveries are written to Redis (and queued as"
           " one RQ job) together.", kind="integer"),
    Option("receiver.limit_concurrency", integer(1), 1000, False,
           "Connections kept at once (fewer if the descriptor limit is lower): past it, the connection"
           " that waited longest without a request in progress is closed, and when every one is being"
           " answered the receiver answers 503 at once.",
           kind="integer"),
    Option("receiver.body_timeout_seconds", positive_number, 10.0, False,
           "A request must arrive whole, head and body, within this long of its first byte (of the"
           " connection, for its first request); past it the connection is closed (slow_request)."
           " GitHub sends a delivery at once.", kind="number"),
    Option("receiver.max_header_bytes", integer(1024, 1024 * 1024), 16 * 1024, False,
           "Longest request head (request line and headers) accepted; past it the receiver answers 431"
           " and closes the connection before reading more. GitHub's heads are about 2 KB.",
           kind="integer"),
    Option("receiver.keep_alive_seconds", integer(1), 5, False,
           "How long an idle keep-alive connection is kept open.", kind="integer"),
    Option("receiver.tls_certfile", optional_text, None, False, "PEM certificate: serve HTTPS when set."),
    Option("receiver.tls_keyfile", optional_text, None, False, "PEM private key for receiver.tls_certfile."),
    Option("receiver.deadline_seconds", positive_number, 8.0, True,
           "Longest time a delivery waits for Redis before it is answered 503 (GitHub gives up at 10 s).",
           kind="number"),
    Option("receiver.graceful_shutdown_seconds", positive_number, 10.0, False,
           "On SIGTERM, the longest time until the receiver exits, whatever Redis does: requests in"
           " flight get until 1 s before it; one still unanswered then is failed for GitHub, which"
           " redelivers it. Keep it below the orchestrator's grace (compose 20 s here, Kubernetes 30 s).",
           kind="number"),
    Option("worker.host", text, "0.0.0.0", False, "Address of the worker's /metrics and /health."),
    Option("worker.port", integer(0, 65535), 9100, False, "Port of the worker's /metrics and /health.",
           kind="integer"),
    Option("worker.allowed_hosts", text_list, (), False,
           "Host names the worker's HTTP server answers (name, or name:port), besides IP addresses;"
           " others get 400. Empty: any. Set it to the names the worker is reached by, so a page in"
           " a user's browser cannot read the API through DNS rebinding.", kind="list of strings"),
    Option("worker.max_connections", integer(1), 100, False,
           "Connections the worker's HTTP server keeps at once (fewer if the descriptor limit is"
           " lower); past it the one that waited longest without a request in progress is closed.",
           kind="integer"),
    Option("worker.body_timeout_seconds", positive_number, 10.0, False,
           "A request to the worker must arrive whole within this long of its first byte (of the"
           " connection, for its first request); past it the connection is closed.", kind="number"),
    Option("worker.api_cache_seconds", non_negative_number, 1.0, False,
           "The in-flight sets are read from Redis at most once per this long, for every API request"
           " and scrape together (0: at each).", kind="number"),
    Option("worker.api_concurrency", integer(1, 1000), 4, False,
           "API requests answered at once; past it the API answers 429.", kind="integer"),
    Option("worker.scrape_timeout_seconds", positive_number, 2.0, False,
           "Longest time /metrics waits for Redis; past it the answer has the process's own families and"
           " redis_up 0.", kind="number"),
    Option("worker.stall_seconds", integer(5), 120, False,
           "/health fails when deliveries wait and none was applied for this long (a wedged worker is"
           " restarted).", kind="integer"),
    Option("worker.lease_seconds", integer(3), 10, False,
           "A worker renews its hold on the RQ jobs it is applying every third of this; a dead worker's"
           " jobs go back to the queue this long after its last renewal.", kind="integer"),
    Option("worker.max_scrape_bytes", integer(1024 * 1024), 64 * 1024 * 1024, False,
           "Most bytes one /metrics scrape renders (before gzip); past it the remaining series are"
           " left out and the scrape says so (scrape_truncated 1).", kind="integer"),
    Option("worker.recent_failures", integer(1, 10_000), 200, False,
           "Completed jobs that did not succeed kept for /api/v1/recent and the page (the newest).",
           kind="integer"),
    Option("worker.max_batch", integer(1, 10_000), 500, False,
           "Deliveries the worker applies together: with the RQ job in hand it takes further queued jobs"
           " until their deliveries reach this many (RQ's bookkeeping costs about 25 round trips per job).",
           kind="integer"),
    Option("worker.stop_grace_seconds", positive_number, 10.0, False,
           "On SIGTERM, the longest time until the worker exits, whatever Redis does (an outage, a"
           " failover): the batch in hand is applied or abandoned, and an abandoned one goes back to"
           " the queue when its lease lapses. Keep it below the orchestrator's grace.", kind="number"),
    Option("state.job_ttl_seconds", integer(60), 7 * DAY, False,
           "How long a job attempt's state is kept after its last delivery, and how long a job may stay"
           " queued or in progress with no delivery before it counts as expired (the sweeper goes by"
           " when the state was last written, never by GitHub's timestamps; self-hosted jobs can run"
           " 5 days).",
           kind="integer"),
    Option("state.run_ttl_seconds", integer(60), 36 * DAY, False,
           "The same for workflow run attempts (a run can last 35 days).", kind="integer"),
    Option("state.sweep_interval_seconds", integer(1), 60, False,
           "How often a worker looks for in-flight entries past their TTL and counts them as expired.",
           kind="integer"),
    Option("queue.name", text, "gha-exporter", False, "RQ queue the receiver fills and the worker drains."),
    Option("queue.job_timeout_seconds", integer(1), 60, False,
           "Longest time one RQ job (a batch of deliveries) may run: past it, it fails and is retried."
           " A worker killed mid-job is another matter: its job goes back to the queue about"
           " worker.lease_seconds later.",
           kind="integer"),
    Option("queue.result_ttl_seconds", integer(1), 60, False,
           "How long RQ keeps a finished job (at least 1: 0 makes a retried abandoned job run twice).",
           kind="integer"),
    Option("queue.failure_ttl_seconds", integer(1), 7 * 24 * 3600, False,
           "How long RQ keeps a failed job for inspection (RQ's default is a year).", kind="integer"),
    Option("queue.max_retries", integer(1), 5, False,
           "How often a failed or abandoned job is retried before it is left in the failed registry.",
           kind="integer"),
    Option("queue.compress_bodies", boolean, True, False,
           "The receiver keeps each queued body LZ4-compressed: 3.2 KB of Redis per queued 12 KB"
           " delivery instead of 12.8 KB, for about 10 us of CPU (and fewer bytes to send: faster at"
           " 64 connections); the worker reads either form.", kind="boolean"),
    Option("queue.maintenance_interval_seconds", integer(1), 15, False,
           "How often RQ's own upkeep (its registries' cleanup) runs in each worker. Jobs a dead worker"
           " held are put back by the sweeper every 2 s, not by this.", kind="integer"),
    Option("metrics.prefix", text, "github_actions_", False, "Prefix of every metric name."),
    Option("metrics.duration_buckets", buckets, DURATION_BUCKETS, False,
           "Histogram buckets (seconds) of run and job durations.", kind="list of numbers"),
    Option("metrics.queue_buckets", buckets, QUEUE_BUCKETS, False,
           "Histogram buckets (seconds) of job queue time.", kind="list of numbers"),
    Option("metrics.lag_buckets", buckets, LAG_BUCKETS, False,
           "Histogram buckets (seconds) of receiver-to-worker processing lag.", kind="list of numbers"),
    Option("metrics.labels", label_sets, {}, False,
           "Per metric family (e.g. job_run_total), the label names it carries; unset families keep"
           " their defaults.", kind="mapping"),
    Option("metrics.max_series_per_family", integer(1), 10_000, False,
           "Cardinality guard: label sets per family past this go to one `__overflow__` set.",
           kind="integer"),
    Option("metrics.max_label_value_bytes", integer(32, 65536), 256, False,
           "Longest label value, in UTF-8 bytes: a longer one (a job, workflow or repository name, a"
           " runner label) is cut and ends in `…[` and 8 hex digits of its hash `]`, and counted in"
           " label_values_truncated_total.", kind="integer"),
    Option("metrics.max_job_seconds", integer(60), 5 * DAY, False,
           "Longest plausible job (GitHub stops a job after 5 days on a self-hosted runner): a job"
           " whose completed_at - started_at is longer is refused as implausible_duration.",
           kind="integer"),
    Option("metrics.max_run_seconds", integer(60), 35 * DAY, False,
           "Longest plausible run (GitHub's limit: 35 days, waits and approvals included), and so"
           " the longest plausible queue time: longer ones are refused as implausible_duration or"
           " implausible_queue_time.", kind="integer"),
    Option("metrics.clock_skew_seconds", integer(0), 300, False,
           "How far an end may precede its start before a duration counts as implausible (shorter"
           " negative durations count as 0).", kind="integer"),
    Option("metrics.branches", text_list, (), False,
           "Branch label: names matching one of these globs are kept, others become `other`; empty:"
           " `default` for the repository's default branch, else `other`.", kind="list of strings"),
    Option("metrics.inflight_repository_label", boolean, False, False,
           "Add `repository` to the in-flight job and run gauges.", kind="boolean"),
    Option("metrics.step_metrics", boolean, False, False,
           "Also count steps: step conclusions and durations by job and step name.", kind="boolean"),
    Option("metrics.exemplars", boolean, True, False,
           "Keep, per bucket of the job duration, job queue time and run duration histograms, the"
           " newest job (`run_id`, `job_id`) or run (`run_id`) observed there, shown as an exemplar"
           " when the scraper asks for OpenMetrics.", kind="boolean"),
    Option("cost.effective_date", text, "2026-01-01", False,
           "Date from which `cost.rates` apply; shown on the rate metric."),
    Option("cost.rates", rates, RATES_2026, False,
           "USD per minute by runner SKU; entries given here replace GitHub's list prices of"
           " 2026-01-01 one by one.", kind="mapping"),
    Option("cost.label_skus", text_mapping, {}, False,
           "Runner label -> SKU for larger runners, whose labels are names their admins chose"
           " (e.g. `ubuntu-22.04-16core: linux_16_core`).", kind="mapping"),
    Option("cost.self_hosted_rate", non_negative_number, 0.0, False,
           "USD per minute for self-hosted runners (GitHub's announced $0.002 fee is postponed).",
           kind="number"),
    Option("cost.self_hosted_groups", text_list, (), False,
           "Runner groups whose jobs are self-hosted even without the `self-hosted` label.",
           kind="list of strings"),
    Option("github.hooks", hook_paths, (), True,
           "Webhooks to reconcile with GitHub's delivery log, each as its REST API path:"
           " repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID, or app/hook (the GitHub App's own). Empty:"
           " reconciliation is off.", kind="list of strings"),
    Option("github.api_url", text, "https://api.github.com", True,
           "GitHub's REST API; GitHub Enterprise Server: https://HOST/api/v3."),
    Option("github.token", optional_text, None, True,
           "A token that may read and redeliver the hooks' deliveries (fine-grained: Webhooks read"
           " and write on the repositories, or organization hooks on the organizations).", secret=True),
    Option("github.app_id", optional_text, None, True,
           "A GitHub App's id, instead of github.token (with github.app_private_key)."),
    Option("github.app_private_key", optional_text, None, True,
           "The GitHub App's private key (PEM); with _FILE, read from a file.", secret=True),
    Option("github.reconcile_interval_seconds", integer(30), 300, True,
           "How often one worker compares each hook's recent deliveries with what Redis holds.",
           kind="integer"),
    Option("github.reconcile_lookback_seconds", integer(60), 3 * DAY, True,
           "How far back the first pass looks (later passes start where the last one ended, with an"
           " overlap).", kind="integer"),
    Option("github.redelivery_window_seconds", integer(60), 3 * DAY, True,
           "How old a delivery GitHub still redelivers: 3 days on GitHub.com, 7 on GitHub Enterprise"
           " Server; older failed deliveries are only counted as unrecoverable.", kind="integer"),
    Option("github.max_redeliveries", integer(1), 3, True,
           "Redeliveries requested for one delivery at most, over all passes.", kind="integer"),
    Option("github.max_requests_per_pass", integer(1), 500, True,
           "GitHub API requests one pass makes at most, over all hooks.", kind="integer"),
    Option("github.timeout_seconds", positive_number, 10.0, True,
           "Longest time one GitHub API request may take, its whole answer read (a trickled answer is"
           " cut off too).", kind="number"),
    Option("github.pass_timeout_seconds", positive_number, 300.0, True,
           "Longest time one reconciliation pass may take over all hooks; a hook's log not read to its"
           " end by then is resumed where it stopped by the next pass.", kind="number"),
    Option("github.max_response_bytes", integer(64 * 1024), 1024 * 1024, True,
           "Largest answer read from GitHub's API (a page of 100 deliveries is about 50 KB); the one"
           " larger call, a delivery with its payload to learn app/hook's id, may read 32 MiB.",
           kind="integer"),
    Option("github.allow_insecure_http", boolean, False, True,
           "Allow an http:// github.api_url on an address other than loopback (the token then"
           " travels in clear). Off: such a URL is refused at start.", kind="boolean"),
    Option("log.level", choice("trace", "debug", "info", "success", "warning", "error", "critical"), "info",
           True, "Least severe log level written."),
    Option("log.format", choice("text", "json"), "text", True,
           "`json`: one JSON object per line (production); `text`: readable lines."),
)  # fmt: skip


def reference_markdown() -> str:
    rows = [
        "| key | environment variable | type | default | on change | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for option in OPTIONS:
        default = option.default
        if isinstance(default, tuple):
            default = list(default)
        shown = "(none)" if default in (None, [], {}) else f"`{default}`"
        if isinstance(default, dict) and default:
            shown = "GitHub's list prices of 2026-01-01 (`RATES_2026` in `shared/options.py`)"
        change = "reload" if option.reload else "restart"
        rows.append(
            f"| `{option.path}` | `{option.env}` | {option.kind} | {shown} | {change} | {option.help} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(reference_markdown())  # noqa: T201 - a command-line tool
