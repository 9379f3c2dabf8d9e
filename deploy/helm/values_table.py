"""``python deploy/helm/values_table.py``: the table of the chart's values in its README
(``deploy/helm/gha-exporter/README.md``), made from the
``# --`` comments of ``gha-exporter/values.yaml`` (each one describes the key on the next line) and
the values themselves. A test checks that the chart's README holds what this prints."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

VALUES = Path(__file__).resolve().parent / "gha-exporter" / "values.yaml"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.]+):")


def described(text: str) -> list[tuple[str, str]]:
    """(dotted key, description) for every key under a ``# --`` comment, in the file's order."""
    found: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []  # (indent, key) of the keys enclosing the line
    pending: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = stripped.removeprefix("# --").strip()
            continue
        match = KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        path = [(i, k) for i, k in path if i < indent] + [(indent, match["key"])]
        if pending is not None:
            found.append((".".join(k for _, k in path), pending))
            pending = None
    return found


def default(values: dict[str, Any], dotted: str) -> str:
    value: Any = values
    for part in dotted.split("."):
        value = value[part]
    return json.dumps(value, separators=(", ", ": "))


def table() -> str:
    text = VALUES.read_text()
    values = yaml.safe_load(text)
    rows = ["| value | default | what it is |", "|---|---|---|"]
    for dotted, description in described(text):
        rows.append(f"| `{dotted}` | `{default(values, dotted)}` | {description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
