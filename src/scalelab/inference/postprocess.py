"""From a YOLOv8-style raw output ``[batch, 4 + classes, anchors]`` to detections.

Follows Ultralytics' ``non_max_suppression`` for a single label per box: keep
anchors whose best class score exceeds the threshold, run NMS per class, keep
the best ``max_detections``, then map boxes back to the original frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from scalelab.inference.preprocess import LetterboxParams

# Ultralytics' cap on the boxes handed to NMS, highest scores first.
MAX_NMS_CANDIDATES = 30000


@dataclass(frozen=True)
class Detection:
    """One detected object, with its box in original-frame pixels."""

    class_id: int
    class_name: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


def postprocess(
    output: np.ndarray,
    params: Sequence[LetterboxParams],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 300,
    names: Sequence[str] | None = None,
) -> list[list[Detection]]:
    """Turn a raw ``[batch, 4 + nc, anchors]`` output into detections per frame.

    ``params`` holds one :class:`LetterboxParams` per batch row; rows beyond
    ``len(params)`` (padding of a fixed-batch model) are ignored. ``names``
    gives class names by index; a missing name falls back to ``str(index)``.
    """
    if output.ndim != 3 or output.shape[1] <= 4:
        raise ValueError(
            f"expected an output of shape [batch, 4 + classes, anchors], got {output.shape}"
        )
    return [
        _detections_for_image(
            output[index], param, conf_threshold, iou_threshold, max_detections, names
        )
        for index, param in enumerate(params)
    ]


def _detections_for_image(
    prediction: np.ndarray,
    params: LetterboxParams,
    conf_threshold: float,
    iou_threshold: float,
    max_detections: int,
    names: Sequence[str] | None,
) -> list[Detection]:
    boxes, scores, class_ids = _candidates(prediction, conf_threshold)
    if scores.size == 0:
        return []
    keep = _nms(boxes, scores, class_ids, conf_threshold, iou_threshold, max_detections)
    original = boxes_to_original(boxes[keep], params)
    return [
        Detection(
            class_id=int(class_id),
            class_name=_class_name(names, int(class_id)),
            score=float(score),
            x1=float(box[0]),
            y1=float(box[1]),
            x2=float(box[2]),
            y2=float(box[3]),
        )
        for box, score, class_id in zip(original, scores[keep], class_ids[keep], strict=True)
    ]


def _candidates(
    prediction: np.ndarray, conf_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchors whose best class score exceeds the threshold, as xyxy boxes, scores, classes.

    ``prediction`` is one image's ``[4 + nc, anchors]`` block.
    """
    class_scores = prediction[4:]
    best = class_scores.max(axis=0)
    selected = np.flatnonzero(best > conf_threshold)
    if selected.size > MAX_NMS_CANDIDATES:
        selected = selected[np.argsort(-best[selected], kind="stable")[:MAX_NMS_CANDIDATES]]
    class_ids = class_scores[:, selected].argmax(axis=0).astype(np.int32)
    return _xywh_to_xyxy(prediction[:4, selected].T), best[selected], class_ids


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    half = xywh[:, 2:4] / 2
    return np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)


def _nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    conf_threshold: float,
    iou_threshold: float,
    max_detections: int,
) -> np.ndarray:
    """Indices kept by NMS run on each class's boxes alone, best score first, at most
    ``max_detections``.

    One NMS call per class present, not OpenCV's ``NMSBoxesBatched``: that shifts each
    class by an offset derived from the boxes' largest coordinate, which for boxes with
    negative corners does not separate the classes, so a box could suppress another
    class's box.
    """
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    xywh = xywh.astype(np.float64)
    kept = [
        members[_nms_one_class(xywh[members], scores[members], conf_threshold, iou_threshold)]
        for members in (np.flatnonzero(class_ids == c) for c in np.unique(class_ids))
    ]
    if not kept:
        return np.empty(0, dtype=np.int64)
    joined = np.concatenate(kept)
    return joined[np.argsort(-scores[joined], kind="stable")][:max_detections]


def _nms_one_class(
    xywh: np.ndarray, scores: np.ndarray, conf_threshold: float, iou_threshold: float
) -> np.ndarray:
    # Float (Rect2d) boxes: OpenCV's IoU is then exact, without rounding to whole pixels.
    keep = cv2.dnn.NMSBoxes(
        xywh.tolist(),
        scores.astype(np.float32).tolist(),
        float(conf_threshold),
        float(iou_threshold),
    )
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def boxes_to_original(boxes: np.ndarray, params: LetterboxParams) -> np.ndarray:
    """Map xyxy boxes from model-input pixels back to the original frame, clipped to it."""
    offset = np.array([params.pad_x, params.pad_y, params.pad_x, params.pad_y], dtype=np.float64)
    original = (boxes.astype(np.float64) - offset) / params.scale
    original[:, 0::2] = original[:, 0::2].clip(0, params.width)
    original[:, 1::2] = original[:, 1::2].clip(0, params.height)
    return original


def _class_name(names: Sequence[str] | None, class_id: int) -> str:
    if names is not None and 0 <= class_id < len(names):
        return names[class_id]
    return str(class_id)
