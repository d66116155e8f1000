"""The accounting invariant: produced = processed + dead-lettered + still queued.

Delivery is at-least-once, so a message may be processed twice (a worker died
after producing its result but before committing). Duplicates are counted and
reported, never dropped, and never hide a lost message: the check counts
distinct message ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass


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
    produced: int, processed_ids: Iterable[str], dead_ids: Iterable[str], still_queued: int
) -> Accounting:
    """Check every produced message is processed, dead-lettered or still in the queue."""
    processed_counts = Counter(processed_ids)
    dead = set(dead_ids) - set(processed_counts)
    records = sum(processed_counts.values())
    unique = len(processed_counts)
    lost = max(0, produced - unique - len(dead) - still_queued)
    return Accounting(
        produced=produced,
        processed=unique,
        processed_records=records,
        duplicates=records - unique,
        dead_lettered=len(dead),
        still_queued=still_queued,
        lost=lost,
    )
