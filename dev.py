#!/usr/bin/env python3
"""One entry point from a fresh clone, needing only Python 3.11+.

    python3 dev.py up            # embedded Redis + receiver + worker on this machine
    python3 dev.py test          # lint, format, types, import boundaries, then pytest
    python3 dev.py send-sample   # post signed sample deliveries to the running system
    python3 dev.py bench [NAME]  # the benchmarks in bench/ (all, or the ones named)
    python3 dev.py setup         # only create/refresh the virtual environment

It creates `.venv` beside this file (or $GHA_EXPORTER_VENV), installs the project into it when
pyproject.toml changed, and runs the real command inside it. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def venv_dir() -> Path:
    return Path(os.environ.get("GHA_EXPORTER_VENV", ROOT / ".venv"))


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def ensure_venv(extras: str) -> Path:
    """Create the venv and (re)install the project when pyproject.toml or the extras changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file must run on any python3 to say so
        sys.exit(f"gha-exporter needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    python = venv_python()
    if not python.exists():
        print(f"creating virtual environment in {venv_dir()}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir())
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() + f":{extras}"
    stamp = venv_dir() / ".gha-exporter-installed"
    installed = stamp.read_text().split() if stamp.exists() else []
    if wanted not in installed and f"{wanted.split(':')[0]}:dev" not in installed:
        target = f"{ROOT}[{extras}]" if extras else str(ROOT)
        print(f"installing gha-exporter ({extras or 'runtime'}) into {venv_dir()}", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target],
            check=True,
        )
        stamp.write_text(wanted + "\n")
    return python


def run_checks(python: Path, pytest_args: list[str]) -> int:
    bindir = python.parent
    steps: list[tuple[str, list[str]]] = [
        ("ruff check", [str(bindir / "ruff"), "check", "."]),
        ("ruff format", [str(bindir / "ruff"), "format", "--check", "."]),
        ("mypy", [str(bindir / "mypy")]),
        ("import boundaries", [str(bindir / "lint-imports")]),
        ("pytest", [str(python), "-m", "pytest", *pytest_args]),
    ]
    for name, command in steps:
        print(f"\n=== {name}: {' '.join(command[1:]) or command[0]}", flush=True)
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        if code != 0:
            print(f"\n=== {name} failed (exit {code})", flush=True)
            return code
    return 0


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "setup":
        ensure_venv("dev")
        return 0
    if command == "test":
        return run_checks(ensure_venv("dev"), rest)
    if command == "up":
        python = ensure_venv("")
        os.chdir(ROOT)
        os.execv(python, [str(python), "-m", "stack", *rest])
    if command == "bench":
        python = ensure_venv("dev")
        os.chdir(ROOT)
        os.execv(python, [str(python), "-m", "bench", *rest])
    if command == "send-sample":
        python = ensure_venv("")
        os.chdir(ROOT)
        os.execv(python, [str(python), "-m", "stack.sample", *rest])
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
