"""The frame source base: pre-encoded frames cycled forever, some replaced by garbage on purpose."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import cycle

import numpy as np

CORRUPT_MAGIC = b"SLBAD1"
"""Prefix of a corrupted message: no image format and not the raw-frame header."""

_BATCH = 1024


def corrupt_bytes(sequence: int, length: int) -> bytes:
    """Deterministic undecodable bytes of `length` (at least 16) for message `sequence`."""
    head = CORRUPT_MAGIC + sequence.to_bytes(8, "little")
    return head + bytes(max(length - len(head), 2))


class FrameSource:
    """Encoded frames, encoded once, cycled forever by `frames()`.

    With a `corrupt_fraction` above 0, each message is replaced, with that
    probability and from a generator seeded by `seed`, by bytes `decode_frame`
    rejects and of the same length as the frame it replaces, so the same
    spec corrupts the same messages on every run.
    """

    def __init__(
        self, encoded: Sequence[bytes], source_id: str, corrupt_fraction: float = 0.0, seed: int = 0
    ):
        if not encoded:
            raise ValueError(f"{source_id}: a frame source needs at least one frame")
        self.encoded = list(encoded)
        self.mean_frame_bytes = float(np.mean([len(frame) for frame in self.encoded]))
        """Mean size of an encoded frame (to turn MB/s into messages/s)."""
        self.source_id = source_id
        self.corrupt_fraction = corrupt_fraction
        self.seed = seed

    def __len__(self) -> int:
        return len(self.encoded)

    def frames(self) -> Iterator[bytes]:
        """Every message's bytes, forever, from the first frame.

        Each call returns an independent iterator (one per producer thread).
        """
        if self.corrupt_fraction <= 0:
            return cycle(self.encoded)
        return self._with_corruption()

    def _with_corruption(self) -> Iterator[bytes]:
        for sequence, corrupt in enumerate(self._corrupt_flags()):
            frame = self.encoded[sequence % len(self.encoded)]
            yield corrupt_bytes(sequence, len(frame)) if corrupt else frame

    def _corrupt_flags(self) -> Iterator[bool]:
        rng = np.random.default_rng([self.seed, 0xC0_77_0B])
        while True:
            yield from (rng.random(_BATCH) < self.corrupt_fraction).tolist()
