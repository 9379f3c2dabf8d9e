"""What an option is, and the parsers of its values.

Each option is declared once, as a field of its section's dataclass in :mod:`shared.settings`
(``option(parser, default, help)``); its type there is the setting's type. From that one declaration
follow the loader's validation and defaults, the environment variable's name, and the README's
configuration reference (``python -m shared.settings``).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from typing import Any, get_args, get_origin, get_type_hints

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


OPTION = "gha_exporter_option"  # the key of a field's metadata that declares it an option


@dataclass(frozen=True)
class Option:
    path: str
    parse: Parser
    default: Any
    reload: bool
    help: str
    secret: bool
    kind: str

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}_{self.path.replace('.', '__').upper()}"


def option(parse: Parser, default: Any, help: str, *, reload: bool = False, secret: bool = False) -> Any:
    """A section's field, declared as an option: how its value is parsed, its default, what it does,
    whether a reload applies it; a secret's value is left out of the section's repr."""
    spec = {"parse": parse, "default": default, "help": help, "reload": reload, "secret": secret}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={OPTION: spec}, repr=not secret)
    return field(default=default, metadata={OPTION: spec}, repr=not secret)


def options_of(section: str, cls: type[Any]) -> tuple[Option, ...]:
    """The options a section's dataclass declares, in their order."""
    hints = get_type_hints(cls)
    declared: list[Field[Any]] = [f for f in fields(cls) if OPTION in f.metadata]
    return tuple(
        Option(path=f"{section}.{f.name}", kind=_kind(hints[f.name]), **f.metadata[OPTION]) for f in declared
    )


def _kind(hint: Any) -> str:
    """The option's type as the reference names it."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple:
        return "list of numbers" if args[0] is float else "list of strings"
    if origin is dict:
        return "mapping"
    if origin is types.UnionType:  # X | None
        return _kind(next(a for a in args if a is not type(None)))
    return {bool: "boolean", int: "integer", float: "number"}.get(hint, "string")


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


def _api_paths(value: Any, pattern: re.Pattern[str], what: str, forms: str) -> tuple[str, ...]:
    """Distinct paths of GitHub's REST API, each of ``pattern`` (``what`` they name, their ``forms``)."""
    paths = tuple(item.strip().strip("/") for item in text_list(value))
    for path in paths:
        if not pattern.fullmatch(path):
            raise OptionError(f"{path!r} is not {what}: {forms}")
    if len(set(paths)) != len(paths):
        raise OptionError("names one twice")
    return paths


def hook_paths(value: Any) -> tuple[str, ...]:
    """GitHub webhooks named by their REST API path: ``repos/OWNER/REPO/hooks/ID``,
    ``orgs/ORG/hooks/ID`` or ``app/hook``."""
    return _api_paths(
        value, HOOK_PATH, "a hook's API path", "repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID or app/hook"
    )


RUNNER_SCOPE = re.compile(
    r"repos/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+|orgs/[A-Za-z0-9_.-]+|enterprises/[A-Za-z0-9_.-]+"
)


def runner_scopes(value: Any) -> tuple[str, ...]:
    """Where self-hosted runners are registered, as GitHub's REST API names it: ``orgs/ORG``,
    ``repos/OWNER/REPO`` or ``enterprises/ENTERPRISE``."""
    return _api_paths(
        value, RUNNER_SCOPE, "a runners' scope", "orgs/ORG, repos/OWNER/REPO or enterprises/ENTERPRISE"
    )


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


def reference_markdown(options: tuple[Option, ...]) -> str:
    """The README's configuration reference: a Markdown table of ``options``."""
    rows = [
        "| key | environment variable | type | default | on change | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for option in options:
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
