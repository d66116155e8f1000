"""Collect items into batches for the worker loop.

A batch is due when it holds ``batch_size`` items or when ``max_wait`` seconds
have passed since its first item arrived, whichever comes first, so a slow
trickle of messages is never held back longer than ``max_wait``. The clock is
injectable so that tests need not sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    """Accumulates items; ``add`` and ``poll`` hand back a batch once it is due."""

    def __init__(self, batch_size: int, max_wait: float, now: Callable[[], float] = time.monotonic):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_wait < 0:
            raise ValueError(f"max_wait must not be negative, got {max_wait}")
        self.batch_size = batch_size
        self.max_wait = max_wait
        self._now = now
        self._items: list[T] = []
        self._first_at = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T) -> list[T] | None:
        """Add ``item``; return the batch if that made it due, else None."""
        if not self._items:
            self._first_at = self._now()
        self._items.append(item)
        return self.poll()

    def poll(self) -> list[T] | None:
        """Return the pending batch if it is full or has waited ``max_wait``, else None."""
        if self._items and (len(self._items) >= self.batch_size or self.time_left() == 0.0):
            return self.flush()
        return None

    def time_left(self) -> float | None:
        """Seconds until the pending batch is due by time (0.0 when due); None when empty.

        The worker uses it as its consumer poll timeout.
        """
        if not self._items:
            return None
        return max(0.0, self._first_at + self.max_wait - self._now())

    def flush(self) -> list[T]:
        """Hand back whatever is pending (possibly nothing), e.g. at shutdown."""
        items, self._items = self._items, []
        return items
