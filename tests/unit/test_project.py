"""The README, the package layout and the CI entry point say what is true."""

import re
from pathlib import Path

import pytest

import receiver
import shared
import worker
from receiver.metrics import ReceiverMetrics
from shared.http_server import refusal_counter
from shared.keys import reference_markdown as keys_reference
from shared.options import reference_markdown
from shared.settings import OPTIONS
from worker.__main__ import REFUSAL_REASONS, trace_loop

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_imported_packages_are_ours():
    for package in (shared, receiver, worker):
        assert package.__file__ is not None
        assert Path(package.__file__).resolve().parent.parent == ROOT


def test_configuration_reference_is_the_generated_one():
    found = re.search(r"<!-- config-reference:start.*?-->\n(.*?)<!-- config-reference:end -->", README, re.S)
    assert found, "README lost its configuration reference markers"
    assert found.group(1).strip() == reference_markdown(OPTIONS).strip()


def test_the_redis_keys_table_is_the_generated_one():
    found = re.search(r"<!-- redis-keys:start.*?-->\n(.*?)<!-- redis-keys:end -->", README, re.S)
    assert found, "README lost its Redis keys markers"
    assert found.group(1).strip() == keys_reference().strip()


def test_every_exposed_metric_is_documented(make_exporter):
    exporter = make_exporter(GHA_EXPORTER_TRACES__OTLP_ENDPOINT="http://127.0.0.1:9/v1/traces")
    trace_loop(exporter.connection, exporter.settings, exporter.registry)  # the traces' families
    ReceiverMetrics(exporter.registry, "github_actions_")
    refusal_counter(exporter.registry, "github_actions_", REFUSAL_REASONS)  # the worker's HTTP server
    # the processes call disable_created_metrics(); the tests' registries still show *_created
    names = {family.name for family in exporter.families() if not family.name.endswith("_created")}
    assert len(names) == 61  # 55 of the worker (5 with traces on), 6 of the receiver (+3 of the worker's)
    for name in names:  # a counter's family name lacks the _total its samples carry
        assert f"`{name}" in README, name


@pytest.mark.parametrize("command", ["up", "test", "send-sample", "setup", "bench"])
def test_readme_commands_exist(command):
    assert f"python3 dev.py {command}" in README
    assert f'command == "{command}"' in (ROOT / "dev.py").read_text()


def test_ci_runs_the_readme_test_command():
    assert "python3 dev.py test" in README
    assert "python3 dev.py test" in (ROOT / ".ci" / "run").read_text()
