"""``python -m stack.sample``: post signed sample deliveries, as GitHub would, to a receiver.

By default it sends the bundled real run (``stack/samples``) to the local stack, signed with the
secret the stack keeps in ``.data/webhook-secret``. Give files to send others; a file's event is
read from its name (``workflow_job`` or ``workflow_run``) or given with ``--event``.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

from shared.signing import sign

SAMPLES = Path(__file__).parent / "samples"
DEFAULT_SECRET_FILE = Path(".data") / "webhook-secret"


def event_of(path: Path, given: str | None) -> str:
    if given:
        return given
    for event in ("workflow_job", "workflow_run", "ping"):
        if event in path.name or event in str(path.parent.name):
            return event
    raise SystemExit(f"cannot tell the event of {path}; pass --event")


def post(url: str, secret: str, event: str, body: bytes, hook_id: str = "1") -> tuple[int, str]:
    request = urllib.request.Request(  # noqa: S310 - the URL is the user's receiver
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/gha-exporter-sample",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-ID": hook_id,
            "X-Hub-Signature-256": sign(secret, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:  # an error response still holds its connection
            return exc.code, exc.read().decode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="send-sample", description=__doc__)
    parser.add_argument("files", nargs="*", type=Path, help="payload files (default: the bundled run)")
    parser.add_argument("--url", default="http://127.0.0.1:8000/webhook")
    parser.add_argument("--secret", help="webhook secret (default: $GHA_EXPORTER_WEBHOOK__SECRETS or .data)")
    parser.add_argument("--event", help="X-GitHub-Event for every file")
    args = parser.parse_args(argv)
    secret = args.secret or os.environ.get("GHA_EXPORTER_WEBHOOK__SECRETS")
    if not secret and DEFAULT_SECRET_FILE.is_file():
        secret = DEFAULT_SECRET_FILE.read_text().strip()
    if not secret:
        print("no secret: pass --secret, or start the stack first (python3 dev.py up)", file=sys.stderr)  # noqa: T201
        return 2
    files = args.files or sorted(SAMPLES.glob("*.json"), key=lambda p: int(p.name.split("-")[0]))
    failed = 0
    for path in files:
        event = event_of(path, args.event)
        try:
            status, answer = post(args.url, secret, event, path.read_bytes())
        except OSError as exc:
            print(f"cannot reach {args.url}: {exc}", file=sys.stderr)  # noqa: T201
            return 1
        failed += status >= 300
        print(f"{status} {event:<13} {path.name}: {answer}")  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
