"""Letterbox resizing and batching of BGR frames into a model's NCHW input.

The geometry matches Ultralytics' ``LetterBox`` (keep the aspect ratio, pad
evenly on both sides with grey 114) so that detections agree with what the
same model gives under Ultralytics.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_COLOR = 114
_INV_255 = np.float32(1.0 / 255.0)


@dataclass(frozen=True)
class LetterboxParams:
    """How one original frame was fitted into the model input.

    ``scale`` multiplies original pixels into input pixels; ``pad_x``/``pad_y``
    are the left/top borders added after resizing; ``height``/``width`` are the
    original frame's size (used to clip boxes mapped back).
    """

    scale: float
    pad_x: int
    pad_y: int
    height: int
    width: int


def letterbox(
    image: np.ndarray, size: tuple[int, int] = (640, 640), color: int = PAD_COLOR
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize ``image`` to fit ``size`` (h, w) keeping its aspect ratio, centre-padded.

    Returns the padded image, the scale applied and the (pad_x, pad_y) of the
    left/top borders.
    """
    height, width = image.shape[:2]
    target_h, target_w = size
    scale = min(target_h / height, target_w / width)
    new_w, new_h = int(round(width * scale)), int(round(height * scale))
    if (new_w, new_h) != (width, height):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    half_w, half_h = (target_w - new_w) / 2, (target_h - new_h) / 2
    # Ultralytics' rounding: an odd padding puts the extra pixel right/bottom.
    top, bottom = int(round(half_h - 0.1)), int(round(half_h + 0.1))
    left, right = int(round(half_w - 0.1)), int(round(half_w + 0.1))
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(
            image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(color, color, color)
        )
    return image, scale, (left, top)


def to_tensor(
    images: list[np.ndarray], size: tuple[int, int] = (640, 640)
) -> tuple[np.ndarray, list[LetterboxParams]]:
    """Letterbox BGR uint8 frames into one float32 NCHW RGB batch scaled to 0..1."""
    batch = np.empty((len(images), 3, size[0], size[1]), dtype=np.float32)
    params: list[LetterboxParams] = []
    for index, image in enumerate(images):
        padded, scale, (pad_x, pad_y) = letterbox(image, size)
        _write_chw_rgb(padded, batch[index])
        params.append(LetterboxParams(scale, pad_x, pad_y, image.shape[0], image.shape[1]))
    return batch, params


def _write_chw_rgb(padded: np.ndarray, out: np.ndarray) -> None:
    """Write an HxWx3 BGR uint8 image into a 3xHxW float32 RGB slot, scaled to 0..1."""
    for channel in range(3):
        np.multiply(padded[:, :, 2 - channel], _INV_255, out=out[channel], casting="unsafe")
