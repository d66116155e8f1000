"""Frames of one sensor of an HDF5 recording.

The layout, as the recording tools write it:

- `sensors/<name>`: the frames, N x H x W x C (C = 1, 3 or 4) or N x H x W, uint8;
- `is_enabled/<name>`: one boolean per frame, disabled frames are skipped
  (when absent, every frame is used);
- `metadata`: a file attribute or a scalar string dataset holding JSON whose
  `n_frames` says how many of the N rows hold frames (when absent, all N).

At most `max_frames` enabled frames are read, encoded once and kept in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np

from scalelab.errors import SourceError
from scalelab.load.codec import encode_frame
from scalelab.load.config import Hdf5Spec
from scalelab.load.frames import FrameSource
from scalelab.load.paths import resolve_path


class Hdf5Source(FrameSource):
    """The enabled frames of `sensor`, in recording order."""

    def __init__(self, spec: Hdf5Spec, base_dir: Path | str | None = None):
        path = resolve_path(spec.path, base_dir)
        encoded = [
            encode_frame(image, spec.encoding, spec.quality)
            for image in read_sensor(path, spec.sensor, spec.max_frames, spec.color_order)
        ]
        source_id = f"hdf5:{path}#{spec.sensor}"
        super().__init__(encoded, source_id, spec.corrupt_fraction, spec.seed)


def probe_hdf5(spec: Hdf5Spec, base_dir: Path | str | None = None) -> None:
    """The recording opens and holds at least one enabled frame of the sensor."""
    read_sensor(resolve_path(spec.path, base_dir), spec.sensor, 1, spec.color_order)


def read_sensor(
    path: Path, sensor: str, max_frames: int, color_order: str = "rgb"
) -> list[np.ndarray]:
    """Up to `max_frames` enabled frames of `sensor`, BGR (or single-channel) uint8."""
    if not path.is_file():
        raise SourceError("hdf5", path, "no such file")
    try:
        with h5py.File(path, "r") as file:
            return _read_enabled(file, path, sensor, max_frames, color_order)
    except OSError as e:
        raise SourceError("hdf5", path, f"not a readable HDF5 file ({e})") from e


def _read_enabled(
    file: h5py.File, path: Path, sensor: str, max_frames: int, color_order: str
) -> list[np.ndarray]:
    frames = _frames_dataset(file, path, sensor)
    n_frames = _frame_count(file, path, len(frames))
    enabled = _enabled(file, path, sensor, n_frames)
    indices = np.flatnonzero(enabled)[:max_frames]
    if len(indices) == 0:
        raise SourceError("hdf5", path, f"no enabled frame for sensor {sensor!r}", "sensor")
    return [_to_bgr(np.asarray(frames[int(i)]), color_order) for i in indices]


def _frames_dataset(file: h5py.File, path: Path, sensor: str) -> h5py.Dataset:
    frames = file.get(f"sensors/{sensor}")
    if not isinstance(frames, h5py.Dataset):
        group = file.get("sensors")
        known = ", ".join(group.keys()) if isinstance(group, h5py.Group) else "no 'sensors' group"
        reason = f"no dataset 'sensors/{sensor}' (found: {known})"
        raise SourceError("hdf5", path, reason, "sensor")
    shape_ok = frames.ndim == 3 or (frames.ndim == 4 and frames.shape[3] in (1, 3, 4))
    if frames.dtype != np.uint8 or not shape_ok:
        reason = (
            f"'sensors/{sensor}' is {frames.dtype} {frames.shape}, "
            "expected uint8 N x H x W or N x H x W x C with C in 1, 3, 4"
        )
        raise SourceError("hdf5", path, reason, "sensor")
    return frames


def _frame_count(file: h5py.File, path: Path, stored: int) -> int:
    raw = file.attrs.get("metadata")
    if raw is None and isinstance(file.get("metadata"), h5py.Dataset):
        raw = file["metadata"][()]
    if raw is None:
        return stored
    try:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        n_frames = int(json.loads(text)["n_frames"])
    except (ValueError, KeyError, TypeError) as e:
        raise SourceError("hdf5", path, f"metadata is not JSON with n_frames ({e})") from e
    if not 0 <= n_frames <= stored:
        reason = f"metadata says {n_frames} frames but {stored} are stored"
        raise SourceError("hdf5", path, reason)
    return n_frames


def _enabled(file: h5py.File, path: Path, sensor: str, n_frames: int) -> np.ndarray:
    flags = file.get(f"is_enabled/{sensor}")
    if flags is None:
        return np.ones(n_frames, dtype=bool)
    if not isinstance(flags, h5py.Dataset):
        raise SourceError("hdf5", path, f"'is_enabled/{sensor}' is not a dataset", "sensor")
    values = np.asarray(flags[()]).astype(bool).ravel()
    if len(values) < n_frames:
        reason = f"'is_enabled/{sensor}' has {len(values)} flags for {n_frames} frames"
        raise SourceError("hdf5", path, reason, "sensor")
    return values[:n_frames]


def _to_bgr(image: np.ndarray, color_order: str) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 2 or color_order == "bgr":
        return np.ascontiguousarray(image[:, :, :3]) if image.ndim == 3 else image
    code = cv2.COLOR_RGBA2BGR if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
    return cv2.cvtColor(image, code)
