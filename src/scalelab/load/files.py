"""Frame sources read from disk: a directory of images, or a video file.

Both read at most `max_frames` frames once, at start, and keep them encoded in
memory (about 40 KB a 640x480 JPEG frame, width x height x 3 bytes a raw one),
so producing a message never touches the disk.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import cv2
import numpy as np

from scalelab.errors import ConfigError
from scalelab.load.codec import FrameDecodeError, decode_frame, encode_frame
from scalelab.load.config import DirectorySpec, VideoSpec
from scalelab.load.frames import FrameSource
from scalelab.load.paths import resolve_path

_JPEG_START = b"\xff\xd8\xff"


class DirectorySource(FrameSource):
    """Images matching `patterns`, in sorted path order.

    Every file is decoded once at start, so an unreadable one fails the run
    before load begins. JPEG files are then sent as they are when the
    encoding is 'jpeg' (their own quality is kept); other images are encoded
    as asked.
    """

    def __init__(self, spec: DirectorySpec, base_dir: Path | str | None = None):
        root = resolve_path(spec.path, base_dir)
        if not root.is_dir():
            what = "not a directory" if root.exists() else "no such directory"
            raise ConfigError(f"directory source {root}: {what}")
        files = image_files(root, spec.patterns, spec.recursive)[: spec.max_frames]
        if not files:
            raise ConfigError(
                f"directory source {root}: no file matches {', '.join(spec.patterns)}"
            )
        encoded = [_read_image(path, spec.encoding, spec.quality) for path in files]
        super().__init__(encoded, f"directory:{root}", spec.corrupt_fraction, spec.seed)


def image_files(root: Path, patterns: list[str], recursive: bool = False) -> list[Path]:
    """Files under `root` whose name matches one of `patterns` (case-insensitive), sorted."""
    candidates = root.rglob("*") if recursive else root.iterdir()
    lowered = [pattern.lower() for pattern in patterns]
    matches = [
        path
        for path in candidates
        if path.is_file() and any(fnmatch(path.name.lower(), p) for p in lowered)
    ]
    return sorted(matches, key=lambda path: path.relative_to(root).as_posix())


def _read_image(path: Path, encoding: str, quality: int) -> bytes:
    data = path.read_bytes()
    try:
        image = decode_frame(data)
    except FrameDecodeError as e:
        raise ConfigError(f"directory source {path}: not an image OpenCV can read") from e
    if encoding == "jpeg" and data.startswith(_JPEG_START):
        return data
    return encode_frame(image, encoding, quality)


class VideoSource(FrameSource):
    """The first `max_frames` frames of a video, decoded with OpenCV."""

    def __init__(self, spec: VideoSpec, base_dir: Path | str | None = None):
        path = resolve_path(spec.path, base_dir)
        images = read_video(path, spec.max_frames)
        encoded = [encode_frame(image, spec.encoding, spec.quality) for image in images]
        super().__init__(encoded, f"video:{path}", spec.corrupt_fraction, spec.seed)


def read_video(path: Path, max_frames: int) -> list[np.ndarray]:
    """Up to `max_frames` BGR frames from the start of a video file."""
    if not path.is_file():
        raise ConfigError(f"video source {path}: no such file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ConfigError(f"video source {path}: OpenCV cannot open it as a video")
        images: list[np.ndarray] = []
        while len(images) < max_frames:
            ok, image = capture.read()
            if not ok:
                break
            images.append(image)
    finally:
        capture.release()
    if not images:
        raise ConfigError(f"video source {path}: no frame could be decoded")
    return images
