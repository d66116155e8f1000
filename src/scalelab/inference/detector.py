"""A YOLOv8-style ONNX detector that turns a batch of encoded frames into detections.

Bad frames never raise: a frame that does not decode comes back as a
:class:`FrameFailure` in its position, so the worker can dead-letter it and go
on with the rest of the batch. Every stage is timed with ``perf_counter_ns``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from scalelab.errors import ConfigError, ModelError
from scalelab.inference.postprocess import Detection, postprocess
from scalelab.inference.preprocess import to_tensor
from scalelab.load.codec import FrameDecodeError, decode_frame
from scalelab.models.info import ModelInfo, load_model_info

DEFAULT_IMGSZ = 640
STRIDE = 32  # YOLOv8's largest downsampling: dynamic input sizes must be multiples of it
CPU = "CPUExecutionProvider"
_PROVIDER_ALIASES = {"cpu": CPU, "cuda": "CUDAExecutionProvider"}


@dataclass(frozen=True)
class StageTimings:
    """Wall time of each stage for one frame, in nanoseconds.

    ``decode_ns`` is the frame's own; the batch stages are the batch's time
    divided by the number of frames that went through the model.
    """

    decode_ns: int
    preprocess_ns: int
    inference_ns: int
    postprocess_ns: int

    @property
    def total_ns(self) -> int:
        return self.decode_ns + self.preprocess_ns + self.inference_ns + self.postprocess_ns


@dataclass(frozen=True)
class FrameResult:
    """A frame that was decoded and run through the model."""

    detections: list[Detection]
    timings: StageTimings


@dataclass(frozen=True)
class FrameFailure:
    """A frame that could not be decoded, with the reason (for the dead-letter topic)."""

    reason: str


@dataclass(frozen=True)
class BatchResult:
    """Per-frame outcomes in input order, plus the batch stages' total times (ns).

    ``batch_size`` is the number of frames that went through the model.
    """

    items: list[FrameResult | FrameFailure]
    batch_size: int
    preprocess_ns: int
    inference_ns: int
    postprocess_ns: int

    @property
    def failures(self) -> list[tuple[int, FrameFailure]]:
        """(input position, failure) of every frame that could not be decoded."""
        return [(i, item) for i, item in enumerate(self.items) if isinstance(item, FrameFailure)]


@dataclass(frozen=True)
class _Decoded:
    images: list[np.ndarray]
    positions: list[int]
    decode_ns: list[int]
    failures: dict[int, FrameFailure]


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    """Session options for one worker: a fixed intra-op pool, no inter-op parallelism."""
    if intra_op_threads < 1:
        raise ConfigError(f"intra_op_threads must be at least 1, got {intra_op_threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads would otherwise spin between batches, taking CPU from the broker,
    # the producer and the other workers that share the machine.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def select_providers(requested: Sequence[str] | None) -> list[str]:
    """The requested execution providers that this onnxruntime has, with CPU as fallback.

    ``None`` means CPU only; ``"cuda"`` and ``"cpu"`` are accepted as short names.
    """
    available = set(ort.get_available_providers())
    chosen = [_PROVIDER_ALIASES.get(name.lower(), name) for name in requested or ()]
    providers = [name for name in dict.fromkeys(chosen) if name in available and name != CPU]
    return [*providers, CPU]


class Detector:
    """Runs a YOLOv8-style ONNX model (output ``[batch, 4 + classes, anchors]``) on frames.

    The model file is checked once, by :func:`load_model_info` (the same checks as
    ``scalelab model info``), and its metadata decides what the spec leaves open:
    class names by index, and the input size when ``imgsz`` is None.
    """

    def __init__(
        self,
        model_path: str | Path,
        intra_op_threads: int = 1,
        providers: Sequence[str] | None = None,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        imgsz: int | tuple[int, int] | None = None,
        max_detections: int = 300,
    ):
        self.info = load_model_info(model_path)
        self.model_path = str(self.info.path)
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self._session = _open_session(
            self.model_path, session_options(intra_op_threads), select_providers(providers)
        )
        _check_float_input(self._session, self.info)
        self.input_name = self.info.input_name
        self.input_size = input_size(self.info, imgsz)
        batch = self.info.input_shape[0]
        self._fixed_batch = batch if batch else None
        self.num_classes = self.info.num_classes
        self.names = list(self.info.class_names)

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually uses, in priority order."""
        return list(self._session.get_providers())

    def detect_batch(self, frames: Sequence[bytes]) -> BatchResult:
        """Decode, preprocess, infer (once for the batch) and postprocess ``frames``."""
        decoded = _decode_all(frames)
        if not decoded.images:
            return BatchResult(_in_order(len(frames), decoded.failures, {}), 0, 0, 0, 0)
        start = time.perf_counter_ns()
        batch, params = to_tensor(decoded.images, self.input_size)
        preprocessed = time.perf_counter_ns()
        output = self._infer(batch)
        inferred = time.perf_counter_ns()
        detections = postprocess(
            output, params, self.conf_threshold, self.iou_threshold, self.max_detections, self.names
        )
        done = time.perf_counter_ns()
        stages = (preprocessed - start, inferred - preprocessed, done - inferred)
        results = _frame_results(decoded, detections, stages)
        items = _in_order(len(frames), decoded.failures, results)
        return BatchResult(items, len(decoded.images), *stages)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Run the model, in chunks of its batch size when that is fixed."""
        if self._fixed_batch is None:
            return self._run(batch)
        size = self._fixed_batch
        outputs = [
            self._run(_pad_batch(batch[i : i + size], size)) for i in range(0, len(batch), size)
        ]
        return np.concatenate(outputs)[: len(batch)]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        output: np.ndarray = self._session.run(None, {self.input_name: batch})[0]
        return output


def _open_session(
    path: str, options: ort.SessionOptions, providers: list[str]
) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(path, f"onnxruntime cannot load it: {reason}") from exc


def _check_float_input(session: ort.InferenceSession, info: ModelInfo) -> None:
    """Frames are fed as float32; a float16 input (which `model info` accepts) is refused here."""
    kind = next((i.type for i in session.get_inputs() if i.name == info.input_name), None)
    if kind != "tensor(float)":
        raise ModelError(str(info.path), f"input type {kind} is not supported (expected float32)")


def input_size(info: ModelInfo, imgsz: int | tuple[int, int] | None) -> tuple[int, int]:
    """(height, width) to feed: the model's own for fixed dimensions; for dynamic ones
    ``imgsz``, or when that is None the model's nominal size (its ``imgsz`` metadata, as
    Ultralytics exports write it), else 640. A model exported at 320 thus runs at 320."""
    if imgsz is None:
        wanted = info.imgsz or (DEFAULT_IMGSZ, DEFAULT_IMGSZ)
    else:
        wanted = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    height, width = (
        _input_dim(dim, want) for dim, want in zip(info.input_shape[2:], wanted, strict=True)
    )
    return height, width


def _input_dim(dim: int | None, wanted: int) -> int:
    """The model's own size for a fixed dimension, else ``wanted`` (a multiple of the stride)."""
    if dim:
        return dim
    if wanted <= 0 or wanted % STRIDE:
        raise ConfigError(
            f"imgsz {wanted} must be a positive multiple of the model stride {STRIDE}"
        )
    return wanted


