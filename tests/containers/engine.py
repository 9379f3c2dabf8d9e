"""The container engine the tests drive: Podman (Debian's package, as root), the engine these machines
can run. Docker's CLI takes the same commands; the tests use Podman's because no Docker engine runs
here.

Podman's default limits for a container (1,048,576 open files, 4,194,304 processes) are above what
this machine lets a process raise itself to, and runc then refuses to start any container
("error setting rlimit type 7"). The engine is given a ``containers.conf`` of its own
(``CONTAINERS_CONF``) whose defaults are the host's own limits. Proxy variables pass through to
builds and containers as Podman and Docker pass them by default.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "containers"


def host_limits() -> list[str]:
    """The host's open-files and processes limits, as containers.conf ``default_ulimits``."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    return [f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}"]


def command(
    program: str, *args: str, env: dict[str, str], timeout: float = 300, check: bool = True, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run ``program`` (the engine, or a compose tool driving it); with ``check``, a failure raises
    with its output."""
    result = subprocess.run(
        [program, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        name = Path(program).name
        raise AssertionError(
            f"{name} {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


@dataclass
class Engine:
    """``podman`` with the tests' configuration; ``run`` raises with the output on failure."""

    podman: str
    env: dict[str, str] = field(default_factory=dict, repr=False)  # the environment: never printed

    def run(
        self, *args: str, timeout: float = 300, check: bool = True, cwd: Path = ROOT
    ) -> subprocess.CompletedProcess[str]:
        return command(self.podman, *args, env=self.env, timeout=timeout, check=check, cwd=cwd)

    def image_exists(self, name: str) -> bool:
        return self.run("image", "exists", name, check=False).returncode == 0


def find_engine() -> tuple[Engine | None, str]:
    """The engine, or None and why not (the reason a skipped test gives)."""
    podman = shutil.which("podman")
    if podman is None:
        return None, "no container engine: podman is not installed (.ci/run installs Debian's podman)"
    if os.geteuid() != 0:
        return None, "the container tests run Podman as root (as .ci/run does); this is not root"
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    limits = ", ".join(f'"{limit}"' for limit in host_limits())
    conf.write_text(f"[containers]\ndefault_ulimits = [{limits}]\n")
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    engine = Engine(podman, env)
    probe = engine.run("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    if probe.returncode != 0:
        return None, f"podman cannot run here: {probe.stderr.strip()[:300]}"
    return engine, ""
