"""Synthetic frames that compress like camera images, not like white noise.

A frame is a two-tone gradient (sky and ground), a handful of filled
rectangles, circles and ellipses of random colours, uneven lighting and fine
texture, mild sensor noise, and a slight blur. At 640x480 and JPEG quality 85
that is about 40 KB, in the range of real camera frames, so MB/s figures
and decode costs are realistic.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from scalelab.load.codec import encode_frame
from scalelab.load.config import SyntheticSpec
from scalelab.load.frames import FrameSource


def draw_scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """One HxWx3 BGR uint8 frame drawn from `rng`."""
    image = _gradient(rng, width, height)
    for _ in range(int(rng.integers(6, 16))):
        _draw_shape(rng, image)
    light = _field(rng, width, height, 32, 16.0, cv2.INTER_CUBIC)
    light += _field(rng, width, height, 3, 7.0, cv2.INTER_LINEAR)
    noise = rng.standard_normal(image.shape, dtype=np.float32) * 2.0
    shaded = image.astype(np.float32) + light[..., None] + noise
    return cv2.GaussianBlur(np.clip(shaded, 0, 255).astype(np.uint8), (3, 3), 0)


def _gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    top, bottom = rng.integers(30, 230, size=(2, 3)).astype(np.float32)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    mix = np.clip((y - rng.uniform(0.3, 0.7)) * 5 + 0.5, 0, 1)
    column = (top * (1 - mix) + bottom * mix).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(column[:, None, :], (height, width, 3)))


def _field(
    rng: np.random.Generator, width: int, height: int, cell: int, sigma: float, interp: int
) -> np.ndarray:
    """Smooth random values: Gaussian noise on a grid of `cell` pixels, resized up."""
    grid = rng.standard_normal((max(2, height // cell), max(2, width // cell)), dtype=np.float32)
    return cv2.resize(grid * sigma, (width, height), interpolation=interp)


def _draw_shape(rng: np.random.Generator, image: np.ndarray) -> None:
    height, width = image.shape[:2]
    color = tuple(int(c) for c in rng.integers(0, 256, 3))
    center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
    size = int(rng.integers(min(width, height) // 20, min(width, height) // 3)) + 2
    kind = int(rng.integers(0, 3))
    if kind == 0:
        corner = (center[0] + size, center[1] + int(size * rng.uniform(0.3, 1.5)))
        cv2.rectangle(image, center, corner, color, -1, cv2.LINE_AA)
    elif kind == 1:
        cv2.circle(image, center, size // 2, color, -1, cv2.LINE_AA)
    else:
        axes = (size, max(1, int(size * rng.uniform(0.2, 0.8))))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(image, center, axes, angle, 0, 360, color, -1, cv2.LINE_AA)


class SyntheticSource(FrameSource):
    """`frames` distinct synthetic frames, drawn and encoded once from `seed`, then cycled."""

    def __init__(self, spec: SyntheticSpec, base_dir: Path | str | None = None):
        rng = np.random.default_rng(spec.seed)
        encoded = [
            encode_frame(draw_scene(rng, spec.width, spec.height), spec.encoding, spec.quality)
            for _ in range(spec.frames)
        ]
        source_id = f"synthetic:{spec.width}x{spec.height}:seed={spec.seed}"
        super().__init__(encoded, source_id, spec.corrupt_fraction, spec.seed)
