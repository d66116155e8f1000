"""Frame sources: the bytes the producer sends, read from generators and files."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any, get_args

import cv2
import h5py
import numpy as np
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from scalelab.errors import ConfigError
from scalelab.load import config
from scalelab.load.codec import FrameDecodeError, decode_frame
from scalelab.load.config import SourceSpec
from scalelab.load.sources import SOURCES, FrameSource, make_source
from scalelab.load.synthetic import draw_scene

ADAPTER: TypeAdapter[Any] = TypeAdapter(SourceSpec)


def source(base_dir: Path | None = None, **fields: Any) -> FrameSource:
    return make_source(ADAPTER.validate_python(fields), base_dir)


def take(src: FrameSource, n: int) -> list[bytes]:
    return list(islice(src.frames(), n))


def undecodable(data: bytes) -> bool:
    try:
        decode_frame(data)
    except FrameDecodeError:
        return True
    return False


# --- synthetic ---------------------------------------------------------------------------------


def test_synthetic_frames_are_deterministic_per_seed() -> None:
    small: dict[str, Any] = {"kind": "synthetic", "width": 64, "height": 48, "frames": 3}
    first = take(source(**small, seed=3), 3)
    assert first == take(source(**small, seed=3), 3)
    assert first != take(source(**small, seed=4), 3)
    assert len(set(first)) == 3


def test_synthetic_jpeg_frames_are_camera_sized() -> None:
    src = source(kind="synthetic", frames=4, quality=85)
    frames = take(src, 4)
    assert all(20_000 <= len(frame) <= 80_000 for frame in frames), [len(f) for f in frames]
    assert decode_frame(frames[0]).shape == (480, 640, 3)
    assert src.mean_frame_bytes == pytest.approx(np.mean([len(f) for f in frames]))
    assert src.source_id == "synthetic:640x480:seed=0"


def test_synthetic_frames_are_not_white_noise() -> None:
    image = draw_scene(np.random.default_rng(0), 160, 120).astype(float)
    neighbour_diff = np.abs(np.diff(image, axis=1)).mean()
    assert neighbour_diff < 10, "adjacent pixels should mostly be alike"
    assert image.std() > 20, "the frame should not be flat"


def test_synthetic_raw_frames_round_trip() -> None:
    src = source(kind="synthetic", width=32, height=24, frames=2, encoding="raw", seed=5)
    rng = np.random.default_rng(5)
    expected = [draw_scene(rng, 32, 24) for _ in range(2)]
    decoded = [decode_frame(frame) for frame in take(src, 2)]
    assert all(np.array_equal(a, b) for a, b in zip(decoded, expected, strict=True))


def test_frames_cycle_forever() -> None:
    src = source(kind="synthetic", width=32, height=24, frames=3)
    frames = take(src, 7)
    assert frames[3:6] == frames[0:3] and frames[6] == frames[0]


# --- directory ---------------------------------------------------------------------------------


def _image(level: int, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    image = np.zeros((*size, 3), dtype=np.uint8)
    image[:, :, 0] = level
    image[:, :, 2] = 255 - level
    return image


def test_directory_images_in_sorted_order(tmp_path: Path) -> None:
    images = tmp_path / "frames"
    images.mkdir()
    cv2.imwrite(str(images / "b.png"), _image(20))
    cv2.imwrite(str(images / "a.PNG"), _image(10))
    cv2.imwrite(str(images / "c.jpg"), _image(30))
    (images / "notes.txt").write_text("not an image")
    src = source(tmp_path, kind="directory", path="frames", encoding="raw")
    levels = [int(decode_frame(frame)[0, 0, 0]) for frame in take(src, 3)]
    assert levels[:2] == [10, 20] and abs(levels[2] - 30) <= 3
    assert src.source_id == f"directory:{images}"


def test_directory_jpeg_files_pass_through(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "x.jpg"), _image(50), [cv2.IMWRITE_JPEG_QUALITY, 40])
    src = source(kind="directory", path=str(tmp_path), quality=95)
    assert take(src, 1) == [(tmp_path / "x.jpg").read_bytes()]


def test_directory_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{tmp_path / 'nowhere'}: no such directory"):
        source(tmp_path, kind="directory", path="nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"empty: no file matches \*\.jpg"):
        source(tmp_path, kind="directory", path="empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(ConfigError, match="broken.png"):
        source(tmp_path, kind="directory", path="bad")


# --- video -------------------------------------------------------------------------------------


def _write_video(path: Path, levels: list[int]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (32, 24))
    assert writer.isOpened()
    for level in levels:
        writer.write(np.full((24, 32, 3), level, dtype=np.uint8))
    writer.release()


def test_video_frames_are_decoded_and_cycled(tmp_path: Path) -> None:
    _write_video(tmp_path / "clip.avi", [0, 60, 120, 180, 240])
    src = source(tmp_path, kind="video", path="clip.avi")
    means = [decode_frame(frame).mean() for frame in take(src, 6)]
    assert means[:5] == pytest.approx([0, 60, 120, 180, 240], abs=5)
    assert means[5] == means[0]
    assert len(source(tmp_path, kind="video", path="clip.avi", max_frames=3)) == 3


def test_video_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.avi: no such file"):
        source(tmp_path, kind="video", path="missing.avi")
    (tmp_path / "junk.avi").write_bytes(b"not a video" * 100)
    with pytest.raises(ConfigError, match="junk.avi"):
        source(tmp_path, kind="video", path="junk.avi")


# --- hdf5 --------------------------------------------------------------------------------------


def _recording(path: Path, metadata_as: str = "attribute") -> None:
    frames = np.zeros((6, 24, 32, 3), dtype=np.uint8)
    frames[:, :, :, 0] = (np.arange(6) * 40)[:, None, None]  # red, stored RGB
    with h5py.File(path, "w") as file:
        file.create_dataset("sensors/front", data=frames)
        file.create_dataset("sensors/gray", data=frames[:, :, :, 0])
        file.create_dataset("is_enabled/front", data=np.array([1, 0, 1, 1, 0, 1], dtype=bool))
        metadata = json.dumps({"n_frames": 5})
        if metadata_as == "attribute":
            file.attrs["metadata"] = metadata
        else:
            file.create_dataset("metadata", data=metadata)


@pytest.mark.parametrize("metadata_as", ["attribute", "dataset"])
def test_hdf5_reads_enabled_frames_only(tmp_path: Path, metadata_as: str) -> None:
    _recording(tmp_path / "rec.h5", metadata_as)
    src = source(tmp_path, kind="hdf5", path="rec.h5", sensor="front", encoding="raw")
    decoded = [decode_frame(frame) for frame in take(src, 3)]
    assert [int(image[0, 0, 2]) for image in decoded] == [0, 80, 120]  # red lands in BGR's 2
    assert len(src) == 3
    assert src.source_id == f"hdf5:{tmp_path / 'rec.h5'}#front"


def test_hdf5_single_channel_frames_without_flags(tmp_path: Path) -> None:
    _recording(tmp_path / "rec.h5")
    src = source(tmp_path, kind="hdf5", path="rec.h5", sensor="gray", encoding="raw")
    assert len(src) == 5
    assert decode_frame(take(src, 2)[1])[0, 0].tolist() == [40, 40, 40]


def test_hdf5_errors_name_the_path(tmp_path: Path) -> None:
    _recording(tmp_path / "rec.h5")
    with pytest.raises(ConfigError, match=r"rec\.h5: no dataset 'sensors/rear' \(found: front"):
        source(tmp_path, kind="hdf5", path="rec.h5", sensor="rear")
    with h5py.File(tmp_path / "other.h5", "w") as file:
        file.create_dataset("images", data=np.zeros((2, 4, 4), dtype=np.uint8))
    with pytest.raises(ConfigError, match="other.h5.*no 'sensors' group"):
        source(tmp_path, kind="hdf5", path="other.h5", sensor="front")
    (tmp_path / "fake.h5").write_bytes(b"plain text")
    with pytest.raises(ConfigError, match="fake.h5: not a readable HDF5 file"):
        source(tmp_path, kind="hdf5", path="fake.h5", sensor="front")


# --- corruption --------------------------------------------------------------------------------


def test_corrupt_fraction_yields_that_share_of_undecodable_frames() -> None:
    fields: dict[str, Any] = {"kind": "synthetic", "width": 32, "height": 24, "frames": 4}
    src = source(**fields, corrupt_fraction=0.2, seed=9)
    frames = take(src, 5000)
    bad = [undecodable(frame) for frame in frames]
    assert 0.18 < np.mean(bad) < 0.22
    good = take(source(**fields, seed=9), 5000)
    assert all(frame == clean for frame, clean, b in zip(frames, good, bad, strict=True) if not b)
    assert all(len(f) == len(c) for f, c in zip(frames, good, strict=True))
    assert frames == take(source(**fields, corrupt_fraction=0.2, seed=9), 5000)


def test_fully_corrupt_source_and_raw_encoding() -> None:
    src = source(
        kind="synthetic", width=32, height=24, frames=2, encoding="raw", corrupt_fraction=1
    )
    assert all(undecodable(frame) for frame in take(src, 50))


# --- spec --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "camera"}, "does not match any of the expected tags"),
        ({"kind": "synthetic", "quality": 0}, "greater than or equal to 1"),
        ({"kind": "synthetic", "corrupt_fraction": 1.5}, "less than or equal to 1"),
        ({"kind": "synthetic", "encoding": "png"}, "'jpeg' or 'raw'"),
        ({"kind": "video"}, "path"),
        ({"kind": "directory", "path": "x", "glob": "*.jpg"}, "Extra inputs"),
    ],
)
def test_bad_source_specs_are_rejected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ADAPTER.validate_python(fields)


def test_registry_and_descriptions_cover_every_source() -> None:
    models: list[type[BaseModel]] = [
        config.SyntheticSpec,
        config.DirectorySpec,
        config.VideoSpec,
        config.Hdf5Spec,
    ]
    assert set(SOURCES) == {get_args(model.model_fields["kind"].annotation)[0] for model in models}
    for model in models:
        for name, properties in model.model_json_schema()["properties"].items():
            assert properties.get("description"), f"{model.__name__}.{name}"
