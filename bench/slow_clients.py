"""Slow clients: how many connections trickling their headers a receiver survives while still
answering real deliveries (each sent once, no redelivery). Uses the fault suite's cluster."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.cluster import Cluster
from bench.slowloris import real_deliveries_under_slow_clients

LEVELS = (0, 100, 500, 900, 1100, 2000)


def main() -> list[dict[str, object]]:
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(Path(workdir), receivers=1, workers=1).start()
        try:
            for slow in LEVELS:
                result = real_deliveries_under_slow_clients(cluster.receiver_ports[0], slow)
                print(f"slow_clients {result}")  # noqa: T201 - a benchmark prints its figures
                results.append(result)
        finally:
            cluster.shutdown()
    return results


if __name__ == "__main__":
    main()
