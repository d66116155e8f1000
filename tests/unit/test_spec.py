"""The spec loader and its checks: what a user sees for a bad spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from scalelab.errors import SpecError
from scalelab.spec.loader import dump_spec, load_resolved, load_spec
from scalelab.spec.models import ExperimentSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MINIMAL = "name: demo\nload:\n  profile: constant\n  rate: 5\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, text), overrides)
    return [str(p) for p in caught.value.problems]


def test_minimal_spec_fills_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL))
    assert spec.platform.kind == "local"
    assert spec.broker.partitions == 2
    assert spec.workload.workers == 2
    assert spec.source.kind == "synthetic"
    assert spec.base_dir == tmp_path


def test_unknown_key_names_path_file_and_line(tmp_path: Path) -> None:
    text = MINIMAL + "broker:\n  partitions: 2\n  partitons: 3\n"
    (line,) = problems(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'spec.yaml'}:7: broker.partitons: unknown key")


def test_every_problem_reported_with_its_line(tmp_path: Path) -> None:
    text = "name: demo\nworkload:\n  threads: zero\nload:\n  profile: constant\n  rate: -5\n"
    lines = problems(tmp_path, text)
    assert any(":3: workload.threads:" in line and "'zero'" in line for line in lines)
    assert any(":6: load.rate:" in line and "greater than 0" in line for line in lines)


def test_missing_required_field(tmp_path: Path) -> None:
    (line,) = problems(tmp_path, "name: demo\n")
    assert "load: required field is missing" in line


def test_unknown_profile_is_named(tmp_path: Path) -> None:
    lines = problems(tmp_path, "name: demo\nload:\n  profile: zigzag\n  rate: 1\n")
    assert any("load" in line and "zigzag" in line for line in lines)


def test_partitions_must_cover_workers(tmp_path: Path) -> None:
    text = MINIMAL + "broker:\n  partitions: 1\nworkload:\n  workers: 3\n"
    (line,) = problems(tmp_path, text)
    assert ":6: broker.partitions: must be at least workload.workers (3)" in line


def test_faults_must_leave_a_worker(tmp_path: Path) -> None:
    text = MINIMAL + "workload:\n  workers: 1\nfaults:\n  - {kind: kill-worker, at: 1}\n"
    assert any("would kill every worker" in line for line in problems(tmp_path, text))


def test_set_overrides_fields_and_is_blamed(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    spec = load_spec(path, ["workload.workers=1", "load.rate=12.5", "broker.storage=reuse"])
    assert (spec.workload.workers, spec.load.rate, spec.broker.storage) == (1, 12.5, "reuse")
    (line,) = problems(tmp_path, MINIMAL, ("workload.imgsz=100",))
    assert line.startswith("--set: workload.imgsz: must be a multiple of 32")


def test_durations_accept_units(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL), ["load.duration=2m", "load.warmup=30s"])
    assert (spec.load.duration, spec.load.warmup) == (120.0, 30.0)


def test_not_yaml_points_at_the_line(tmp_path: Path) -> None:
    (line,) = problems(tmp_path, "name: demo\nload: [unclosed\n")
    assert "not valid YAML" in line


def test_resolved_spec_round_trips(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL))
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(dump_spec(spec))
    assert YAML(typ="safe").load(resolved.read_text())["broker"]["input_topic"] == "scalelab.input"
    assert load_resolved(resolved).model_dump() == spec.model_dump()


def test_json_schema_forbids_unknown_keys() -> None:
    schema = ExperimentSpec.model_json_schema()
    assert schema["additionalProperties"] is False
    assert "load" in schema["required"]
    assert json.dumps(schema)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(example: Path) -> None:
    assert load_spec(example).name
