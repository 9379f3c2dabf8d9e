"""``python -m shared.healthcheck``: exit 0 when this container's process answers ``/health``.

The image runs either command, so it asks the receiver's port and then the worker's (from the same
``GHA_EXPORTER_*`` variables the process reads), on loopback. Standard library only: it must be
cheap enough to run every few seconds.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def healthy(ports: list[str]) -> bool:
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            continue
    return False


def main() -> int:
    ports = [
        os.environ.get("GHA_EXPORTER_RECEIVER__PORT", "8000"),
        os.environ.get("GHA_EXPORTER_WORKER__PORT", "9100"),
    ]
    return 0 if healthy(ports) else 1


if __name__ == "__main__":
    sys.exit(main())
