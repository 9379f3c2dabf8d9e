import os
import signal
import time

import pytest

from shared.options import reference_markdown
from shared.reloading import SettingsHolder, merge_reloadable
from shared.settings import OPTIONS
from shared.settings_loader import SettingsError, load_settings, require_secrets


def test_only_the_mapping_given_is_read_as_the_environment(monkeypatch):
    monkeypatch.setenv("GHA_EXPORTER_REDIS__URL", "redis://process-environment:1/0")
    monkeypatch.setenv("GHA_EXPORTER_METRICS__PREFIX", "process_")
    settings = load_settings(environ={"GHA_EXPORTER_WEBHOOK__SECRETS": "s"})
    assert settings.redis.url == "redis://localhost:6379/0"
    assert settings.metrics.prefix == "github_actions_"
    assert load_settings(environ={"GHA_EXPORTER_REDIS__URL": "redis://given:2/0"}).redis.url == (
        "redis://given:2/0"
    )


def test_dynaconfs_own_variables_in_the_process_environment_change_nothing(monkeypatch, tmp_path):
    """dynaconf's ``Settings`` reads ``SETTINGS_FILE_FOR_DYNACONF`` (and some sixty kin) from the
    process's environment: the loader must not, with or without a file of its own."""
    planted = tmp_path / "planted.yaml"
    planted.write_text("redis:\n  url: redis://planted:1/0\nmetrics:\n  prefix: planted_\n")
    given = tmp_path / "given.yaml"
    given.write_text("metrics:\n  prefix: given_\n")
    for name in ("SETTINGS_FILE_FOR_DYNACONF", "INCLUDES_FOR_DYNACONF", "PRELOAD_FOR_DYNACONF"):
        monkeypatch.setenv(name, str(planted))
    monkeypatch.setenv("REDIS_ENABLED_FOR_DYNACONF", "true")  # dynaconf's loader from Redis
    without_file = load_settings(environ={})
    assert without_file.redis.url == "redis://localhost:6379/0"
    assert without_file.metrics.prefix == "github_actions_"
    with_file = load_settings(str(given), environ={})
    assert with_file.redis.url == "redis://localhost:6379/0"
    assert with_file.metrics.prefix == "given_"


def test_defaults(make_settings):
    settings = make_settings()
    assert settings.redis.url == "redis://localhost:6379/0"
    assert settings.webhook.max_body_bytes == 25 * 1024 * 1024
    assert settings.metrics.prefix == "github_actions_"
    assert settings.metrics.duration_buckets[-1] >= 3600  # CI durations reach hours
    assert settings.queue.result_ttl_seconds >= 1
    assert settings.log.format == "text"


@pytest.mark.parametrize("secret", ["00123", "1e5", "12345", "true", "[not a list"])
def test_numeric_looking_secrets_stay_exact_strings(make_settings, secret):
    assert make_settings(GHA_EXPORTER_WEBHOOK__SECRETS=secret).webhook.secrets == (secret,)


def test_secret_list_from_environment(make_settings):
    settings = make_settings(GHA_EXPORTER_WEBHOOK__SECRETS='["new", "old"]')
    assert settings.webhook.secrets == ("new", "old")


def test_secrets_from_file_one_per_line(make_settings, tmp_path):
    secret_file = tmp_path / "secrets"
    secret_file.write_text("first\n0042\n\n")
    settings = make_settings(GHA_EXPORTER_WEBHOOK__SECRETS_FILE=str(secret_file))
    assert settings.webhook.secrets == ("first", "0042")


def test_yaml_file_then_environment(make_settings, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "redis:\n  url: redis://file:1/0\n"
        "webhook:\n  secrets: [a, b]\n  max_body_bytes: 1000\n"
        "metrics:\n  labels:\n    job_run_total: [repository, conclusion]\n"
        "log:\n  level: debug\n"
    )
    settings = make_settings(
        GHA_EXPORTER_CONFIG=str(config),
        GHA_EXPORTER_WEBHOOK__SECRETS='["a", "b"]',
        GHA_EXPORTER_REDIS__URL="redis://env:2/0",
        GHA_EXPORTER_LOG__FORMAT="json",
    )
    assert settings.redis.url == "redis://env:2/0"
    assert settings.webhook.secrets == ("a", "b")
    assert settings.webhook.max_body_bytes == 1000
    assert settings.metrics.labels == {"job_run_total": ("repository", "conclusion")}
    assert settings.log.level == "debug"
    assert settings.log.format == "json"
    assert settings.config_file == str(config)


