"""``python -m stack`` (or ``python3 dev.py up``): the whole system on this machine.

Starts a Redis server keeping its data (AOF) in ``.data/redis`` so queued deliveries survive a
restart, then ``python -m receiver`` and ``python -m worker`` configured for it; prints the URLs
and the webhook secret; on Ctrl-C or SIGTERM stops the two processes, then Redis. The secret is
``$GHA_EXPORTER_WEBHOOK__SECRETS`` (or ``_FILE``) when set, shown only by a fingerprint, else one
generated once into ``.data/webhook-secret`` and printed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from stack.redis_server import RedisServer, RedisServerError

SECRETS = "GHA_EXPORTER_WEBHOOK__SECRETS"
SECRETS_FILE = f"{SECRETS}_FILE"


def webhook_secret(data_dir: Path, environ: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The environment the processes need for the webhook secret, and what to print of it.

    A secret the user set (``$GHA_EXPORTER_WEBHOOK__SECRETS`` or ``_FILE``) is passed on as it is
    and shown only by a fingerprint: it may be the production one, and terminals are recorded. Else
    one is generated once into ``.data/webhook-secret`` and printed, to be pasted into GitHub."""
    if environ.get(SECRETS):
        digest = hashlib.sha256(environ[SECRETS].encode()).hexdigest()[:12]
        return {}, f"yours, from ${SECRETS} (sha256 {digest}...)"
    if environ.get(SECRETS_FILE):
        return {}, f"yours, read from {environ[SECRETS_FILE]}"
    path = data_dir / "webhook-secret"
    if not path.exists():
        path.write_text(secrets.token_hex(20) + "\n")
    path.chmod(0o600)
    return {SECRETS_FILE: str(path.resolve())}, f"{path.read_text().strip()}   (kept in {path})"


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address of the receiver and /metrics")
    parser.add_argument("--receiver-port", type=int, default=8000)
    parser.add_argument("--worker-port", type=int, default=9100)
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    args = parser.parse_args(argv)

    args.data_dir.mkdir(parents=True, exist_ok=True)
    secret_env, secret_shown = webhook_secret(args.data_dir, os.environ)
    redis = RedisServer(args.data_dir / "redis", port=args.redis_port, log_file=args.data_dir / "redis.log")
    try:
        redis.start()
    except RedisServerError as exc:
        print(f"cannot start Redis: {exc}", file=sys.stderr)  # noqa: T201
        return 1

    env = dict(os.environ)
    env.update(secret_env)
    env.update(
        {
            "GHA_EXPORTER_REDIS__URL": redis.url,
            "GHA_EXPORTER_RECEIVER__HOST": args.host,
            "GHA_EXPORTER_RECEIVER__PORT": str(args.receiver_port),
            "GHA_EXPORTER_WORKER__HOST": args.host,
            "GHA_EXPORTER_WORKER__PORT": str(args.worker_port),
        }
    )
    processes = {
        # own sessions: a Ctrl-C reaches only this process, which stops them in order
        name: subprocess.Popen([sys.executable, "-m", name], env=env, start_new_session=True)
        for name in ("receiver", "worker")
    }
    base = f"http://{args.host}:"
    stopping = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    code = 0
    try:
        ready = wait_http(f"{base}{args.receiver_port}/ready", processes["receiver"]) and wait_http(
            f"{base}{args.worker_port}/health", processes["worker"]
        )
        if not ready:
            print("the receiver or the worker did not come up; see the log above", file=sys.stderr)  # noqa: T201
            return 1
        print(  # noqa: T201
            "\ngha-exporter is running\n"
            f"  webhook URL     {base}{args.receiver_port}/webhook   (content type application/json)\n"
            f"  webhook secret  {secret_shown}\n"
            f"  in-flight page  {base}{args.worker_port}/\n"
            f"  worker metrics  {base}{args.worker_port}/metrics\n"
            f"  receiver        {base}{args.receiver_port}/metrics\n"
            f"  redis           {redis.url}   (data in {redis.data_dir})\n"
            "send a signed sample run:  python3 dev.py send-sample\n"
            "stop with Ctrl-C\n",
            flush=True,
        )
        while not stopping.wait(0.5):
            dead = [name for name, p in processes.items() if p.poll() is not None]
            if dead:
                print(f"{', '.join(dead)} exited unexpectedly; stopping", file=sys.stderr)  # noqa: T201
                code = 1
                break
    finally:
        for process in processes.values():
            stop_process(process)
        redis.stop()
        print("gha-exporter stopped", flush=True)  # noqa: T201
    return code


if __name__ == "__main__":
    sys.exit(main())
