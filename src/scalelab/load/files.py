"""Frame sources read from disk: a directory of images, or a video file.

Both read at most `max_frames` frames once, at start, and keep them encoded in
memory (about 40 KB a 640x480 JPEG frame, width x height x 3 bytes a raw one),
so producing a message never touches the disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import cv2
import numpy as np

from scalelab.errors import SourceError
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
        root, files = _source_files(spec, base_dir)
        encoded = [_read_image(path, spec.encoding, spec.quality) for path in files]
        super().__init__(encoded, f"directory:{root}", spec.corrupt_fraction, spec.seed)


PROBE_SAMPLE = 8
"""How many of a directory's files `probe_directory` decodes."""


def probe_directory(spec: DirectorySpec, base_dir: Path | str | None = None) -> None:
    """Check, in milliseconds, what DirectorySource would read; raise SourceError if it cannot.

    The directory must exist and hold matching files; a sample of them, spread
    over the ones the source would read, is decoded with the source's own
    decoder. A directory of non-images is refused before any process starts.
    """
    _, files = _source_files(spec, base_dir)
    step = max(1, len(files) // PROBE_SAMPLE)
    for path in files[::step][:PROBE_SAMPLE]:
        _decode_file(path)


def probe_video(spec: VideoSpec, base_dir: Path | str | None = None) -> None:
    """The video exists, OpenCV opens it, and its first frame decodes."""
    read_video(resolve_path(spec.path, base_dir), 1)


def _source_files(spec: DirectorySpec, base_dir: Path | str | None) -> tuple[Path, list[Path]]:
    """The directory and the files (at most `max_frames`) a directory source reads."""
    root = resolve_path(spec.path, base_dir)
    if not root.is_dir():
        what = "not a directory" if root.exists() else "no such directory"
        raise SourceError("directory", root, what)
    try:
        files = image_files(root, spec.patterns, spec.recursive)[: spec.max_frames]
    except OSError as error:
        raise SourceError("directory", root, f"cannot be listed ({error.strerror})") from error
    if not files:
        raise SourceError("directory", root, f"no file matches {', '.join(spec.patterns)}")
    return root, files


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
    data, image = _decode_file(path)
    if encoding == "jpeg" and data.startswith(_JPEG_START):
        return data
    return encode_frame(image, encoding, quality)


def _decode_file(path: Path) -> tuple[bytes, np.ndarray]:
    """The file's bytes and its image, decoded as a worker decodes a frame."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SourceError("directory", path, f"cannot be read ({e.strerror})") from e
    try:
        return data, decode_frame(data)
    except FrameDecodeError as e:
        raise SourceError("directory", path, "not an image OpenCV can read") from e


class VideoSource(FrameSource):
    """The first `max_frames` frames of a video, decoded with OpenCV.

    Each frame is encoded as soon as it is decoded, so memory holds the
    encoded frames only (a 640x480 frame is ~0.9 MB decoded, ~40 KB as JPEG).
    """

    def __init__(self, spec: VideoSpec, base_dir: Path | str | None = None):
        path = resolve_path(spec.path, base_dir)
        encoded = [
            encode_frame(image, spec.encoding, spec.quality)
            for image in video_frames(path, spec.max_frames)
        ]
        super().__init__(encoded, f"video:{path}", spec.corrupt_fraction, spec.seed)


def read_video(path: Path, max_frames: int) -> list[np.ndarray]:
    """Up to `max_frames` BGR frames from the start of a video file."""
    return list(video_frames(path, max_frames))


def video_frames(path: Path, max_frames: int) -> Iterator[np.ndarray]:
    """Up to `max_frames` BGR frames from the start of a video file, one at a time."""
    if not path.is_file():
        raise SourceError("video", path, "no such file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise SourceError("video", path, "OpenCV cannot open it as a video")
        count = 0
        while count < max_frames:
            ok, image = capture.read()
            if not ok:
                break
            count += 1
            yield image
        if count == 0:
            raise SourceError("video", path, "no frame could be decoded")
    finally:
        capture.release()
