"""Frame sources keyed by the spec's `kind`: what the producer sends as message values.

Every source encodes its frames once, at start, and cycles them forever with
`frames()`; `mean_frame_bytes` turns MB/s into messages per second and
`source_id` goes into every message's headers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scalelab.load.config import SourceSpec
from scalelab.load.files import DirectorySource, VideoSource, probe_directory, probe_video
from scalelab.load.frames import CORRUPT_MAGIC, FrameSource, corrupt_bytes
from scalelab.load.hdf5 import Hdf5Source, probe_hdf5
from scalelab.load.synthetic import SyntheticSource

SOURCES: dict[str, Callable[..., FrameSource]] = {
    "synthetic": SyntheticSource,
    "directory": DirectorySource,
    "video": VideoSource,
    "hdf5": Hdf5Source,
}
"""Frame source classes keyed by the spec's `kind`; each takes (spec, base_dir)."""


PROBES: dict[str, Callable[..., None]] = {
    "synthetic": lambda spec, base_dir: None,
    "directory": probe_directory,
    "video": probe_video,
    "hdf5": probe_hdf5,
}
"""Quick checks that a source can give frames, keyed like SOURCES; each raises SourceError."""


def make_source(spec: SourceSpec, base_dir: Path | str | None = None) -> FrameSource:
    """The source for a `source:` spec; relative paths resolve against `base_dir`."""
    source: FrameSource = SOURCES[spec.kind](spec, base_dir)
    return source


def probe_source(spec: SourceSpec, base_dir: Path | str | None = None) -> None:
    """Check, without reading every frame, that `make_source` would succeed.

    Building a source reads up to `max_frames` files; this opens the path and
    decodes a few frames with the same code, so a bad path fails `validate`
    and `run` in milliseconds instead of after the stack has started.
    """
    PROBES[spec.kind](spec, base_dir)


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
    "probe_source",
]