@pytest.mark.usefixtures("make_settings")
def test_numeric_secret_in_yaml_is_an_error_naming_the_option(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("webhook:\n  secrets: [123]\n")
    os.environ.pop("GHA_EXPORTER_WEBHOOK__SECRETS", None)
    with pytest.raises(SettingsError) as error:
        load_settings(str(config))
    assert any(p.startswith("webhook.secrets") and "quote" in p for p in error.value.problems)


def test_every_problem_is_reported_at_once(make_settings):
    with pytest.raises(SettingsError) as error:
        make_settings(
            GHA_EXPORTER_RECEIVER__PORT="70000",
            GHA_EXPORTER_WEBHOOK__MAX_BODY_BYTES="lots",
            GHA_EXPORTER_LOG__FORMAT="xml",
            GHA_EXPORTER_METRICS__DURATION_BUCKETS="[10, 5]",
        )
    problems = error.value.problems
    assert len(problems) == 4
    for name in ("receiver.port", "webhook.max_body_bytes", "log.format", "metrics.duration_buckets"):
        assert any(p.startswith(name) for p in problems), name


def test_missing_config_file_is_an_error(make_settings, tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        make_settings(GHA_EXPORTER_CONFIG=str(tmp_path / "absent.yaml"))


def test_receiver_refuses_to_start_without_a_secret(make_settings):
    settings = make_settings(GHA_EXPORTER_WEBHOOK__SECRETS="")
    with pytest.raises(SettingsError, match=r"webhook\.secrets"):
        require_secrets(settings)


def test_secrets_never_appear_in_repr(make_settings):
    settings = make_settings(
        GHA_EXPORTER_WEBHOOK__SECRETS="hunter2-secret", GHA_EXPORTER_REDIS__URL="redis://:pw@h:1/0"
    )
    assert "hunter2-secret" not in repr(settings)
    assert ":pw@" not in repr(settings)


def test_reload_takes_reloadable_options_only(make_settings):
    current = make_settings()
    new = make_settings(
        GHA_EXPORTER_WEBHOOK__SECRETS="rotated",
        GHA_EXPORTER_LOG__LEVEL="debug",
        GHA_EXPORTER_RECEIVER__PORT="9999",
    )
    merged, ignored = merge_reloadable(current, new)
    assert merged.webhook.secrets == ("rotated",)
    assert merged.log.level == "debug"
    assert merged.receiver.port == current.receiver.port
    assert ignored == ["receiver.port"]


@pytest.mark.usefixtures("make_settings")
def test_sighup_reloads_secrets(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("webhook:\n  secrets: [one]\n")
    os.environ.pop("GHA_EXPORTER_WEBHOOK__SECRETS", None)
    holder = SettingsHolder(load_settings(str(config)), poll_seconds=60)
    seen: list[object] = []
    holder.on_reload(seen.append)
    holder.start()
    try:
        config.write_text("webhook:\n  secrets: [two]\n")
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        holder.stop()
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    assert holder.current.webhook.secrets == ("two",)
    assert len(seen) == 1


def test_reference_lists_every_option_with_its_variable():
    table = reference_markdown(OPTIONS)
    for option in OPTIONS:
        assert f"`{option.path}`" in table
        assert f"`{option.env}`" in table


def test_tls_files_without_a_tls_url_are_an_error_naming_the_option(make_settings, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(SettingsError) as error:
        make_settings(GHA_EXPORTER_REDIS__URL="redis://r:6379/0", GHA_EXPORTER_REDIS__TLS_CA_FILE=str(ca))
    assert any(p.startswith("redis.tls_*") for p in error.value.problems)
    tls = make_settings(GHA_EXPORTER_REDIS__URL="rediss://r:6379/0", GHA_EXPORTER_REDIS__TLS_CA_FILE=str(ca))
    assert tls.redis.tls_ca_file == str(ca)


def test_github_hooks_are_api_paths_with_credentials(make_settings, tmp_path):
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nxyz\n-----END PRIVATE KEY-----\n")
    settings = make_settings(
        GHA_EXPORTER_GITHUB__HOOKS='["repos/o/r/hooks/1", "/orgs/o/hooks/2/", "app/hook"]',
        GHA_EXPORTER_GITHUB__APP_ID="42",
        GHA_EXPORTER_GITHUB__APP_PRIVATE_KEY_FILE=str(key),
    )
    assert settings.github.hooks == ("repos/o/r/hooks/1", "orgs/o/hooks/2", "app/hook")
    assert settings.github.app_private_key is not None
    assert settings.github.app_private_key in settings.secret_values()
    assert "xyz" not in repr(settings)
    assert make_settings().github.hooks == ()  # off by default


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        (
            {"GHA_EXPORTER_GITHUB__HOOKS": "repos/o/hooks/1", "GHA_EXPORTER_GITHUB__TOKEN": "t"},
            "hook's API path",
        ),
        (
            {"GHA_EXPORTER_GITHUB__HOOKS": '["app/hook", "app/hook"]', "GHA_EXPORTER_GITHUB__TOKEN": "t"},
            "twice",
        ),
        ({"GHA_EXPORTER_GITHUB__HOOKS": "orgs/o/hooks/2"}, "needs github.token"),
        ({"GHA_EXPORTER_GITHUB__HOOKS": "app/hook", "GHA_EXPORTER_GITHUB__TOKEN": "t"}, "App's credentials"),
        ({"GHA_EXPORTER_GITHUB__APP_ID": "42"}, "set together"),
        ({"GHA_EXPORTER_GITHUB__API_URL": "api.github.com"}, "github.api_url"),
        ({"GHA_EXPORTER_GITHUB__API_URL": "http://ghes.example/api/v3"}, "token in clear"),
    ],
)
def test_github_settings_problems_are_named(make_settings, env, problem):
    with pytest.raises(SettingsError) as error:
        make_settings(**env)
    assert problem in str(error.value)


def test_the_github_token_is_a_secret(make_settings):
    settings = make_settings(GHA_EXPORTER_GITHUB__TOKEN="ghp_secret-token")
    assert "ghp_secret-token" in settings.secret_values()
    assert "ghp_secret-token" not in repr(settings)


def test_the_marks_must_outlive_every_window_a_delivery_can_come_again_in(make_settings):
    day = 24 * 3600
    with pytest.raises(SettingsError) as error:  # GitHub Enterprise Server's 7 days, marks left at 3.5
        make_settings(GHA_EXPORTER_GITHUB__REDELIVERY_WINDOW_SECONDS=str(7 * day))
    assert any(
        p.startswith("webhook.dedupe_ttl_seconds") and "redelivery_window" in p for p in error.value.problems
    )
    with pytest.raises(SettingsError):
        make_settings(GHA_EXPORTER_GITHUB__RECONCILE_LOOKBACK_SECONDS=str(4 * day))
    ghes = make_settings(
        GHA_EXPORTER_GITHUB__REDELIVERY_WINDOW_SECONDS=str(7 * day),
        GHA_EXPORTER_WEBHOOK__DEDUPE_TTL_SECONDS=str(7 * day + day // 2),
    )
    assert ghes.webhook.dedupe_ttl_seconds > ghes.github.redelivery_window_seconds


@pytest.mark.parametrize(
    ("url", "insecure"),
    [("http://127.0.0.1:8080", False), ("http://localhost/api/v3", False), ("http://[::1]:80", False),
     ("http://ghes.example/api/v3", True), ("https://ghes.example/api/v3", False)],
)  # fmt: skip
def test_plain_http_to_github_is_for_loopback_or_said_out_loud(make_settings, url, insecure):
    env = {"GHA_EXPORTER_GITHUB__API_URL": url}
    if insecure:
        env["GHA_EXPORTER_GITHUB__ALLOW_INSECURE_HTTP"] = "true"
    assert make_settings(**env).github.api_url == url


def test_a_setting_that_does_not_exist_is_refused_with_the_closest_name(make_settings, tmp_path):
    """A typo, or an option of another version, used to start both processes without a word."""
    with pytest.raises(SettingsError) as error:
        make_settings(GHA_EXPORTER_WEBHOOK__SECRT="x", GHA_EXPORTER_TRACES__OTLP_ENDPIONT="http://otel:4318")
    assert error.value.problems == [
        "GHA_EXPORTER_TRACES__OTLP_ENDPIONT: no such setting;"
        " did you mean GHA_EXPORTER_TRACES__OTLP_ENDPOINT?",
        "GHA_EXPORTER_WEBHOOK__SECRT: no such setting; did you mean GHA_EXPORTER_WEBHOOK__SECRETS?",
    ]
    config = tmp_path / "config.yaml"
    config.write_text("reciever:\n  port: 8000\nworker:\n  prot: 9100\nlog: debug\n")
    with pytest.raises(SettingsError) as error:
        make_settings(GHA_EXPORTER_CONFIG=str(config))
    assert error.value.problems == [
        "log (configuration file): must hold settings (key: value)",
        "reciever (configuration file): no such section; did you mean receiver?",
        "worker.prot (configuration file): no such setting; did you mean worker.port?",
    ]
    # the prefix's variables without a section are not settings: the config file's, the tools'
    assert make_settings(GHA_EXPORTER_ARTIFACTS="artifacts").receiver.port == 8000


def test_yaml_values_are_taken_as_written(tmp_path):
    """The file is YAML, read by PyYAML: dynaconf's casting tokens (``@int``, ``@format``) are text."""
    config = tmp_path / "config.yaml"
    config.write_text('queue:\n  name: "@int 12"\nmetrics:\n  prefix: gha_\n')
    settings = load_settings(str(config), environ={"GHA_EXPORTER_WEBHOOK__SECRETS": "s"})
    assert (settings.queue.name, settings.metrics.prefix) == ("@int 12", "gha_")


def test_a_file_that_is_no_yaml_is_refused_without_quoting_it(tmp_path):
    """PyYAML's message quotes the file's lines: a secret in them must not reach the error (a log line)."""
    config = tmp_path / "config.yaml"
    config.write_text("webhook:\n  secrets: [hunter2-topsecret, ")  # cut short while being written
    with pytest.raises(SettingsError) as error:
        load_settings(str(config), environ={})
    assert error.value.problems == [
        "cannot read configuration: not YAML: expected the node content, but found '<stream end>'"
        " (line 2, column 32)"
    ]
    assert "hunter2" not in str(error.value)