def _decode_all(frames: Sequence[bytes]) -> _Decoded:
    decoded = _Decoded([], [], [], {})
    for position, frame in enumerate(frames):
        start = time.perf_counter_ns()
        try:
            image = decode_frame(frame)
        except FrameDecodeError as exc:
            decoded.failures[position] = FrameFailure(exc.reason)
            continue
        decoded.decode_ns.append(time.perf_counter_ns() - start)
        decoded.images.append(image)
        decoded.positions.append(position)
    return decoded


def _frame_results(
    decoded: _Decoded, detections: list[list[Detection]], stages: tuple[int, int, int]
) -> dict[int, FrameResult]:
    count = len(decoded.images)
    pre, infer, post = (stage // count for stage in stages)
    return {
        position: FrameResult(found, StageTimings(decode_ns, pre, infer, post))
        for position, decode_ns, found in zip(
            decoded.positions, decoded.decode_ns, detections, strict=True
        )
    }


def _in_order(
    count: int, failures: dict[int, FrameFailure], results: dict[int, FrameResult]
) -> list[FrameResult | FrameFailure]:
    return [failures[i] if i in failures else results[i] for i in range(count)]


def _pad_batch(chunk: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a short last chunk up to a fixed-batch model's batch size."""
    if len(chunk) == size:
        return chunk
    padding = np.zeros((size - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
    return np.concatenate([chunk, padding])
