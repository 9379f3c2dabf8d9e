"""Stand-ins for the official images this project's deployment files name (``python``, ``redis``,
``haproxy``, ``prom/prometheus``), built from Debian's packages, because no container registry is
reachable from these machines.

A Debian root file system made with ``debootstrap`` (minimal, with the CA certificates) and imported
is the base of each; the host's CA bundle is added to it, as a build behind a corporate proxy that
inspects TLS would need, so that pip and apt inside the builds trust what the host trusts. Each
stand-in is then built from its Containerfile beside this file. Every image is named after a hash of
what made it (the recipe, the Containerfile, the host's CA bundle) under
``localhost/gha-exporter-standin/``, never an official name, and built only when that name is not in
the engine's storage: later runs on the same machine reuse them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.containers.engine import Engine

HERE = Path(__file__).resolve().parent / "standin"
SUITE = "bookworm"  # the official slim images' Debian
MIRROR = os.environ.get("GHA_EXPORTER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PREFIX = "localhost/gha-exporter-standin"
NAMES = ("python", "redis", "haproxy", "prometheus")


def digest(*parts: bytes | str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode() if isinstance(part, str) else part)
        hasher.update(b"\0")
    return hasher.hexdigest()[:12]


def host_ca_bundle() -> bytes:
    return HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else b""


def debian_base(engine: Engine) -> str:
    """The imported Debian base, made once per recipe and host CA bundle."""
    ca_bundle = host_ca_bundle()
    name = f"{PREFIX}/debian:{SUITE}-{digest(SUITE, MIRROR, 'minbase', 'ca-certificates', ca_bundle)}"
    if engine.image_exists(name):
        return name
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    with tempfile.TemporaryDirectory(prefix="standin-") as work:
        rootfs = Path(work) / "rootfs"
        subprocess.run(
            [debootstrap, "--variant=minbase", "--include=ca-certificates", SUITE, str(rootfs), MIRROR],
            check=True,
            capture_output=True,
            timeout=900,
        )
        if ca_bundle:
            (rootfs / "usr/local/share/ca-certificates/host-ca-bundle.crt").write_bytes(ca_bundle)
            subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], check=True, capture_output=True)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        archive = Path(work) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True, timeout=300)
        engine.run("import", "--change", 'CMD ["bash"]', str(archive), name)
    return name


def standin(engine: Engine, which: str) -> str:
    """The stand-in image for ``which`` (one of :data:`NAMES`), built if missing."""
    base = debian_base(engine)
    containerfile = HERE / f"{which}.Containerfile"
    name = f"{PREFIX}/{which}:{digest(base, containerfile.read_bytes())}"
    if not engine.image_exists(name):
        engine.run(
            "build", "--format", "docker", "--build-arg", f"DEBIAN={base}",
            "-f", str(containerfile), "-t", name, str(HERE), timeout=900,
        )  # fmt: skip
    return name


def missing_tools() -> str:
    """Why the stand-ins cannot be built here, or ''."""
    if not (shutil.which("debootstrap") or Path("/usr/sbin/debootstrap").exists()):
        return "debootstrap is not installed (.ci/run installs Debian's debootstrap)"
    return ""
