"""A reload is validated like a start: what would leave a process unable to do its job is refused,
counted, and the running configuration kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from shared import reloading
from shared.reloading import SettingsHolder, count_failures, settled_content
from shared.settings_loader import load_settings, require_secrets

CONFIG = "webhook:\n  secrets: [first-secret, second-secret]\nlog:\n  level: info\n"


@pytest.fixture(name="config")
def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("WEBHOOK__SECRETS", "WEBHOOK__SECRETS_FILE", "CONFIG"):
        monkeypatch.delenv(f"GHA_EXPORTER_{name}", raising=False)
    monkeypatch.setattr(reloading, "SETTLE_SECONDS", 0.0)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def receiver_holder(config: Path) -> tuple[SettingsHolder, CollectorRegistry]:
    holder = SettingsHolder(load_settings(str(config)), check=require_secrets)
    registry = CollectorRegistry()
    count_failures(holder, registry, "p_")
    return holder, registry


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("log:\n  level: debug\n", id="missing webhook section"),
        pytest.param("", id="empty file"),
        pytest.param("\n  \n", id="blank file"),
        pytest.param(CONFIG[:12], id="truncated file"),
        pytest.param("webhook:\n  secrets: [first\n", id="malformed YAML"),
    ],
)
def test_a_reload_that_leaves_the_receiver_without_a_secret_is_refused(config: Path, content: str):
    holder, registry = receiver_holder(config)
    running = holder.current
    config.write_text(content)
    assert holder.reload() is False
    assert holder.current is running
    assert holder.current.webhook.secrets == ("first-secret", "second-secret")
    assert registry.get_sample_value("p_config_reload_failures_total") == 1.0


def test_a_secret_removed_while_another_remains_is_reloaded(config: Path):
    holder, registry = receiver_holder(config)
    config.write_text("webhook:\n  secrets: [second-secret]\n")
    assert holder.reload() is True
    assert holder.current.webhook.secrets == ("second-secret",)
    assert registry.get_sample_value("p_config_reload_failures_total") == 0.0


def test_a_secret_from_the_environment_makes_a_file_without_one_valid(config: Path, monkeypatch):
    holder, _ = receiver_holder(config)
    monkeypatch.setenv("GHA_EXPORTER_WEBHOOK__SECRETS", "from-env")
    config.write_text("log:\n  level: debug\n")
    assert holder.reload() is True
    assert holder.current.webhook.secrets == ("from-env",)


def test_a_file_being_written_in_place_is_read_once_complete(config: Path):
    """The writer's steps happen between the reader's reads (the reader's pause is where time passes)."""
    config.write_text(CONFIG[:12])  # the first part of an in-place write
    steps = iter([CONFIG[:40], CONFIG])

    def writer_moves_on(_seconds: float) -> None:
        step = next(steps, None)
        if step is not None:
            config.write_text(step)

    assert settled_content(str(config), writer_moves_on) == CONFIG.encode()
