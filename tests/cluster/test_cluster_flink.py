"""`scalelab run examples/flink-kubernetes.yaml` on the real cluster, through the CLI.

The run's own Flink session cluster (JobManager and TaskManager Deployments from the
component image) beside its own Kafka and Prometheus; the frames job submitted over the
JobManager's REST API through a port-forward. What a user relies on: the job runs, the
accounting is exact with nothing lost, Flink's metrics are in metrics.parquet, a
TaskManager pod killed mid-run is survived, and nothing is left on the cluster.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")
import pyarrow.parquet as pq  # noqa: E402
from cluster_cli import run_cli  # noqa: E402

from scalelab.platform.kubernetes import labels  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "flink-kubernetes.yaml"


def run_flink(tmp_path: Path, *overrides: str) -> tuple[dict[str, Any], Path]:
    return run_cli(tmp_path, *overrides, example=EXAMPLE)


def flink_metrics(run_dir: Path) -> set[str]:
    metrics = pq.read_table(run_dir / "metrics.parquet", columns=["metric"]).column(0)
    return {n for n in metrics.unique().to_pylist() if n.startswith("flink_")}


def assert_left_nothing(cluster: Any, namespace: str, run_id: str) -> None:
    assert cluster.get("v1", "Namespace", namespace) is None
    selector = labels.run_selector(run_id)
    assert cluster.list("rbac.authorization.k8s.io/v1", "ClusterRole", None, selector) == []


def test_the_frames_job_runs_on_the_cluster_and_loses_nothing(
    cluster: Any, image: str, tmp_path: Path
) -> None:
    namespace = f"scalelab-f-{secrets.token_hex(3)}"
    record, run_dir = run_flink(tmp_path, f"platform.namespace={namespace}")
    assert record["status"] == "succeeded", record["errors"]
    assert record["versions"]["flink"] == "2.3.0"  # the image's jars, as the JobManager says
    assert record["versions"]["flink_mode"] == "scalelab"
    assert record["endpoints"]["cluster_bootstrap"] == f"kafka.{namespace}.svc:9092"
    (running,) = [e for e in record["events"] if e["kind"] == "flink-job-running"]
    assert "first checkpoint done" in running["detail"]
    summary = json.loads((run_dir / "summary.json").read_text())
    accounting = summary["accounting"]
    assert accounting["ok"] and accounting["lost"] == 0, accounting
    assert accounting["produced"] == (
        accounting["processed"] + accounting["dead_lettered"] + accounting["still_queued"]
    )
    assert accounting["processed"] > 0
    assert summary["verdict"]["valid"], summary["verdict"]["reasons"]
    qos = pq.read_table(run_dir / "qos.parquet").to_pandas()
    assert set(qos.worker) == {"flink-0"}  # the Flink subtask, in the workers' contract
    names = flink_metrics(run_dir)
    for family in (
        "flink_taskmanager_job_task_busyTimeMsPerSecond",
        "flink_taskmanager_job_task_numRecordsIn",
        "flink_jobmanager_job_numberOfCompletedCheckpoints",
        "flink_jobmanager_numRegisteredTaskManagers",
    ):
        assert family in names, sorted(names)
    assert summary["flink"]["checkpoints"]["completed"] > 0
    logs = {p.name.split("-")[0] for p in (run_dir / "logs").glob("*.log")}
    assert {"jobmanager", "taskmanager", "kafka", "tracker"} <= logs
    assert_left_nothing(cluster, namespace, record["id"])


def test_a_killed_taskmanager_pod_is_replaced_and_nothing_is_lost(
    cluster: Any, image: str, tmp_path: Path
) -> None:
    """kill-taskmanager: the pod is deleted at once, its Deployment starts another, Flink
    restarts the job from its last checkpoint; what was processed after it is processed
    again (duplicates, counted), nothing is lost."""
    namespace = f"scalelab-ft-{secrets.token_hex(3)}"
    record, run_dir = run_flink(
        tmp_path,
        f"platform.namespace={namespace}",
        "load.duration=50s",
        "faults=[{kind: kill-taskmanager, at: 15, worker: 0}]",
    )
    assert record["status"] == "succeeded", record["errors"]
    (kill,) = [e for e in record["events"] if e["kind"] == "kill-taskmanager"]
    found = re.match(r"SIGKILL (\S+) at [0-9.]+ s; (\S+) started", kill["detail"])
    assert found, kill["detail"]
    victim, replacement = found.groups()
    assert victim.startswith("taskmanager-") and replacement.startswith("taskmanager-")
    assert victim != replacement
    summary = json.loads((run_dir / "summary.json").read_text())
    accounting = summary["accounting"]
    assert accounting["ok"] and accounting["lost"] == 0, accounting
    qos = pq.read_table(run_dir / "qos.parquet").to_pandas()
    assert accounting["duplicates"] == len(qos) - qos.id.nunique()
    assert summary["flink"]["restarts"] >= 1, summary["flink"]
    assert (run_dir / "logs" / f"{victim}.log").is_file()  # saved before the pod went
    assert_left_nothing(cluster, namespace, record["id"])


def test_a_savepoint_rescale_restores_from_the_jobmanagers_volume(
    cluster: Any, image: str, tmp_path: Path
) -> None:
    """rescale: savepoint stops the job with a savepoint on the JobManager pod's emptyDir and
    resubmits it at parallelism 2 from there: the state travels inside the savepoint's
    metadata, so the TaskManager needs no shared volume; nothing is lost."""
    namespace = f"scalelab-fs-{secrets.token_hex(3)}"
    record, run_dir = run_flink(
        tmp_path,
        f"platform.namespace={namespace}",
        "workload.rescale=savepoint",
        "workload.schedule=[{at: 15s, parallelism: 2}]",
    )
    assert record["status"] == "succeeded", record["errors"]
    (rescale,) = record["results"]["flink"]["rescales"]
    assert (rescale["source"], rescale["target"]) == (1, 2)
    assert rescale["effective_ns"] and rescale["completed_ns"], rescale
    assert len(record["results"]["flink"]["job_ids"]) == 2  # resubmitted from the savepoint
    accounting = json.loads((run_dir / "summary.json").read_text())["accounting"]
    assert accounting["ok"] and accounting["lost"] == 0, accounting
    qos = pq.read_table(run_dir / "qos.parquet").to_pandas()
    assert {"flink-0", "flink-1"} <= set(qos.worker)  # both subtasks processed after it
    assert_left_nothing(cluster, namespace, record["id"])


def test_the_join_is_fed_sensor_records_and_loses_nothing(
    cluster: Any, image: str, tmp_path: Path
) -> None:
    """The windowed join (keyed window state in checkpoints) with its sensor producer pod:
    every input record leaves one output record, none dead-lettered."""
    namespace = f"scalelab-fj-{secrets.token_hex(3)}"
    record, run_dir = run_flink(
        tmp_path,
        f"platform.namespace={namespace}",
        "workload.job=join",
        "workload.join={window: 1s, lateness: 500ms, fibonacci: 20, keys: 20}",
        "load.rate=10",
        "load.duration=30s",
    )
    assert record["status"] == "succeeded", record["errors"]
    accounting = json.loads((run_dir / "summary.json").read_text())["accounting"]
    assert accounting["ok"] and accounting["lost"] == 0, accounting
    assert accounting["dead_lettered"] == 0 and accounting["processed"] > 0, accounting
    assert any((run_dir / "logs").glob("producer-*.log"))
    assert_left_nothing(cluster, namespace, record["id"])
