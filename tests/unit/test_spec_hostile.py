"""Hostile specs: every bad input ends as a SpecError naming where, never a traceback or a hang.

Also the spec's bounds (a spec that validates can run), its JSON Schema (stock
validators accept the examples), its evidence fields, and the source check that
refuses a bad frame source before anything starts.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import cv2
import h5py
import jsonschema
import numpy as np
import pytest
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML

from scalelab.errors import SpecError
from scalelab.load.config import ConstantLoad, StepLoad
from scalelab.load.source_config import SyntheticSpec
from scalelab.spec.loader import MAX_SPEC_BYTES, MAX_VALUES, load_spec
from scalelab.spec.models import ExperimentSpec, YoloWorkload, spec_json_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MINIMAL = "name: demo\nload:\n  profile: constant\n  rate: 5\n"


def write(tmp_path: Path, text: str | bytes, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems(path: Path, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path, overrides)
    # a problem with the whole file has no field path: `file:line: message`
    return [str(p).replace(": : ", ": ") for p in caught.value.problems]


def laughs(levels: int = 9) -> str:
    """The billion-laughs document: `levels` lists of nine aliases to the list before."""
    lines = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "[" + ", ".join(lines) + "]"


# --- input that used to raise a traceback ------------------------------------------------------


def test_non_utf8_file_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, b"name: demo\ndescription: caf\xe9\nload: {profile: constant, rate: 1}\n"
    )
    (line,) = problems(path)
    assert line.startswith(f"{path}:2: ")
    assert "not UTF-8 text: byte 0xe9 at column 17" in line


def test_set_that_does_not_parse_is_blamed_on_set(tmp_path: Path) -> None:
    (line,) = problems(write(tmp_path, MINIMAL), ("workload.workers=[1, 2",))
    assert line.startswith("--set: workload.workers: not valid YAML")
    assert line.endswith("(got '[1, 2')")


def test_set_into_a_list_with_a_non_ascii_digit_is_refused(tmp_path: Path) -> None:
    spec = MINIMAL + "faults:\n  - {kind: kill-worker, at: 20}\n"
    (line,) = problems(write(tmp_path, spec), ("faults.²=1",))
    assert line.startswith("--set: faults.²: no such list item"), line


def test_set_with_a_python_tag_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    overrides = (f'load.rate=!!python/object/apply:os.system ["touch {marker}"]',)
    (line,) = problems(write(tmp_path, MINIMAL), overrides)
    assert line.startswith("--set: load.rate: not valid YAML: could not determine a constructor")
    assert not marker.exists()
    (line,) = problems(write(tmp_path, MINIMAL), ("load.rate=!!python/object:os.system ls",))
    assert line.startswith("--set: load.rate: not valid YAML")


def test_python_tag_in_the_file_is_a_wrong_type(tmp_path: Path) -> None:
    text = "name: demo\nload: {profile: constant, rate: !!python/object:os.system ls}\n"
    (line,) = problems(write(tmp_path, text))
    assert f"{tmp_path / 'spec.yaml'}:2: load.rate: Input should be a valid number" in line


def test_recursive_alias_in_set_is_refused(tmp_path: Path) -> None:
    (line,) = problems(write(tmp_path, MINIMAL), ("description=&a [*a]",))
    assert line.startswith("--set: description.0: refers to itself (a recursive YAML alias)")


def test_recursive_alias_in_the_file_is_a_problem(tmp_path: Path) -> None:
    (line,) = problems(write(tmp_path, MINIMAL + "description: &a [*a]\n"))
    assert ":5: description:" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: demo\x00\nload: {profile: constant, rate: 1}\n", ":1: not valid YAML"),
        ("name: demo\nname: x\nload: {profile: constant, rate: 1}\n", ":2: not valid YAML"),
        ("name: demo\nload: {profile: constant, rate: " + "1" * 5000 + "}\n", "4300 digits"),
        ("name: demo\n" + "x: " + "[" * 2000 + "]" * 2000 + "\n", "nested deeper than"),
        ("- 1\n", ":1: a spec must be a YAML mapping"),
    ],
    ids=["nul-byte", "duplicate-key", "huge-integer", "deep-nesting", "not-a-mapping"],
)
def test_malformed_yaml_is_a_spec_error(tmp_path: Path, text: str, expected: str) -> None:
    (line,) = problems(write(tmp_path, text))
    assert expected in line


def test_set_into_a_list_item_and_past_a_value(tmp_path: Path) -> None:
    text = "name: demo\nload:\n  profile: step\n  steps:\n    - {rate: 1, duration: 5}\n"
    load = load_spec(write(tmp_path, text), ["load.steps.0.rate=3"]).load
    assert isinstance(load, StepLoad) and load.steps[0].rate == 3
    (line,) = problems(write(tmp_path, text), ("load.steps.4.rate=3",))
    assert line.startswith("--set: load.steps.4: no such list item")
    (line,) = problems(write(tmp_path, MINIMAL), ("load.rate.x=3",))
    assert line.startswith("--set: load.rate: is not a section")


# --- alias bombs and size ----------------------------------------------------------------------


def test_billion_laughs_file_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + f"description: {laughs()}\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}:5: description: expands to more than {MAX_VALUES:,} values")


def test_billion_laughs_in_set_is_refused(tmp_path: Path) -> None:
    (line,) = problems(write(tmp_path, MINIMAL), (f"description={laughs()}",))
    assert line.startswith(f"--set: description: expands to more than {MAX_VALUES:,} values")


def test_billion_laughs_in_a_complex_key_is_refused(tmp_path: Path) -> None:
    (line,) = problems(write(tmp_path, MINIMAL + f"? {laughs()}\n: 1\n"))
    assert "not valid YAML" in line or "expands to more than" in line


def test_aliases_within_bounds_still_work(tmp_path: Path) -> None:
    text = (
        "name: demo\nload:\n  profile: step\n  steps:\n"
        "    - &slow {rate: 1, duration: 5}\n    - {rate: 4, duration: 5}\n    - *slow\n"
    )
    load = load_spec(write(tmp_path, text)).load
    assert isinstance(load, StepLoad) and [s.rate for s in load.steps] == [1, 4, 1]


def test_oversized_spec_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "description: " + "x" * MAX_SPEC_BYTES + "\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}: spec is {path.stat().st_size:,} bytes, more than the")


PROC_MEM = Path("/proc/self/mem")


@pytest.mark.skipif(not PROC_MEM.is_file(), reason="needs Linux /proc")
def test_unreadable_spec_is_a_spec_error() -> None:
    """/proc/self/mem is a regular file whose first bytes cannot be read, even by root."""
    (line,) = problems(PROC_MEM)
    assert line == f"{PROC_MEM}: cannot read: Input/output error"


# --- bounds: a spec that validates can run -----------------------------------------------------


def _float_fields(model: type[BaseModel], prefix: str) -> list[str]:
    """Dotted paths of every float field of `model` and its sub-sections."""
    found: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = field.annotation
        if name == "load":
            found += _float_fields(ConstantLoad, "load.")
        elif name == "source":
            found += _float_fields(SyntheticSpec, "source.")
        elif name == "workload":
            found += _float_fields(YoloWorkload, "workload.")
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _float_fields(annotation, path + ".")
        elif annotation is float or float in _members(annotation):
            found.append(path)
    return found


def _members(annotation: Any) -> tuple[Any, ...]:
    origin = get_origin(annotation)
    return get_args(annotation) if origin in (Union, types.UnionType) else ()


FLOAT_FIELDS = _float_fields(ExperimentSpec, "")


def test_float_fields_were_found() -> None:
    assert {"load.rate", "load.duration", "monitoring.scrape_interval"} <= set(FLOAT_FIELDS)
    assert {"slo.max_foreign_cpu", "workload.conf_threshold"} <= set(FLOAT_FIELDS)


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [".inf", ".nan", "1e300"])
def test_every_float_field_is_finite_and_bounded(tmp_path: Path, field: str, value: str) -> None:
    found = problems(write(tmp_path, MINIMAL), ("source.kind=synthetic", f"{field}={value}"))
    assert any(line.startswith(f"--set: {field}: ") for line in found), found


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("load.rate=1e12", "load.rate: Input should be less than or equal to 1000000"),
        ("load.duration=3153600000", "load.duration: must be at most 7 days (604800 s)"),
        ("load.duration=100y", "load.duration: expected a duration like 30"),
        ("monitoring.scrape_interval=2h", "monitoring.scrape_interval: must be at most 1 h"),
        ("monitoring.scrape_interval=.inf", "scrape_interval: must be a finite number of seconds"),
        ("slo.latency_p99=.inf", "slo.latency_p99: must be a finite number of seconds"),
        ("slo.max_foreign_cpu=1.5", "slo.max_foreign_cpu: Input should be less than or equal"),
        ("slo.min_samples=-1", "slo.min_samples: Input should be greater than or equal to 0"),
        ("broker.heap_mb=1000000000", "broker.heap_mb: Input should be less than or equal"),
        ("broker.replication=1000", "broker.replication: Input should be less than or equal"),
        ("workload.imgsz=100000", "workload.imgsz: Input should be less than or equal to 8192"),
        ("source.seed=100000000000000000000", "source.seed: Input should be less than or equal"),
    ],
)
def test_bounds_name_field_and_value(tmp_path: Path, override: str, expected: str) -> None:
    found = problems(write(tmp_path, MINIMAL), ("source.kind=synthetic", override))
    matching = [line for line in found if expected in line]
    assert matching, found
    assert "(got " in matching[0]


@pytest.mark.parametrize(
    "load",
    [
        "{profile: step, steps: [{rate: .inf, duration: 5}]}",
        "{profile: step, steps: [{rate: 1, duration: 1000d}]}",
        "{profile: ramp, start_rate: 0, end_rate: 1e9}",
        "{profile: sine, mean_rate: .inf, amplitude: 1, period: 10}",
        "{profile: sine, mean_rate: 5, amplitude: 1, period: .nan}",
        "{profile: diurnal, peak_rate: 1e7}",
        "{profile: diurnal, peak_rate: 5, cycles: .inf}",
        "{profile: poisson, rate: .nan}",
        "{profile: constant, rate: 20000, unit: mbps}",
        "{profile: constant, rate: 5, max_mbps: .inf}",
    ],
)
def test_every_profile_is_bounded(tmp_path: Path, load: str) -> None:
    found = problems(write(tmp_path, f"name: demo\nload: {load}\n"))
    assert any(":2: load" in line for line in found), found


def test_durations_keep_their_units(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL), ["load.duration=2d", "slo.latency_p99=250ms"])
    assert (spec.load.duration, spec.slo.latency_p99) == (172800.0, 0.25)


# --- evidence fields (team contract 7) ---------------------------------------------------------


def test_evidence_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL))
    assert spec.slo.min_samples == 100
    assert spec.slo.min_load_duration == 30
    assert spec.slo.max_foreign_cpu == 0.5
    assert spec.workload.imgsz is None


def test_imgsz_when_set_is_a_multiple_of_32(tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, MINIMAL), ["workload.imgsz=320"]).workload.imgsz == 320
    (line,) = problems(write(tmp_path, MINIMAL), ("workload.imgsz=100",))
    assert line == "--set: workload.imgsz: must be a multiple of 32 (got 100)"


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_load_long_enough_for_their_own_verdict(example: Path) -> None:
    spec = load_spec(example)
    assert spec.load.duration - spec.load.warmup >= spec.slo.min_load_duration


# --- JSON Schema -------------------------------------------------------------------------------


SCHEMA = spec_json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_schema_is_standard_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    nonstandard = {"gt", "ge", "lt", "le"} & _keywords(SCHEMA)
    assert not nonstandard


def _keywords(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in _keywords(value)}
    if isinstance(node, list):
        return {k for value in node for k in _keywords(value)}
    return set()


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_validates_against_the_schema(example: Path) -> None:
    document = YAML(typ="safe").load(example.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (("workload", "workers"), "two"),
        (("monitoring", "scrape_interval"), "1 fortnight"),
        (("monitoring", "scrape_interval"), 7200),
        (("load", "rate"), 1e12),
        (("broker", "partitons"), 2),
    ],
)
def test_schema_rejects_what_the_loader_rejects(field: tuple[str, str], value: object) -> None:
    document = YAML(typ="safe").load((EXAMPLES / "quickstart.yaml").read_text())
    section, key = field
    document[section][key] = value
    assert not VALIDATOR.is_valid(document)
    with pytest.raises(ValidationError):
        ExperimentSpec.model_validate(document)


# --- the source check --------------------------------------------------------------------------


def _directory_spec(tmp_path: Path, extra: str = "") -> Path:
    text = f"name: demo\nsource:\n  kind: directory\n  path: frames\n{extra}{MINIMAL[11:]}"
    return write(tmp_path, text)


def test_directory_of_non_images_is_refused_by_validation(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    for i in range(30):
        (tmp_path / "frames" / f"{i:02d}.jpg").write_text(f"not an image {i}")
    (line,) = problems(_directory_spec(tmp_path))
    assert line.startswith(f"{tmp_path / 'spec.yaml'}:4: source.path: not an image OpenCV")
    assert "00.jpg" in line


def test_missing_directory_and_no_match_are_refused(tmp_path: Path) -> None:
    (line,) = problems(_directory_spec(tmp_path))
    assert f":4: source.path: no such directory (got '{tmp_path / 'frames'}')" in line
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "notes.txt").write_text("hello")
    (line,) = problems(_directory_spec(tmp_path))
    assert ":4: source.path: no file matches *.jpg, *.jpeg, *.png" in line


def test_directory_of_images_passes(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "a.png"), np.zeros((8, 8, 3), dtype=np.uint8))
    assert load_spec(_directory_spec(tmp_path)).source.kind == "directory"


def test_cluster_paths_are_not_checked_here(tmp_path: Path) -> None:
    spec = load_spec(_directory_spec(tmp_path), ["platform.kind=kubernetes"])
    assert spec.source.kind == "directory"


def test_unreadable_video_is_refused(tmp_path: Path) -> None:
    (tmp_path / "clip.avi").write_bytes(b"not a video" * 100)
    text = "name: demo\nsource: {kind: video, path: clip.avi}\n" + MINIMAL[11:]
    (line,) = problems(write(tmp_path, text))
    assert ":2: source.path: " in line and "clip.avi" in line


def test_hdf5_without_the_sensor_blames_the_sensor(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "rec.h5", "w") as file:
        file.create_dataset("sensors/front", data=np.zeros((2, 8, 8, 3), dtype=np.uint8))
    text = "name: demo\nsource:\n  kind: hdf5\n  path: rec.h5\n  sensor: rear\n" + MINIMAL[11:]
    (line,) = problems(write(tmp_path, text))
    assert ":5: source.sensor: no dataset 'sensors/rear' (found: front)" in line
