"""The settings of the worker's outbound calls: GitHub's REST API (reconciliation) and an
OpenTelemetry collector (traces). Both are off by default: the default makes no outbound call."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from shared.options import (
    DAY,
    OptionError,
    boolean,
    hook_paths,
    integer,
    option,
    optional_text,
    positive_number,
    runner_scopes,
    text,
)


def otlp_headers(value: object) -> str | None:
    """``key=value`` pairs separated by commas, values percent-encoded (the form of
    ``OTEL_EXPORTER_OTLP_HEADERS``), checked and kept as written."""
    written = optional_text(value)
    if written is not None:
        header_pairs(written)
    return written


def header_pairs(written: str) -> dict[str, str]:
    pairs = {}
    for item in written.split(","):
        if not item.strip():
            continue
        key, equals, raw = item.partition("=")
        key = key.strip()
        if not equals or not key or not key.replace("-", "").isalnum():
            raise OptionError(
                "must be key=value pairs separated by commas (header names: letters, digits, -)"
            )
        pairs[key] = unquote(raw.strip())
    return pairs


def otlp_endpoint(value: object) -> str | None:
    written = optional_text(value)
    if written is not None and not written.startswith(("http://", "https://")):
        raise OptionError(
            "must be an http:// or https:// URL (OTLP/HTTP), e.g. http://collector:4318/v1/traces"
        )
    return written


def ui_template(value: object) -> str | None:
    written = optional_text(value)
    if written is not None and "{trace_id}" not in written:
        raise OptionError("must contain {trace_id} (and may contain {span_id})")
    return written


# fmt: off
@dataclass(frozen=True)
class GithubSettings:  # Reconciliation with GitHub's delivery log; the runners' inventory.
    hooks: tuple[str, ...] = option(hook_paths, (),
        "Webhooks to reconcile with GitHub's delivery log, each as its REST API path: "
        "repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID, or app/hook (the GitHub App's own). Empty: "
        "reconciliation is off.", reload=True)
    api_url: str = option(text, "https://api.github.com",
        "GitHub's REST API; GitHub Enterprise Server: https://HOST/api/v3.", reload=True)
    token: str | None = option(optional_text, None,
        "A token that may read and redeliver the hooks' deliveries (fine-grained: Webhooks read and write "
        "on the repositories, or organization hooks on the organizations).", reload=True, secret=True)
    app_id: str | None = option(optional_text, None,
        "A GitHub App's id, instead of github.token (with github.app_private_key).", reload=True)
    app_private_key: str | None = option(optional_text, None,
        "The GitHub App's private key (PEM); with _FILE, read from a file.", reload=True, secret=True)
    reconcile_interval_seconds: int = option(integer(30), 300,
        "How often one worker compares each hook's recent deliveries with what Redis holds.", reload=True)
    reconcile_lookback_seconds: int = option(integer(60), 3 * DAY,
        "How far back the first pass looks (later passes start where the last one ended, with an overlap).",
        reload=True)
    redelivery_window_seconds: int = option(integer(60), 3 * DAY,
        "How old a delivery GitHub still redelivers: 3 days on GitHub.com, 7 on GitHub Enterprise Server; "
        "older failed deliveries are only counted as unrecoverable.", reload=True)
    max_redeliveries: int = option(integer(1), 3,
        "Redeliveries requested for one delivery at most, over all passes.", reload=True)
    max_requests_per_pass: int = option(integer(1), 500,
        "GitHub API requests one pass makes at most, over all hooks.", reload=True)
    timeout_seconds: float = option(positive_number, 10.0,
        "Longest time one GitHub API request may take, its whole answer read (a trickled answer is cut off "
        "too).", reload=True)
    pass_timeout_seconds: float = option(positive_number, 300.0,
        "Longest time one reconciliation pass may take over all hooks; a hook's log not read to its end by "
        "then is resumed where it stopped by the next pass.", reload=True)
    max_response_bytes: int = option(integer(64 * 1024), 1024 * 1024,
        "Largest answer read from GitHub's API (a page of 100 deliveries is about 50 KB); the one larger "
        "call, a delivery with its payload to learn app/hook's id, may read 32 MiB.", reload=True)
    allow_insecure_http: bool = option(boolean, False,
        "Allow an http:// github.api_url on an address other than loopback (the token then travels in "
        "clear). Off: such a URL is refused at start.", reload=True)
    runners: tuple[str, ...] = option(runner_scopes, (),
        "Where to list self-hosted runners (their state, group, labels), each as its REST API scope: "
        "orgs/ORG (with its runner groups and GitHub-hosted larger runners), repos/OWNER/REPO, "
        "enterprises/ENTERPRISE. Same credentials as reconciliation; reading runners needs, fine-grained, "
        "the organization's Self-hosted runners (read) or the repository's Administration (read); classic, "
        "admin:org, repo or manage_runners:enterprise. Empty: no runner is listed (no request).",
        reload=True)
    runners_interval_seconds: int = option(integer(10), 60,
        "How often one worker lists the runners of github.runners.", reload=True)



@dataclass(frozen=True)
class TracesSettings:  # Every run as a trace, sent to an OpenTelemetry collector.
    otlp_endpoint: str | None = option(otlp_endpoint, None,
        "OTLP/HTTP (protobuf) traces endpoint, e.g. http://collector:4318/v1/traces. Empty: no traces (no "
        "outbound call).")
    headers: str | None = option(otlp_headers, None,
        "Headers sent with each export, as key=value pairs separated by commas, values percent-encoded (the "
        "form of OTEL_EXPORTER_OTLP_HEADERS; backends take an API key here); with _FILE, read from a file. "
        "Never logged.", secret=True)
    tls_ca_file: str | None = option(optional_text, None,
        "PEM CA bundle to verify an https:// endpoint's certificate (default: the system's).")
    timeout_seconds: float = option(positive_number, 10.0,
        "Longest time one export request may take, its answer read; past it the spans stay in the outbox "
        "and are sent again.")
    service_name: str = option(text, "gha-exporter", "The spans' service.name.")
    steps: bool = option(boolean, False,
        "Each step of a job as a span under it (about 60 bytes of Redis per step until sent).")
    max_pending: int = option(integer(100), 50_000,
        "Completed jobs and runs whose spans wait in the outbox at most; past it (or "
        "traces.max_pending_bytes) the oldest not being sent are dropped and counted "
        "(traces_dropped_total, reason outbox_full).")
    max_pending_bytes: int = option(integer(64 * 1024), 64 * 1024 * 1024,
        "Bytes the outbox's entries take at most (a job's entry is about 0.6 KB, 1.3 KB with its steps).")
    ui_url: str | None = option(ui_template, None,
        "Address of a trace in your tracing UI, with {trace_id} (and {span_id}), e.g. "
        "https://grafana.example/explore?left=...{trace_id}...: the page and the API link each job to it.")

    def header_values(self) -> tuple[str, ...]:
        """The headers' values, each a secret of its own (an API key)."""
        return tuple(header_pairs(self.headers).values()) if self.headers else ()
# fmt: on
