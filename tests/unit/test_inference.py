"""The inference core: letterbox geometry, postprocessing, the detector, the batcher."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from scalelab.errors import ModelError
from scalelab.inference.batching import Batcher
from scalelab.inference.detector import Detector, FrameFailure, FrameResult
from scalelab.inference.postprocess import boxes_to_original, postprocess
from scalelab.inference.preprocess import LetterboxParams, letterbox, to_tensor

REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
REFERENCE_MODEL = REFERENCE_DIR / "yolov8n-random-dynamic.onnx"


def _jpeg(height: int, width: int, seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def _tiny_model(path: Path, channels: int = 3, output_shape: tuple[int, ...] = (1, 6, 64)) -> Path:
    """A batch-1 model from a ``[1, channels, 256, 256]`` image to ``output_shape``.

    With the default output that is 64 anchors (one per 32-pixel cell) and two
    classes; every anchor sees the same weights, so all its boxes coincide.
    """
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [6, channels, 32, 32], [1e-4] * (6 * channels * 32 * 32)
    )
    target = helper.make_tensor("s", TensorProto.INT64, [len(output_shape)], list(output_shape))
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w"], ["c"], strides=[32, 32]),
            helper.make_node("Reshape", ["c", "s"], ["output0"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, channels, 256, 256])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output_shape))],
        [weight, target],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


# --- letterbox -------------------------------------------------------------------------


def test_letterbox_640x480_pads_top_and_bottom_only() -> None:
    image = np.full((480, 640, 3), 7, dtype=np.uint8)
    padded, scale, (pad_x, pad_y) = letterbox(image, (640, 640))
    assert padded.shape == (640, 640, 3)
    assert (scale, pad_x, pad_y) == (1.0, 0, 80)
    assert (padded[:80] == 114).all() and (padded[560:] == 114).all()
    assert (padded[80:560] == 7).all()


def test_letterbox_1280x720_halves_and_pads() -> None:
    padded, scale, pads = letterbox(np.zeros((720, 1280, 3), dtype=np.uint8), (640, 640))
    assert padded.shape == (640, 640, 3)
    assert (scale, pads) == (0.5, (0, 140))


def test_letterbox_odd_padding_fills_exactly_and_non_square_target() -> None:
    padded, scale, (pad_x, pad_y) = letterbox(np.zeros((333, 500, 3), dtype=np.uint8), (384, 640))
    assert padded.shape == (384, 640, 3)
    assert scale == pytest.approx(384 / 333)
    assert pad_y == 0 and pad_x == round((640 - round(500 * scale)) / 2 - 0.1)


def test_to_tensor_is_rgb_nchw_scaled() -> None:
    blue = np.zeros((480, 640, 3), dtype=np.uint8)
    blue[..., 0] = 255  # BGR
    batch, params = to_tensor([blue, np.zeros((720, 1280, 3), dtype=np.uint8)], (640, 640))
    assert batch.shape == (2, 3, 640, 640) and batch.dtype == np.float32
    assert batch[0, 2, 320, 320] == 1.0 and batch[0, 0, 320, 320] == 0.0
    assert batch[0, 0, 0, 0] == pytest.approx(114 / 255)
    assert params == [
        LetterboxParams(1.0, 0, 80, 480, 640),
        LetterboxParams(0.5, 0, 140, 720, 1280),
    ]


def test_boxes_map_back_to_the_original_frame() -> None:
    params = LetterboxParams(scale=0.5, pad_x=0, pad_y=140, height=720, width=1280)
    original = np.array([[100.0, 200.0, 300.0, 400.0]])
    in_input = original * params.scale + [params.pad_x, params.pad_y] * 2
    np.testing.assert_allclose(boxes_to_original(in_input, params), original)


def test_boxes_mapped_back_are_clipped_to_the_frame() -> None:
    params = LetterboxParams(scale=1.0, pad_x=0, pad_y=80, height=480, width=640)
    mapped = boxes_to_original(np.array([[-10.0, 60.0, 700.0, 600.0]]), params)
    np.testing.assert_allclose(mapped, [[0.0, 0.0, 640.0, 480.0]])


# --- postprocess -----------------------------------------------------------------------


def _output(
    anchors: Sequence[tuple[float, float, float, float, int, float]], classes: int = 3
) -> np.ndarray:
    """A ``[1, 4 + classes, anchors]`` output from (cx, cy, w, h, class, score) rows."""
    out = np.zeros((1, 4 + classes, len(anchors)), dtype=np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(anchors):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + cls, i] = score
    return out


PARAMS_1280x720 = LetterboxParams(scale=0.5, pad_x=0, pad_y=140, height=720, width=1280)


def test_overlapping_boxes_of_one_class_are_merged() -> None:
    output = _output([(100, 200, 50, 40, 0, 0.9), (102, 201, 50, 40, 0, 0.8)])
    [found] = postprocess(output, [PARAMS_1280x720])
    assert len(found) == 1 and found[0].score == pytest.approx(0.9)


def test_overlapping_boxes_of_different_classes_are_both_kept() -> None:
    output = _output([(100, 200, 50, 40, 0, 0.9), (100, 200, 50, 40, 1, 0.7)])
    [found] = postprocess(output, [PARAMS_1280x720], names=["person", "bicycle"])
    assert [(d.class_id, d.class_name) for d in found] == [(0, "person"), (1, "bicycle")]


def test_a_box_with_negative_corners_never_suppresses_another_class() -> None:
    """OpenCV's NMSBoxesBatched offsets classes by the largest coordinate: with every
    corner negative the offset is too small and the class-1 box was suppressed."""
    output = _output([(-30, -30, 40, 40, 0, 0.9), (-28, -28, 40, 40, 1, 0.8)])
    [found] = postprocess(output, [LetterboxParams(1.0, 0, 0, 480, 640)])
    assert sorted(d.class_id for d in found) == [0, 1]


def test_nms_still_merges_within_a_class_among_other_classes() -> None:
    rows = [(-30, -30, 40, 40, 0, 0.9), (-28, -28, 40, 40, 1, 0.8), (-29, -29, 40, 40, 0, 0.7)]
    rows += [(300, 300, 40, 40, 2, 0.6), (301, 301, 40, 40, 2, 0.5)]
    [found] = postprocess(_output(rows), [LetterboxParams(1.0, 0, 0, 480, 640)])
    assert [(d.class_id, d.score) for d in found] == [
        (0, pytest.approx(0.9)),
        (1, pytest.approx(0.8)),
        (2, pytest.approx(0.6)),
    ]


def test_low_scores_are_dropped_and_names_fall_back_to_the_index() -> None:
    output = _output([(100, 200, 50, 40, 1, 0.1), (300, 300, 20, 20, 2, 0.3)])
    [found] = postprocess(output, [PARAMS_1280x720], conf_threshold=0.25, names=["person"])
    assert [(d.class_id, d.class_name) for d in found] == [(2, "2")]


def test_coordinates_are_in_original_frame_pixels() -> None:
    output = _output([(100, 200, 50, 40, 0, 0.9), (630, 490, 40, 40, 2, 0.6)])
    [found] = postprocess(output, [PARAMS_1280x720])
    first, edge = found
    assert (first.x1, first.y1, first.x2, first.y2) == pytest.approx((150, 80, 250, 160))
    assert (edge.x1, edge.y1, edge.x2, edge.y2) == pytest.approx((1220, 660, 1280, 720))


def test_max_detections_keeps_the_best() -> None:
    rows = [(50.0 * i + 20, 300, 20, 20, 0, 0.3 + 0.05 * i) for i in range(10)]
    [found] = postprocess(_output(rows), [PARAMS_1280x720], max_detections=3)
    assert [d.score for d in found] == pytest.approx([0.75, 0.7, 0.65])


def test_each_batch_row_uses_its_own_letterbox() -> None:
    output = np.concatenate([_output([(100, 200, 50, 40, 0, 0.9)])] * 2)
    other = LetterboxParams(scale=1.0, pad_x=0, pad_y=80, height=480, width=640)
    first, second = postprocess(output, [PARAMS_1280x720, other])
    assert first[0].y1 == pytest.approx(80) and second[0].y1 == pytest.approx(100)


# --- detector --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_detector() -> Detector:
    if not REFERENCE_MODEL.is_file():
        pytest.skip(f"reference model not found at {REFERENCE_MODEL} (needs ../shared/reference)")
    return Detector(REFERENCE_MODEL, intra_op_threads=2)


def test_reference_model_geometry_and_names(reference_detector: Detector) -> None:
    assert reference_detector.input_size == (640, 640)
    assert reference_detector.num_classes == 80
    assert reference_detector.names[:2] == ["0", "1"] and len(reference_detector.names) == 80
    assert reference_detector.providers[-1] == "CPUExecutionProvider"


def test_detect_batch_keeps_positions_and_reports_bad_frames(
    reference_detector: Detector,
) -> None:
    frames = [_jpeg(480, 640, 1), _jpeg(720, 1280, 2), b"\xff\xd8 not a jpeg", _jpeg(240, 320, 3)]
    result = reference_detector.detect_batch(frames)
    assert [type(item) for item in result.items] == [
        FrameResult,
        FrameResult,
        FrameFailure,
        FrameResult,
    ]
    assert result.batch_size == 3
    assert result.failures[0][0] == 2 and "not a decodable image" in result.failures[0][1].reason
    for item in result.items:
        if isinstance(item, FrameResult):
            timings = item.timings
            assert min(timings.decode_ns, timings.preprocess_ns) > 0
            assert min(timings.inference_ns, timings.postprocess_ns) > 0
    assert min(result.preprocess_ns, result.inference_ns, result.postprocess_ns) > 0


def test_detect_batch_of_only_bad_frames_runs_no_model(reference_detector: Detector) -> None:
    result = reference_detector.detect_batch([b"", b"junk"])
    assert [type(item) for item in result.items] == [FrameFailure, FrameFailure]
    assert result.batch_size == 0 and result.inference_ns == 0


def test_fixed_batch_model_runs_in_chunks_and_reads_classes(tmp_path: Path) -> None:
    model = _tiny_model(tmp_path / "tiny.onnx")
    detector = Detector(model, conf_threshold=0.0)
    assert detector.input_size == (256, 256) and detector.num_classes == 2
    assert detector.names == ["0", "1"]
    solid = [
        cv2.imencode(".png", np.full((32, 32, 3), v, np.uint8))[1].tobytes() for v in (9, 99, 199)
    ]
    result = detector.detect_batch(solid)  # every anchor sees the same pixels: one box
    assert result.batch_size == 3
    assert all(isinstance(item, FrameResult) and len(item.detections) == 1 for item in result.items)


def test_model_error_on_a_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelError) as caught:
        Detector(missing)
    assert caught.value.path == str(missing) and "no such file" in caught.value.reason


def test_model_error_on_a_garbage_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an onnx model")
    with pytest.raises(ModelError) as caught:
        Detector(garbage)
    assert caught.value.path == str(garbage) and "not an ONNX model" in caught.value.reason


def test_model_error_on_a_wrong_input_or_output_shape(tmp_path: Path) -> None:
    gray = _tiny_model(tmp_path / "gray.onnx", channels=1)
    with pytest.raises(ModelError, match=r"expected \[batch, 3, height, width\]"):
        Detector(gray)
    flat = _tiny_model(tmp_path / "flat.onnx", output_shape=(1, 384))
    with pytest.raises(ModelError, match=r"expected \[batch, 4 \+ classes, anchors\]"):
        Detector(flat)


# --- batcher ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_batcher_flushes_on_size() -> None:
    batcher: Batcher[int] = Batcher(batch_size=3, max_wait=1.0, now=FakeClock())
    assert batcher.add(1) is None and batcher.add(2) is None
    assert batcher.add(3) == [1, 2, 3]
    assert len(batcher) == 0 and batcher.time_left() is None


def test_batcher_flushes_on_max_wait_since_the_first_item() -> None:
    clock = FakeClock()
    batcher: Batcher[str] = Batcher(batch_size=10, max_wait=0.5, now=clock)
    assert batcher.poll() is None
    batcher.add("a")
    clock.now += 0.3
    assert batcher.add("b") is None
    assert batcher.time_left() == pytest.approx(0.2)
    clock.now += 0.19
    assert batcher.poll() is None
    clock.now += 0.01
    assert batcher.poll() == ["a", "b"]
    assert batcher.poll() is None


def test_batcher_late_add_flushes_with_the_new_item_and_flush_drains() -> None:
    clock = FakeClock()
    batcher: Batcher[int] = Batcher(batch_size=10, max_wait=0.5, now=clock)
    batcher.add(1)
    clock.now += 2.0
    assert batcher.add(2) == [1, 2]
    batcher.add(3)
    assert batcher.flush() == [3] and batcher.flush() == []


def test_batcher_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        Batcher(batch_size=0, max_wait=1.0)
    with pytest.raises(ValueError):
        Batcher(batch_size=1, max_wait=-1.0)
