"""The autoscaler section on the real cluster, through the CLI in a subprocess.

- A scalelab policy (threshold on the lag, ds2 on the pods' busy time in the run's
  Prometheus) changes the workers' Deployment: a load step scales it up, the low load after
  it may scale it down (the removed pod drains: SIGTERM, its batch committed), nothing is
  lost, and decisions.parquet explains every rescale with its times.
- `policy: hpa` is the cluster's own HorizontalPodAutoscaler on CPU: the run renders it from
  the section, scalelab scales nothing itself, and the HPA's rescales land in decisions.parquet
  with the local columns, so the scorecard reads the run like a local one.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")
import pyarrow.parquet as pq  # noqa: E402
from cluster_cli import run_cli  # noqa: E402

from scalelab.analysis.scorecard import scorecard  # noqa: E402
from scalelab.autoscale.decisions import read_decisions  # noqa: E402

SMALL_WORKERS = "platform.kubernetes.resources.worker.requests.cpu=100m"


def rescales(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["action"] in ("scale-up", "scale-down")]


def explained(row: dict[str, Any]) -> None:
    """A rescale row says what it read, why, and when it was requested, effective, complete."""
    assert row["reason"] and json.loads(str(row["inputs"])), row
    assert row["requested_ns"] and row["effective_ns"] and row["completed_ns"], row
    assert row["requested_ns"] <= row["effective_ns"] <= row["completed_ns"], row


def assert_removed_pod_drained(run_dir: Path, qos: Any) -> None:
    """The pod a scale-down removed drained: its log was kept, ending with its clean exit."""
    removed = set(qos.worker.unique()) - {qos.sort_values("done_ns").worker.iloc[-1]}
    logs = [run_dir / "logs" / f"{pod}.log" for pod in removed]
    assert any(log.is_file() and "exited with code 0" in log.read_text() for log in logs), logs


def exact(run_dir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    accounting = summary["accounting"]
    assert accounting["ok"] and accounting["lost"] == 0, accounting
    qos = pq.read_table(run_dir / "qos.parquet", columns=["id"]).column(0).to_pylist()
    assert accounting["duplicates"] == len(qos) - len(set(qos))
    return summary


STEP = (
    "load={profile: step, warmup: 5s, duration: 75s, steps: [{rate: 2, duration: 15s}, "
    "{rate: 20, duration: 20s}, {rate: 1, duration: 40s}]}"
)
STEP_AT_S, STEP_S = 15, 20


def step_run(
    cluster: Any, tmp_path: Path, autoscaler: str
) -> tuple[dict[str, Any], Path, list[dict[str, Any]]]:
    """One worker, a step from 2 to 20 frames/s at 15 s for 20 s, then 1 frame/s: the policy
    must add a second worker; the run must lose nothing."""
    namespace = f"scalelab-as-{secrets.token_hex(3)}"
    record, run_dir = run_cli(
        tmp_path,
        f"platform.namespace={namespace}",
        SMALL_WORKERS,
        "broker.partitions=2",
        "workload.workers=1",
        "workload.drain_timeout=150s",
        STEP,
        f"autoscaler={autoscaler}",
    )
    assert record["status"] == "succeeded", record["errors"]
    rows = read_decisions(run_dir / "decisions.parquet")
    done = rescales(rows)
    trail = [(r["elapsed_s"], r["action"], r["current"], r["target"], r["reason"]) for r in rows]
    assert done and done[0]["action"] == "scale-up", trail
    up = done[0]
    assert (up["current"], up["target"]) == (1, 2)
    for row in done:
        explained(row)
    qos = pq.read_table(run_dir / "qos.parquet").to_pandas()
    assert qos.worker.nunique() == 2, qos.worker.unique()  # the added pod processed frames
    summary = exact(run_dir)
    scaler = summary["autoscaler"]
    assert scaler["scale_ups"] >= 1 and scaler["max_replicas"] == 2
    kinds = [e["kind"] for e in record["events"]]
    assert "autoscaler-scale-up" in kinds and "autoscaler-rescale-completed" in kinds
    downs = [r for r in done if r["action"] == "scale-down"]
    if downs:
        assert downs[0]["target"] == 1
        assert_removed_pod_drained(run_dir, qos)
    scale_up_s = (up["completed_ns"] - up["requested_ns"]) / 1e9
    accounting = summary["accounting"]
    print(
        f"\n{rows[0]['policy']}: scale-up 1 → 2 at {up['elapsed_s']:.1f} s (step at "
        f"{STEP_AT_S} s), complete after {scale_up_s:.1f} s; rescales "
        f"{[(r['action'], r['elapsed_s']) for r in done]}; produced {accounting['produced']}, "
        f"processed {accounting['processed']}, lost {accounting['lost']}, duplicates "
        f"{accounting['duplicates']}"
    )
    assert cluster.get("v1", "Namespace", namespace) is None
    return record, run_dir, rows


def test_a_threshold_policy_scales_the_deployment_up_and_down_and_loses_nothing(
    cluster: Any, image: str, tmp_path: Path
) -> None:
    _, _, rows = step_run(
        cluster,
        tmp_path,
        "{policy: threshold, min: 1, max: 2, interval: 2s, cooldown: 5s, lag_high: 30, lag_low: 3}",
    )
    up = rescales(rows)[0]
    assert json.loads(str(up["inputs"]))["lag"] > 30 and "lag" in up["reason"]
    assert STEP_AT_S <= up["elapsed_s"] <= STEP_AT_S + STEP_S  # inside the step


def test_ds2_reads_the_worker_pods_busy_time_and_scales_the_deployment(
    cluster: Any, image: str, tmp_path: Path
) -> None:
    """ds2's inputs come from the run's Prometheus, where each worker pod is one series."""
    _, _, rows = step_run(
        cluster,
        tmp_path,
        "{policy: ds2, min: 1, max: 2, interval: 3s, cooldown: 5s, window: 10s, "
        "catch_up: 20s, stabilisation_down: 10s}",
    )
    up = rescales(rows)[0]  # when depends on the machine: a slow one needs 2 before the step
    inputs = json.loads(str(up["inputs"]))
    assert len(inputs["busy"]) == 1 and inputs["busy"][0] > 0, inputs  # one series a pod
    assert inputs["processed_rate"] > 0 and "true rate" in up["reason"], up["reason"]
    after = [json.loads(str(r["inputs"])) for r in rows if r["time_ns"] > up["completed_ns"]]
    assert any(len(i["busy"]) == 2 for i in after), after[:3]  # the added pod's series too


def test_policy_hpa_is_the_clusters_hpa_and_its_rescales_are_decisions(
    cluster: Any, image: str, tmp_path: Path
) -> None:
    namespace = f"scalelab-ah-{secrets.token_hex(3)}"
    record, run_dir = run_cli(
        tmp_path,
        f"platform.namespace={namespace}",
        SMALL_WORKERS,
        "broker.partitions=2",
        "workload.workers=1",
        "load={profile: step, warmup: 5s, duration: 100s, steps: [{rate: 4, duration: 50s}, "
        "{rate: 0.2, duration: 50s}]}",
        "autoscaler={policy: hpa, min: 1, max: 2, target_utilisation: 0.5, stabilisation_down: 0}",
    )
    assert record["status"] == "succeeded", record["errors"]
    rows = read_decisions(run_dir / "decisions.parquet")
    trail = [(r["elapsed_s"], r["action"], r["current"], r["target"], r["reason"]) for r in rows]
    assert rows and {r["policy"] for r in rows} == {"hpa"}
    assert all(r["reason"].startswith("cluster HPA") for r in rows), trail
    up, *later = rescales(rows)
    assert (up["action"], up["current"], up["target"]) == ("scale-up", 1, 2), trail
    assert "cpu" in up["reason"], up["reason"]
    explained(up)
    inputs = json.loads(str(up["inputs"]))
    assert inputs["target_percent"] == 50
    status = [json.loads(str(r["inputs"])) for r in rows if r["action"] == "none"]
    assert any((s["cpu_percent"] or 0) > 50 for s in status), status[:5]
    summary = exact(run_dir)
    assert summary["autoscaler"]["decided_by"] == "kubernetes-hpa"
    assert summary["autoscaler"]["scale_ups"] >= 1 and summary["autoscaler"]["max_replicas"] == 2
    for row in later:  # the low load may let the HPA scale down before the run ends
        assert row["requested_ns"] and row["reason"].startswith("cluster HPA: "), row
        if row is not later[-1]:  # the last may still be going on when the run stops
            explained(row)
        assert row["action"] == "scale-down" or row["target"] == 2, trail
    qos = pq.read_table(run_dir / "qos.parquet", columns=["worker", "done_ns"]).to_pandas()
    assert qos.worker.nunique() == 2  # the pod the HPA added processed frames
    if any(r["action"] == "scale-down" for r in later):
        assert_removed_pod_drained(run_dir, qos)
    (score,) = scorecard([run_dir]).scores
    assert (score.policy, score.rescales) == ("hpa", 1 + len(later))
    scale_up_s = (up["completed_ns"] - up["requested_ns"]) / 1e9
    print(
        f"HPA scale-up 1 → 2 at {up['elapsed_s']:.1f} s ({up['reason']}), complete after "
        f"{scale_up_s:.1f} s; later {[(r['action'], r['elapsed_s']) for r in later]}; "
        f"produced {summary['accounting']['produced']}, processed "
        f"{summary['accounting']['processed']}, lost {summary['accounting']['lost']}"
    )
