"""The spans' wire format read back with ``opentelemetry-proto`` (the official schema), the ids, and
what an export's answer means."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from bench.otlp_sink import value_of
from worker import otlp_wire, trace_entries
from worker.otlp import RESULTS, UNKNOWN_RESULT, result_of
from worker.otlp_client import Answer, rejected_spans, retry_after
from worker.otlp_wire import SpanData


def decoded(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return request


def test_every_field_written_reads_back_with_the_official_schema():
    data = SpanData(
        trace_id=bytes(range(16)), span_id=bytes(range(8)), parent_span_id=bytes(range(8, 16)),
        name="Ünïcode job ✓", kind=otlp_wire.SERVER, start=1_697_191_887 * 10**9, end=2**64 - 1,
        attributes={"text": "a", "empty": "", "none": None, "int": 300, "negative": -5, "big": 2**62,
                    "yes": True, "no": False, "zero": 0, "list": ["x", "ÿ"], "nothing": []},
        links=[(b"\x01" * 16, b"\x02" * 8)], error=True,
    )  # fmt: skip
    body = otlp_wire.request({"service.name": "svc"}, "scope", [otlp_wire.span(data), otlp_wire.span(data)])
    request = decoded(body)
    [resource_spans] = request.resource_spans
    assert {a.key: value_of(a.value) for a in resource_spans.resource.attributes} == {"service.name": "svc"}
    [scope_spans] = resource_spans.scope_spans
    assert scope_spans.scope.name == "scope"
    assert len(scope_spans.spans) == 2
    span = scope_spans.spans[0]
    assert (span.trace_id, span.span_id, span.parent_span_id) == (bytes(range(16)), bytes(range(8)),
                                                                  bytes(range(8, 16)))  # fmt: skip
    assert span.name == "Ünïcode job ✓"
    assert span.kind == Span.SPAN_KIND_SERVER
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (1_697_191_887 * 10**9, 2**64 - 1)
    assert {a.key: value_of(a.value) for a in span.attributes} == {
        "text": "a", "int": 300, "negative": -5, "big": 2**62, "yes": True, "no": False, "zero": 0,
        "list": ["x", "ÿ"],
    }  # fmt: skip
    assert [(link.trace_id, link.span_id) for link in span.links] == [(b"\x01" * 16, b"\x02" * 8)]
    assert span.status.code == Status.STATUS_CODE_ERROR


def test_a_root_span_without_error_has_no_parent_and_no_status():
    data = SpanData(b"\x01" * 16, b"\x02" * 8, b"", "run", otlp_wire.INTERNAL, 1, 2, {})
    [span] = (
        decoded(otlp_wire.request({}, "s", [otlp_wire.span(data)])).resource_spans[0].scope_spans[0].spans
    )
    assert span.parent_span_id == b""
    assert span.status.code == Status.STATUS_CODE_UNSET
    assert span.kind == Span.SPAN_KIND_INTERNAL


def test_ids_follow_from_githubs_ids_alone():
    assert trace_entries.trace_id(1, 1) == trace_entries.trace_id(1, 1)
    assert trace_entries.trace_id(1, 1) != trace_entries.trace_id(1, 2)
    assert trace_entries.job_trace_id(1, 99, 1) == trace_entries.trace_id(1, 1)  # a job in its run's trace
    assert trace_entries.job_trace_id(None, 99, 1) != trace_entries.trace_id(1, 1)
    ids = {trace_entries.job_span_id(5, 1), trace_entries.wait_span_id(5, 1), trace_entries.run_span_id(5, 1),
           trace_entries.step_span_id(5, 1, 1), trace_entries.job_span_id(5, 2)}  # fmt: skip
    assert len(ids) == 5
    assert all(0 < value < 2**64 for value in ids)
    assert len(trace_entries.trace_hex(trace_entries.trace_id(1, 1))) == 32
    link = trace_entries.job_trace_url("https://t/{trace_id}?s={span_id}", 1, 1, 5)
    assert link == f"https://t/{trace_entries.trace_hex(trace_entries.trace_id(1, 1))}?s=" + (
        trace_entries.span_hex(trace_entries.job_span_id(5, 1))
    )


@pytest.mark.parametrize(
    ("conclusion", "result"),
    [("success", "success"), ("neutral", "success"), ("failure", "failure"), ("timed_out", "timeout"),
     ("cancelled", "cancellation"), ("stale", "cancellation"), ("skipped", "skip"),
     ("action_required", "skip"), ("startup_failure", "error"), (None, "error"), ("something_new", "error")],
)  # fmt: skip
def test_conclusions_map_to_the_conventions_results(conclusion, result):
    assert result_of(conclusion) == result


def test_every_result_is_one_the_conventions_name():
    from opentelemetry.semconv._incubating.attributes.cicd_attributes import (  # noqa: PLC0415
        CicdPipelineResultValues,
        CicdPipelineTaskRunResultValues,
    )

    named = {value.value for value in CicdPipelineResultValues}
    assert {*RESULTS.values(), UNKNOWN_RESULT} <= named
    assert named == {value.value for value in CicdPipelineTaskRunResultValues}


def test_retry_after_in_seconds_or_as_a_date():
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()
    assert retry_after("120", now) == 120.0
    assert retry_after(format_datetime(datetime(2026, 12, 6, 12, 1, tzinfo=UTC), usegmt=True), now) == 60.0
    assert retry_after(format_datetime(datetime(2026, 12, 6, 11, 0, tzinfo=UTC), usegmt=True), now) == 0.0
    assert retry_after("soon", now) is None
    assert retry_after("٣", now) is None  # not ASCII digits
    assert retry_after(None, now) is None


def test_what_an_answer_means():
    assert Answer("200").ok
    assert not Answer("503").ok
    assert Answer("400").refused
    assert Answer("413").refused
    assert not Answer("timeout").refused
    partial = ExportTraceServiceResponse()
    partial.partial_success.rejected_spans = 3
    assert rejected_spans(partial.SerializeToString()) == 3
    assert rejected_spans(b"") == 0
    assert rejected_spans(b"\xff\xff not protobuf") == 0


def test_a_ca_file_the_worker_cannot_read_is_refused_at_start(make_settings, tmp_path):
    from shared.settings_loader import SettingsError  # noqa: PLC0415
    from worker.__main__ import check_worker_settings  # noqa: PLC0415

    settings = make_settings(
        GHA_EXPORTER_TRACES__OTLP_ENDPOINT="https://collector:4318/v1/traces",
        GHA_EXPORTER_TRACES__TLS_CA_FILE=str(tmp_path / "missing.pem"),
    )
    with pytest.raises(SettingsError) as error:
        check_worker_settings(settings)
    assert error.value.problems == [f"traces.tls_ca_file: cannot read {tmp_path / 'missing.pem'}"]


def test_headers_are_secrets_each_value_masked_and_a_bad_form_refused(make_settings):
    from shared.settings_loader import SettingsError  # noqa: PLC0415

    settings = make_settings(GHA_EXPORTER_TRACES__HEADERS="x-api-key=s3cr%3Dt, x-team = ci")
    assert settings.traces.header_values() == ("s3cr=t", "ci")
    assert {"x-api-key=s3cr%3Dt, x-team = ci", "s3cr=t", "ci"} <= set(settings.secret_values())
    with pytest.raises(SettingsError) as error:
        make_settings(GHA_EXPORTER_TRACES__HEADERS="no equals sign")
    assert error.value.problems[0].startswith("traces.headers (GHA_EXPORTER_TRACES__HEADERS): must be")
    assert "no equals sign" not in str(error.value.problems)  # a secret's value is never quoted
