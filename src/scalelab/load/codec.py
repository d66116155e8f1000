"""Frame encoding on the wire: JPEG, or a raw uint8 matrix with a small header.

Raw frames are ``b"SLRAW1"`` + ``<HHB`` (height, width, channels) + the
row-major uint8 pixels, so a worker can tell both encodings apart without
being told which one the producer used.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from scalelab.errors import ScalelabError

RAW_MAGIC = b"SLRAW1"
_RAW_HEADER = struct.Struct("<HHB")


class FrameDecodeError(ScalelabError):
    """A message whose bytes are not a frame we can decode."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def encode_frame(image: np.ndarray, encoding: str = "jpeg", quality: int = 85) -> bytes:
    """Encode an HxWx3 (BGR) uint8 image for the input topic."""
    if encoding == "jpeg":
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return buf.tobytes()
    if encoding == "raw":
        height, width = image.shape[:2]
        channels = 1 if image.ndim == 2 else image.shape[2]
        header = RAW_MAGIC + _RAW_HEADER.pack(height, width, channels)
        return header + np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    raise ValueError(f"unknown encoding {encoding!r} (expected 'jpeg' or 'raw')")


def decode_frame(data: bytes) -> np.ndarray:
    """Decode a frame to an HxWx3 BGR uint8 image, or raise FrameDecodeError."""
    if not data:
        raise FrameDecodeError("empty message")
    if data.startswith(RAW_MAGIC):
        return _decode_raw(data)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameDecodeError(f"not a decodable image ({len(data)} bytes)")
    return image


def _decode_raw(data: bytes) -> np.ndarray:
    start = len(RAW_MAGIC)
    if len(data) < start + _RAW_HEADER.size:
        raise FrameDecodeError("raw frame shorter than its header")
    height, width, channels = _RAW_HEADER.unpack_from(data, start)
    pixels = data[start + _RAW_HEADER.size :]
    if len(pixels) != height * width * channels or channels not in (1, 3):
        raise FrameDecodeError(
            f"raw frame of {len(pixels)} bytes does not match {height}x{width}x{channels}"
        )
    image = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, channels)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if channels == 1 else image
