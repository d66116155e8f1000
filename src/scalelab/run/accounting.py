"""The accounting invariant: produced = processed + dead-lettered + still queued.

It counts this run's messages only. `produced` is the input topic's growth
since the offsets recorded at the run's start (an earlier run's messages on a
reused topic are not ours), and every id is run-scoped (`<run_id>:<seq>`), so
records of another run in the output or dead-letter topic are left out.

Delivery is at-least-once, so a message may be processed twice (a worker died
after producing its result but before committing). Duplicates are counted and
reported, never dropped, and never hide a lost message: the check counts
distinct message ids. For the same reason "still queued" is the set of ids in
the input topic's uncommitted tail that nobody processed or dead-lettered: a
message processed but not yet committed is processed, not also queued, so it
cannot cover a loss elsewhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass


def message_id(run_id: str, seq: int) -> str:
    """The run-scoped id of a message: producer key, qos `id`, dead-letter key."""
    return f"{run_id}:{seq}"


def of_run(ids: Iterable[str], run_id: str) -> list[str]:
    """The ids that belong to this run (another run's records share reused topics)."""
    prefix = f"{run_id}:"
    return [i for i in ids if i.startswith(prefix)]


def produced_since(start: Mapping[int, int], ends: Mapping[int, int]) -> int:
    """Messages written to a topic since the start offsets, summed over its partitions."""
    return sum(max(0, end - start.get(p, 0)) for p, end in ends.items())


@dataclass(frozen=True)
class Accounting:
    produced: int
    processed: int
    processed_records: int
    duplicates: int
    dead_lettered: int
    still_queued: int
    lost: int

    @property
    def ok(self) -> bool:
        return self.lost == 0

    def to_dict(self) -> dict[str, int | bool]:
        return {**asdict(self), "ok": self.ok}


def account(
    produced: int,
    processed_ids: Iterable[str],
    dead_ids: Iterable[str],
    queued_ids: Iterable[str],
    queued_unread: int = 0,
) -> Accounting:
    """Check every produced message is processed, dead-lettered or still waiting.

    `queued_ids` are the ids in the uncommitted part of the input topic; only
    those nobody processed or dead-lettered count as still queued.
    `queued_unread` counts tail messages placed by offset instead (a tail too
    large to read; see `unprocessed_in_tail`).
    """
    processed_counts = Counter(processed_ids)
    dead = set(dead_ids) - set(processed_counts)
    queued = len(set(queued_ids) - set(processed_counts) - dead) + queued_unread
    records = sum(processed_counts.values())
    unique = len(processed_counts)
    lost = max(0, produced - unique - len(dead) - queued)
    return Accounting(
        produced=produced,
        processed=unique,
        processed_records=records,
        duplicates=records - unique,
        dead_lettered=len(dead),
        still_queued=queued,
        lost=lost,
    )


def unprocessed_in_tail(
    tail: Mapping[int, tuple[int, int]], processed_at: Iterable[tuple[int, int]]
) -> int:
    """Messages in the uncommitted tail ([first, end) per partition) that no processed record
    came from, by (partition, offset). Used when the tail is too large to read its keys;
    a dead-lettered message in it is then counted as queued too."""
    inside = {(p, o) for p, o in processed_at if p in tail and tail[p][0] <= o < tail[p][1]}
    return sum(end - first for first, end in tail.values()) - len(inside)
