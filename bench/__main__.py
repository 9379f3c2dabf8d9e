"""``python -m bench``: run every benchmark, or the ones named (``python -m bench worker_processing``)."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable

from bench import (
    api_load,
    backlog,
    burst,
    inflight_api,
    long_labels,
    receiver,
    runners,
    scrape,
    slow_clients,
    soak,
    traces,
    worker_drain,
    worker_processing,
)

BENCHMARKS: dict[str, Callable[[], object]] = {
    "receiver": receiver.main,
    "worker_drain": worker_drain.main,
    "burst": burst.main,
    "scrape": scrape.main,
    "worker_processing": worker_processing.main,
    "slow_clients": slow_clients.main,
    "long_labels": long_labels.main,
    "inflight_api": inflight_api.main,
    "backlog": backlog.main,
    "api_load": api_load.main,
    "traces": traces.main,
    "runners": runners.main,
}
# run only when named, with its own arguments: ``python -m bench soak [MINUTES] [RATE]``
BY_NAME_ONLY: dict[str, Callable[[list[str]], object]] = {"soak": soak.main}


def main(names: list[str]) -> int:
    machine = f"{platform.machine()} cpus={os.cpu_count()} python={platform.python_version()}"
    print(f"machine {machine}")  # noqa: T201 - a benchmark prints its figures
    if names and names[0] in BY_NAME_ONLY:
        BY_NAME_ONLY[names[0]](names[1:])
        return 0
    for name in names or list(BENCHMARKS):
        BENCHMARKS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
