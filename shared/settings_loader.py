"""Load and validate the configuration of both processes.

Sources, later ones winning: built-in defaults, the YAML file named by ``--config`` or
``GHA_EXPORTER_CONFIG``, environment variables ``GHA_EXPORTER_<SECTION>__<KEY>``, and files named
by ``GHA_EXPORTER_<SECTION>__<KEY>_FILE`` (Docker and Kubernetes secrets).

The environment is the mapping :func:`load_settings` is given (``os.environ`` when it is given
none), and nothing else: the YAML file is read with PyYAML's ``safe_load``, not through a dynaconf
``Settings``, which reads some sixty ``*_FOR_DYNACONF`` variables of the process's own environment
(one of them replaces the file it is given, others switch on its Redis and Vault loaders). String
options take the environment's raw text; others are parsed as TOML by dynaconf's parser of
environment values (a secret such as ``00123`` or ``1e5`` must not become a number). Every problem
is collected and reported at once, each with the option's name.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from dynaconf.utils.parse_conf import parse_conf_data

from shared.logs import loggable
from shared.options import ENV_PREFIX, Option, OptionError, secrets
from shared.settings import OPTIONS, SECTIONS, Settings

CONFIG_ENV = f"{ENV_PREFIX}_CONFIG"
METRIC_PREFIX = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class SettingsError(Exception):
    """Invalid configuration; ``problems`` lists every one, each naming its option."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _lower_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    return value


