"""Arrival rate, lag and the consumer group's state, straight from the broker's offsets.

The autoscaler has its own clients (it may run in its own thread); the arrival rate
is the growth of the input topics' end offsets between two reads (a job may read several:
the Flink join's two sensor topics), the lag their sum.
"""

from __future__ import annotations

import math
import time

from scalelab.run import kafka_ops


class KafkaProbe:
    def __init__(self, bootstrap: str, group: str, topic: str, more_topics: tuple[str, ...] = ()):
        self.topic = topic
        self.topics = (topic, *more_topics)
        self.group = group
        self.offsets = kafka_ops.OffsetReader(bootstrap, group)
        self.admin = kafka_ops.admin(bootstrap)
        self._last: tuple[float, int] | None = None

    def read(self) -> tuple[float, float]:
        """(arrival rate since the previous read, lag) in messages/s and messages."""
        lag, total = 0.0, 0
        for topic in self.topics:
            ends = self.offsets.end_offsets(topic)
            lag += self.offsets.lag(topic, ends)
            total += sum(ends.values())
        now = time.monotonic()
        rate = math.nan
        if self._last is not None and now > self._last[0]:
            rate = max(0.0, (total - self._last[1]) / (now - self._last[0]))
        self._last = (now, total)
        return rate, lag

    def group_state(self) -> tuple[int, int]:
        """(members, partitions assigned) of the workers' group."""
        return kafka_ops.group_members(self.admin, self.group)

    def close(self) -> None:
        try:
            self.offsets.close()
        finally:
            self.admin.close()
