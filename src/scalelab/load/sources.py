"""Frame sources keyed by the spec's `kind`: what the producer sends as message values.

Every source encodes its frames once, at start, and cycles them forever with
`frames()`; `mean_frame_bytes` turns MB/s into messages per second and
`source_id` goes into every message's headers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scalelab.load.config import SourceSpec
from scalelab.load.files import DirectorySource, VideoSource
from scalelab.load.frames import CORRUPT_MAGIC, FrameSource, corrupt_bytes
from scalelab.load.hdf5 import Hdf5Source
from scalelab.load.synthetic import SyntheticSource

SOURCES: dict[str, Callable[..., FrameSource]] = {
    "synthetic": SyntheticSource,
    "directory": DirectorySource,
    "video": VideoSource,
    "hdf5": Hdf5Source,
}
"""Frame source classes keyed by the spec's `kind`; each takes (spec, base_dir)."""


def make_source(spec: SourceSpec, base_dir: Path | str | None = None) -> FrameSource:
    """The source for a `source:` spec; relative paths resolve against `base_dir`."""
    source: FrameSource = SOURCES[spec.kind](spec, base_dir)
    return source


__all__ = [
    "CORRUPT_MAGIC",
    "SOURCES",
    "DirectorySource",
    "FrameSource",
    "Hdf5Source",
    "SyntheticSource",
    "VideoSource",
    "corrupt_bytes",
    "make_source",
]
