"""`workload: {kind: flink}` end to end: a real Flink cluster, broker, Prometheus, producer
and tracker. Outcomes only (counts, statuses, events, reasons): the machine is shared."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .conftest import JOBS_JAR, recorded_pids, run_flink

pytestmark = pytest.mark.e2e

BASE = """\
name: flink-test
broker: {partitions: 2}
monitoring: {scrape_interval: 1s}
source: {kind: synthetic, width: 160, height: 120, encoding: jpeg}
load: {profile: constant, rate: 5, duration: 30s, warmup: 0s}
slo: {min_load_duration: 10s, min_samples: 10}
"""


def write_spec(tmp_path: Path, workload: str, extra: str = "") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + workload + extra)
    return path


def summary(run_dir: Path) -> dict[str, object]:
    return dict(json.loads((run_dir / "summary.json").read_text()))


def qos_workers(run_dir: Path) -> set[str]:
    return set(pq.read_table(run_dir / "qos.parquet").column("worker").to_pylist())


def test_rescale_mid_run_loses_nothing(tmp_path: Path) -> None:
    """Submitted over REST, ready, rescaled 1 → 2 by the adaptive scheduler mid-load."""
    spec = write_spec(
        tmp_path,
        """\
workload:
  kind: flink
  parallelism: 1
  taskmanagers: 1
  slots_per_taskmanager: 2
  checkpoint_interval: 1s
  rescale_cooldown: 1s
  schedule: [{at: 12s, parallelism: 2}]
""",
    )
    run_dir, record = run_flink(spec)
    assert record["status"] == "succeeded", record.get("errors")
    accounting = summary(run_dir)["accounting"]
    assert accounting["ok"] and accounting["lost"] == 0, accounting  # type: ignore[index]
    assert accounting["produced"] == 150  # type: ignore[index]
    assert accounting["processed"] + accounting["dead_lettered"] == 150  # type: ignore[index]
    kinds = [event["kind"] for event in record["events"]]
    assert "flink-job-running" in kinds and "rescale-completed" in kinds, kinds
    (change,) = record["results"]["flink"]["rescales"]
    assert change["target"] == 2 and change["effective_ns"] >= change["requested_ns"]
    assert change["completed_ns"] >= change["effective_ns"]
    assert qos_workers(run_dir) == {"flink-0", "flink-1"}  # both subtasks processed frames
    metrics = set(pq.read_table(run_dir / "metrics.parquet").column("metric").to_pylist())
    assert "flink_taskmanager_job_task_busyTimeMsPerSecond" in metrics
    assert "flink_jobmanager_job_lastCheckpointDuration" in metrics
    assert recorded_pids() == []


def test_killed_taskmanager_recovers_from_checkpoint(tmp_path: Path) -> None:
    """SIGKILL the only TaskManager mid-load: a replacement starts, the job restarts from
    its last checkpoint, re-processed frames are counted as duplicates, none is lost."""
    spec = write_spec(
        tmp_path,
        """\
workload: {kind: flink, parallelism: 1, taskmanagers: 1, checkpoint_interval: 1s}
""",
        "faults: [{kind: kill-taskmanager, at: 10s, worker: 0}]\n",
    )
    run_dir, record = run_flink(spec)
    assert record["status"] == "succeeded", record.get("errors")
    accounting = summary(run_dir)["accounting"]
    assert accounting["ok"] and accounting["lost"] == 0, accounting  # type: ignore[index]
    assert accounting["produced"] == 150  # type: ignore[index]
    kills = [e for e in record["events"] if e["kind"] == "kill-taskmanager"]
    assert len(kills) == 1 and "taskmanager-0" in kills[0]["detail"]
    restarts = pq.read_table(run_dir / "metrics.parquet").to_pandas()
    restarts = restarts[restarts.metric == "flink_jobmanager_job_numRestarts"]
    assert restarts.value.max() >= 1  # the job restarted (from its checkpoint)
    assert (run_dir / "logs" / "taskmanager-1.log").is_file()  # the replacement
    assert recorded_pids() == []


@pytest.mark.parametrize(
    ("job", "named"),
    [
        ({"entry_class": "io.scalelab.flink.NoSuchJob", "args": []}, "io.scalelab.flink.NoSuchJob"),
        (
            {"entry_class": "io.scalelab.flink.FramesJob", "args": ["--bogus", "1"]},
            "unknown argument --bogus",
        ),
    ],
)
def test_bad_job_is_refused_before_load(tmp_path: Path, job: dict[str, object], named: str) -> None:
    """A wrong entry class or argument fails the run at deploy, naming it; no load is sent."""
    workload = {"kind": "flink", "job": {"jar": str(JOBS_JAR), **job}}
    spec = write_spec(tmp_path, f"workload: {json.dumps(workload)}\n")
    run_dir, record = run_flink(spec)
    assert record["status"] == "failed"
    errors = json.dumps(record.get("errors"))
    assert named in errors, errors
    assert not (run_dir / "producer.json").exists()  # the producer never started
    assert "load" not in [phase["name"] for phase in record["phases"]]
    assert recorded_pids() == []


def test_join_rescaled_with_a_savepoint_loses_nothing(tmp_path: Path) -> None:
    """Scalehub's join on two sensor topics, rescaled 1 → 2 by stop-with-savepoint and
    resubmission: window state moves with the savepoint, every record leaves an output."""
    spec = write_spec(
        tmp_path,
        """\
workload:
  kind: flink
  job: join
  parallelism: 1
  checkpoint_interval: 1s
  rescale: savepoint
  schedule: [{at: 12s, parallelism: 2}]
  join: {window: 1s, lateness: 500ms, fibonacci: 15, keys: 10}
""",
    )
    run_dir, record = run_flink(spec)
    assert record["status"] == "succeeded", record.get("errors")
    accounting = summary(run_dir)["accounting"]
    assert accounting["ok"] and accounting["produced"] == 150, accounting  # type: ignore[index]
    flink = record["results"]["flink"]
    assert len(flink["job_ids"]) == 2  # the job was resubmitted from its savepoint
    (change,) = flink["rescales"]
    assert change["mode"] == "savepoint" and change["effective_ns"] > change["requested_ns"]
    topics = set(pq.read_table(run_dir / "qos.parquet").column("source").to_pylist())
    assert topics == {"sensors"}
    pause = summary(run_dir)["flink"]["rescales"][0]["pause_s"]  # type: ignore[index]
    assert pause is not None and pause > 0
    assert recorded_pids() == []
