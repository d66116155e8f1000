"""Spec models of the frame source (`source:`), a union keyed by `kind` as in `sources.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _SourceCommon(_Strict):
    encoding: Literal["jpeg", "raw"] = Field(
        "jpeg", description="Encoding on the wire: JPEG, or raw uint8 pixels with a small header."
    )
    quality: int = Field(85, ge=1, le=100, description="JPEG quality (1-100).")
    corrupt_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fraction of messages replaced by undecodable bytes, to exercise the "
        "dead-letter path.",
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**63 - 1,
        description="Seed of the corrupted-message choice (and of synthetic frames).",
    )


class _FileSource(_SourceCommon):
    path: Path = Field(
        description="File or directory; a relative path is resolved against the spec "
        "file's directory."
    )
    max_frames: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="At most this many frames are read, encoded once and kept in memory.",
    )


class SyntheticSpec(_SourceCommon):
    """Generated frames: gradients, shapes, texture and mild noise."""

    kind: Literal["synthetic"] = Field(description="Source: generated frames.")
    width: int = Field(640, ge=16, le=8192, description="Frame width in pixels.")
    height: int = Field(480, ge=16, le=8192, description="Frame height in pixels.")
    frames: int = Field(
        64, ge=1, le=4096, description="Distinct frames generated once, then cycled."
    )


class DirectorySpec(_FileSource):
    """Image files from a directory, cycled in sorted order."""

    kind: Literal["directory"] = Field(description="Source: image files in a directory.")
    patterns: list[str] = Field(
        default_factory=lambda: ["*.jpg", "*.jpeg", "*.png"],
        min_length=1,
        description="File name patterns (case-insensitive) of the images to use.",
    )
    recursive: bool = Field(False, description="Also look in subdirectories.")


class VideoSpec(_FileSource):
    """A video file decoded with OpenCV."""

    kind: Literal["video"] = Field(description="Source: a video file.")


class Hdf5Spec(_FileSource):
    """Frames of one sensor of an HDF5 recording."""

    kind: Literal["hdf5"] = Field(description="Source: an HDF5 recording.")
    sensor: str = Field(
        min_length=1,
        description="Sensor name: frames in dataset 'sensors/<sensor>', per-frame flags in "
        "'is_enabled/<sensor>'.",
    )
    color_order: Literal["rgb", "bgr"] = Field(
        "rgb", description="Channel order of the stored 3-channel frames."
    )


SourceSpec = Annotated[
    SyntheticSpec | DirectorySpec | VideoSpec | Hdf5Spec,
    Field(discriminator="kind"),
]
"""The `source:` section: where frames come from, chosen by `kind`."""
