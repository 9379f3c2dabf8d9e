"""The runners' families at scrape time, from the inventory the poll keeps in Redis and the queued
jobs of the in-flight sets (identical on every replica):

- ``runners{state, runner_group, os}``: the polled runners (``idle``, ``busy``, ``offline``);
- ``runner_label_sets{labels}``: runners per label set (sorted, case folded, joined by ``,``);
- ``jobs_queued_unmatched{runs_on}``: queued jobs that no online runner could take;
- ``jobs_queued_saturated{runs_on}``: queued jobs whose matching online runners are all busy;
- ``runners_polled_timestamp_seconds{scope}``: when each scope's reading was made.

The queued jobs' families hold a series for each ``runs_on`` judged (:mod:`worker.runner_match`),
0 when runners could take them. Label values come from GitHub's API, so the two runner families
keep at most ``metrics.max_series_per_family`` series, the rest summed under ``__overflow__``.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from worker import codec
from worker.codec import JobGroup
from worker.inflight import Inflight
from worker.metrics import (
    JOBS_QUEUED_SATURATED,
    JOBS_QUEUED_UNMATCHED,
    OVERFLOW,
    RUNNER_LABEL_SETS,
    RUNNERS,
    RUNNERS_POLLED,
    ScrapeFamily,
)
from worker.runner_inventory import Polled
from worker.runner_match import Matcher
from worker.textformat import number, sample

if TYPE_CHECKING:
    from worker.stored_families import Block

Counts = dict[tuple[str, ...], float]


def folded(counts: Counts, limit: int) -> Counts:
    """``counts`` with at most ``limit`` series: the largest kept, the rest summed under
    ``__overflow__`` (ties by label values, so every replica folds alike)."""
    if len(counts) <= limit:
        return counts
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[: limit - 1])
    width = len(ranked[0][0])
    kept[(OVERFLOW,) * width] = kept.get((OVERFLOW,) * width, 0.0) + sum(v for _, v in ranked[limit - 1 :])
    return kept


@functools.lru_cache(maxsize=4096)  # runners share a few label sets
def label_set(labels: tuple[str, ...]) -> str:
    """A runner's labels as one label value: sorted, case folded, joined by ``,``."""
    return ",".join(sorted({label.casefold() for label in labels}))


def runner_blocks(
    polled: Sequence[Polled], inflight: Inflight, limit: int, block_of: Callable[[ScrapeFamily], Block]
) -> list[Block]:
    states: Counts = defaultdict(float)
    sets: Counts = defaultdict(float)
    for reading in polled:
        for runner in reading.runners:
            states[runner.state, runner.group, runner.os] += 1
            sets[(label_set(runner.labels),)] += 1
    blocks = [
        _block(block_of(RUNNERS), ("state", "runner_group", "os"), folded(states, limit)),
        _block(block_of(RUNNER_LABEL_SETS), ("labels",), folded(sets, limit)),
    ]
    unmatched: Counts = defaultdict(float)
    saturated: Counts = defaultdict(float)
    if polled:
        matcher = Matcher([(reading.scope, reading.runners) for reading in polled])
        for found in inflight.groups("job", "queued"):
            group = found.group
            if not isinstance(group, JobGroup) or group.runs_on == OVERFLOW:
                continue
            if not matcher.judges(group.repository, group.runs_on):
                continue
            match = matcher.match(group.repository, group.runs_on)
            key = (group.runs_on,)
            unmatched[key] += found.attempts if match.online == 0 else 0
            saturated[key] += found.attempts if match.online and not match.idle else 0
    blocks.append(_block(block_of(JOBS_QUEUED_UNMATCHED), ("runs_on",), unmatched))
    blocks.append(_block(block_of(JOBS_QUEUED_SATURATED), ("runs_on",), saturated))
    polled_at: Counts = {(reading.scope,): reading.at for reading in polled}
    blocks.append(_block(block_of(RUNNERS_POLLED), ("scope",), polled_at))
    return blocks


def _block(block: Block, names: tuple[str, ...], counts: Counts) -> Block:
    for values, value in sorted(counts.items()):
        block.lines.append(sample(block.name, codec.label_text(names, values), number(value)))
    return block