def _lookup(data: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _unknown_names(data: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Settings given that are no option (a typo, an option of another version): refused, with the
    closest known name, where they would otherwise be ignored without a word. Variables of the
    prefix without ``__`` are not settings (``GHA_EXPORTER_CONFIG``, the tools' own)."""
    problems = []
    names = {o.env for o in OPTIONS} | {f"{o.env}_FILE" for o in OPTIONS}
    for name in sorted(environ):
        if name.startswith(f"{ENV_PREFIX}_") and "__" in name and name not in names:
            problems.append(f"{name}: no such setting{_closest(name, names)}")
    paths = {o.path for o in OPTIONS}
    for section, content in sorted(data.items()):
        if section not in SECTIONS:
            problems.append(f"{section} (configuration file): no such section{_closest(section, SECTIONS)}")
        elif not isinstance(content, Mapping):
            problems.append(f"{section} (configuration file): must hold settings (key: value)")
        else:
            for key in sorted(content):
                path = f"{section}.{key}"
                if path not in paths:
                    problems.append(f"{path} (configuration file): no such setting{_closest(path, paths)}")
    return problems


def _closest(name: str, known: Iterable[str]) -> str:
    """``; did you mean X?`` for the known name closest to ``name``, compared without the prefix
    they all share (it would make every name look close)."""
    prefix = f"{ENV_PREFIX}_"
    bare = {k.removeprefix(prefix): k for k in known}
    found = difflib.get_close_matches(name.removeprefix(prefix), sorted(bare), n=1, cutoff=0.7)
    return f"; did you mean {bare[found[0]]}?" if found else ""


def _read_secret_file(option: Option, filename: str) -> Any:
    content = Path(filename).read_text(encoding="utf-8")
    if option.parse is secrets:
        return [line.strip() for line in content.splitlines() if line.strip()]
    return content.strip()


def _toml(raw: str) -> Any:
    return parse_conf_data(raw, tomlfy=True, box_settings={})


def _environment_value(option: Option, environ: Mapping[str, str]) -> tuple[bool, Any]:
    """The option's value in ``environ``, if it is there: its ``_FILE``, else its variable."""
    file_var = f"{option.env}_FILE"
    if file_var in environ:
        return True, _read_secret_file(option, environ[file_var])
    if option.env not in environ:
        return False, None
    raw = environ[option.env]
    if option.parse is secrets:
        return True, _toml(raw) if raw.lstrip().startswith("[") else raw  # one secret, or a list
    if option.kind == "string":  # text as written (a secret such as 00123 stays one)
        return True, raw
    return True, _toml(raw)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What PyYAML found wrong and where, without the lines of the file it quotes."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark, problem = exc.problem_mark, loggable(exc.problem or "unreadable", 100)
        return f"not YAML: {problem} (line {mark.line + 1}, column {mark.column + 1})"
    return f"not YAML ({type(exc).__name__})"


def _read_file(config_file: str | None) -> dict[str, Any]:
    """The YAML file's content, its keys lower-cased; an empty file holds no setting."""
    if not config_file:
        return {}
    content = yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))
    if content is None:
        return {}
    if not isinstance(content, Mapping):
        raise ValueError(f"the file must hold sections (section: settings), not a {type(content).__name__}")
    return dict(_lower_keys(content))


def load_settings(config_file: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build validated settings or raise :class:`SettingsError` listing every problem."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(CONFIG_ENV) or None
    problems: list[str] = []
    if config_file and not Path(config_file).is_file():
        raise SettingsError([f"config file {config_file!r} (from --config or {CONFIG_ENV}) does not exist"])
    try:
        data = _read_file(config_file)
    except yaml.YAMLError as exc:  # its text quotes the file, secrets and all: only where and what
        raise SettingsError([f"cannot read configuration: {_yaml_problem(exc)}"]) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SettingsError([f"cannot read configuration: {type(exc).__name__}: {exc}"]) from None

    problems.extend(_unknown_names(data, environ))
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for option in OPTIONS:
        found, value = _lookup(data, option.path)
        try:
            from_env, env_value = _environment_value(option, environ)
        except OSError as exc:
            problems.append(f"{option.path} ({option.env}_FILE): cannot read file: {exc.strerror}")
            continue
        if from_env:
            found, value = True, env_value
        section, key = option.path.split(".", 1)
        if not found:
            values[section][key] = option.default
            continue
        try:
            values[section][key] = option.parse(value)
        except OptionError as exc:
            problems.append(f"{option.path} ({option.env}): {exc}")

    if not problems:
        problems.extend(_cross_checks(values))
    if problems:
        raise SettingsError(problems)
    built = {name: cls(**values[name]) for name, cls in SECTIONS.items()}
    return Settings(**built, config_file=config_file)


def _cross_checks(values: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    receiver = values["receiver"]
    if bool(receiver["tls_certfile"]) != bool(receiver["tls_keyfile"]):
        problems.append("receiver.tls_certfile and receiver.tls_keyfile must be set together")
    for key in ("tls_certfile", "tls_keyfile"):
        if receiver[key] and not Path(receiver[key]).is_file():
            problems.append(f"receiver.{key}: file {receiver[key]!r} does not exist")
    if values["redis"]["socket_timeout_seconds"] <= 1:
        problems.append(
            "redis.socket_timeout_seconds: must be above 1 (the worker waits for batches 1 s at a time)"
        )
    if not values["redis"]["url"].startswith(("redis://", "rediss://", "unix://")):
        problems.append("redis.url: must start with redis://, rediss:// or unix://")
    for address in values["redis"]["sentinels"]:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            problems.append(f"redis.sentinels: {address!r} is not host:port")
    tls_files = [values["redis"][k] for k in ("tls_ca_file", "tls_cert_file", "tls_key_file")]
    if (
        any(tls_files)
        and not values["redis"]["sentinels"]
        and not values["redis"]["url"].startswith("rediss://")
    ):
        problems.append("redis.tls_*: TLS needs a rediss:// redis.url (or redis.sentinels)")
    if bool(values["redis"]["tls_cert_file"]) != bool(values["redis"]["tls_key_file"]):
        problems.append("redis.tls_cert_file and redis.tls_key_file must be set together")
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        if values["redis"][key] and not Path(values["redis"][key]).is_file():
            problems.append(f"redis.{key}: file {values['redis'][key]!r} does not exist")
    problems.extend(_github_checks(values["github"]))
    problems.extend(_window_checks(values["webhook"]["dedupe_ttl_seconds"], values["github"]))
    prefix = values["metrics"]["prefix"]
    if not METRIC_PREFIX.fullmatch(prefix):
        problems.append(f"metrics.prefix: {prefix!r} is not a valid Prometheus metric name prefix")
    return problems


def _window_checks(dedupe: int, github: dict[str, Any]) -> list[str]:
    """The marks must outlive every window in which a delivery can come again."""
    return [
        f"webhook.dedupe_ttl_seconds ({dedupe}) must exceed github.{key} ({github[key]}): a delivery"
        " redelivered or reconciled after its mark expired would be counted twice"
        for key in ("redelivery_window_seconds", "reconcile_lookback_seconds")
        if github[key] >= dedupe
    ]


def _github_checks(github: dict[str, Any]) -> list[str]:
    problems = []
    url = urlsplit(github["api_url"])
    if url.scheme not in ("https", "http") or not url.hostname:
        problems.append("github.api_url: must be an https:// URL")
    elif url.scheme == "http" and not github["allow_insecure_http"] and not _loopback(url.hostname):
        problems.append(
            "github.api_url: http:// would send the token in clear: use https://, or set"
            " github.allow_insecure_http (loopback addresses need neither)"
        )
    app = bool(github["app_id"]) or bool(github["app_private_key"])
    if app and not (github["app_id"] and github["app_private_key"]):
        problems.append("github.app_id and github.app_private_key must be set together")
    if github["app_id"] and not github["app_id"].isdigit():
        problems.append(f"github.app_id: must be a number, got {github['app_id']!r}")
    if github["hooks"] and not (github["token"] or app):
        problems.append("github.hooks: needs github.token, or github.app_id and github.app_private_key")
    if github["runners"] and not (github["token"] or app):
        problems.append("github.runners: needs github.token, or github.app_id and github.app_private_key")
    enterprises = [scope for scope in github["runners"] if scope.startswith("enterprises/")]
    if enterprises and not github["token"]:
        problems.append(
            f"github.runners: {enterprises[0]} needs github.token (an App is installed on organizations)"
        )
    if "app/hook" in github["hooks"] and not app:
        problems.append(
            "github.hooks: app/hook needs the App's credentials (github.app_id, github.app_private_key)"
        )
    return problems


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secrets(settings: Settings) -> None:
    """Signature verification is mandatory: a receiver without a secret must not start."""
    if not settings.webhook.secrets:
        option = next(o for o in OPTIONS if o.path == "webhook.secrets")
        raise SettingsError(
            [f"webhook.secrets ({option.env} or {option.env}_FILE): at least one secret is required"]
        )
