"""The Flink workload in the spec: a union with YOLO on `kind`, errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.errors import SpecError
from scalelab.spec.checks import run_checks
from scalelab.spec.loader import load_spec
from scalelab.spec.models import FlinkWorkload, YoloWorkload

REPO = Path(__file__).resolve().parents[2]
HEAD = "name: t\nload: {profile: constant, rate: 5, duration: 30s}\n"


def problems(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + body)
    try:
        spec = load_spec(path)
    except SpecError as error:
        return [str(p) for p in error.problems]
    return [str(p) for p in run_checks(spec)]


def test_a_spec_without_kind_is_still_yolo(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "workload: {workers: 2, threads: 2}\n")
    assert isinstance(load_spec(path).workload, YoloWorkload)


@pytest.mark.parametrize("example", ["flink-frames.yaml", "flink-join.yaml"])
def test_examples_are_flink_workloads(example: str) -> None:
    spec = load_spec(REPO / "examples" / example)
    assert isinstance(spec.workload, FlinkWorkload) and run_checks(spec) == []


def test_yolo_field_errors_keep_their_path_and_line(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, "workload:\n  workers: 0\n")
    assert ":4: workload.workers:" in found


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("workload:\n  kind: flink\n  delivery: twice\n", ":5: workload.delivery: Input should be"),
        (
            "workload:\n  kind: flink\n  parallelism: 5\n",
            ":5: workload.parallelism: exceeds the task slots",
        ),
        ("workload:\n  kind: spark\n", "workload"),
        (
            "workload: {kind: flink}\nfaults:\n  - {kind: kill-worker, at: 3}\n",
            "faults.0.kind: a flink workload takes 'kill-taskmanager' faults",
        ),
        (
            "workload: {kind: flink}\nfaults:\n  - {kind: kill-taskmanager, at: 3, worker: 1}\n",
            "faults.0.worker: no such TaskManager (workload.taskmanagers is 1)",
        ),
        (
            "workload:\n  kind: flink\n  schedule: [{at: 40s, parallelism: 2}]\n",
            "workload.schedule.0.at: must fall inside load.duration",
        ),
        (
            "workload:\n  kind: flink\n  job: {jar: nope.jar, entry_class: a.B}\n",
            "workload.job.jar: no such file",
        ),
        ("workload:\n  kind: flink\n  workers: 2\n", "workload.workers: unknown key"),
        (
            "workload:\n  kind: flink\n  strategy: {kind: linear, every: 10s, max: 4}\n",
            "workload.strategy.max: exceeds the task slots",
        ),
        (
            "workload:\n  kind: flink\n  strategy: {kind: linear, every: 10s, max: 2}\n"
            "  schedule: [{at: 5s, parallelism: 2}]\n",
            "workload.strategy: give a schedule or a strategy, not both",
        ),
    ],
)
def test_flink_mistakes_are_named(tmp_path: Path, body: str, expected: str) -> None:
    found = problems(tmp_path, body)
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ({"kind": "linear", "every": 20, "max": 4}, [(20, 2), (40, 3), (60, 4)]),
        ({"kind": "exponential", "every": 20, "max": 8}, [(20, 2), (40, 4), (60, 8)]),
        ({"kind": "block", "every": 10, "max": 3, "hold": 2}, [(20, 2), (40, 3)]),
        ({"kind": "linear", "every": 50, "max": 4}, [(50, 2)]),  # none at the load's end
    ],
)
def test_step_strategies_give_their_schedule(strategy: dict[str, object], expected: list) -> None:
    workload = FlinkWorkload.model_validate({"kind": "flink", "strategy": strategy})
    steps = workload.planned_steps(100)
    assert [(step.at, step.parallelism) for step in steps] == expected
