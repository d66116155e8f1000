"""`scalelab run` end to end with the real broker, Prometheus, workers and tracker.

Each test is one short experiment; together they cover the quickstart and the
failure behaviour the data plane promises: a killed worker, corrupt frames,
and a producer that cannot keep up.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from scalelab.platform.process import wait_until

from .cli import REPO, alive, recorded_pids, run_json, runs, scalelab, spawn

pytestmark = pytest.mark.e2e
QUICKSTART = str(REPO / "examples" / "quickstart.yaml")


def run(*overrides: str, expect: int = 0) -> tuple[Path, dict[str, Any], str]:
    before = set(runs())
    args = ["run", QUICKSTART]
    for item in overrides:
        args += ["--set", item]
    result = scalelab(*args, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == expect, output
    (run_dir,) = set(runs()) - before
    assert recorded_pids() == {}, "a process was left behind"
    return run_dir, json.loads((run_dir / "summary.json").read_text()), output


def test_quickstart_accounts_for_every_message() -> None:
    run_dir, summary, output = run("load.duration=20s", "load.warmup=5s")
    for name in ("run.json", "spec.yaml", "summary.json", "qos.parquet", "metrics.parquet"):
        assert (run_dir / name).is_file(), name
    record = run_json(run_dir)
    assert record["status"] == "succeeded"
    phases = [p["name"] for p in record["phases"]]  # type: ignore[index]
    assert phases == ["setup", "deploy", "warmup", "load", "cooldown", "teardown"]
    accounting = summary["accounting"]
    assert accounting["ok"] and accounting["produced"] == 80 and accounting["processed"] == 80
    assert pq.read_table(run_dir / "qos.parquet").num_rows == accounting["processed_records"]
    assert abs(summary["rate"]["achieved_rate"] - 4.0) < 0.2
    assert summary["latency_s"]["p99"] is not None
    assert set(summary["per_worker"]) == {"worker-0", "worker-1"}
    metrics = set(pq.read_table(run_dir / "metrics.parquet").column("metric").to_pylist())
    assert {
        "scalelab_worker_processed_total",
        "scalelab_tracker_records_total",
        "kafka_server_brokertopicmetrics_bytesin_total",
    } <= metrics
    assert "produced 80 = processed 80" in output


def test_killed_worker_loses_no_message() -> None:
    """worker-1 is killed in the load phase (after warmup): its partitions move to worker-0,
    every message is processed or dead-lettered, duplicates are counted, none is lost."""
    run_dir, summary, _ = run(
        "load.duration=30s",
        "load.warmup=5s",
        "load.rate=6",
        "faults=[{kind: kill-worker, at: 12, worker: 1}]",
    )
    record = run_json(run_dir)
    assert record["status"] == "succeeded", record["errors"]
    events: list[dict[str, str]] = record["events"]  # type: ignore[assignment]
    (kill,) = [e for e in events if e["kind"] == "kill-worker"]
    assert kill["component"] == "worker-1" and "SIGKILL worker-1" in kill["detail"]
    kill_ns = _ns(kill["time"])
    phases: list[dict[str, str]] = record["phases"]  # type: ignore[assignment]
    (warmup,) = [p for p in phases if p["name"] == "warmup"]
    assert kill_ns > _ns(warmup["end"]), "the kill must fall in the load phase"
    assert any(e["kind"] == "group-member-left" for e in events), events

    qos = pq.read_table(run_dir / "qos.parquet").to_pandas()
    before = qos[(qos.worker == "worker-1") & (qos.done_ns < kill_ns)]
    held = set(before.partition)
    assert held, "worker-1 processed nothing before the kill"
    taken_over = qos[(qos.worker == "worker-0") & qos.partition.isin(held)]
    assert (taken_over.consume_ns > kill_ns).any(), "worker-0 never took worker-1's partitions"

    accounting = summary["accounting"]
    assert accounting["ok"] and accounting["lost"] == 0
    assert accounting["produced"] == 180
    assert accounting["processed"] + accounting["dead_lettered"] == 180
    assert accounting["processed_records"] == len(qos)
    assert accounting["duplicates"] == len(qos) - qos.id.nunique()
    # the recovery time is computed by the analysis (summary["faults"])
    (fault,) = summary["faults"]
    assert fault["component"] == "worker-1" and fault["recovery_s"] is not None


def test_broker_killed_mid_load_fails_the_run_naming_the_broker() -> None:
    """The broker dies while the orchestrator waits on it (frozen first, so that a Kafka call
    is in flight when it dies, as happens at random under load): the run fails with an error
    that names the broker, not a KafkaException traceback."""
    before = set(runs())
    proc = spawn("run", QUICKSTART, "--set", "load.duration=60s", "--set", "load.warmup=2s")
    assert wait_until(lambda: "producer" in recorded_pids(), 180), "the load never started"
    pids = recorded_pids()
    time.sleep(4)
    os.kill(pids["broker"], signal.SIGSTOP)
    time.sleep(3)
    os.kill(pids["broker"], signal.SIGKILL)
    output, _ = proc.communicate(timeout=400)
    assert proc.returncode == 1, output
    assert "Traceback" not in output and "KafkaException" not in output, output
    (run_dir,) = set(runs()) - before
    record = run_json(run_dir)
    assert record["status"] == "failed"
    errors: list[dict[str, str]] = record["errors"]  # type: ignore[assignment]
    assert errors and errors[0].get("component") == "broker", errors
    assert "broker" in output
    assert recorded_pids() == {}
    assert not any(alive(pid) for pid in pids.values())


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)


def test_corrupt_frames_are_dead_lettered_and_the_rest_processed() -> None:
    run_dir, summary, _ = run(
        "load.duration=10s", "load.warmup=2s", "load.rate=6", "source.corrupt_fraction=0.25"
    )
    accounting = summary["accounting"]
    assert accounting["ok"]
    assert accounting["dead_lettered"] > 0
    assert accounting["processed"] + accounting["dead_lettered"] == accounting["produced"] == 60
    assert run_json(run_dir)["status"] == "succeeded"


def test_producer_shortfall_is_reported_not_hidden() -> None:
    run_dir, summary, output = run(
        "load.rate=50000",
        "load.duration=2s",
        "load.warmup=0",
        "source.width=64",
        "source.height=48",
        "workload.drain_timeout=3s",
    )
    rate = summary["rate"]
    assert rate["target_rate"] == pytest.approx(50000, rel=0.01)
    assert rate["achieved_ratio"] < 0.9
    assert rate["schedule_lag_max_s"] > 0.2
    accounting = summary["accounting"]
    assert accounting["produced"] == 100000 and accounting["ok"]
    assert accounting["still_queued"] > 0
    assert any("consumer lag still" in w for w in run_json(run_dir)["warnings"])  # type: ignore[union-attr]
    assert "of target" in output


def test_missing_model_is_refused_before_anything_starts(tmp_path: Path) -> None:
    before = set(runs())
    result = scalelab("run", QUICKSTART, "--set", f"workload.model={tmp_path / 'nope.onnx'}")
    assert result.returncode == 2
    assert f"model {tmp_path / 'nope.onnx'}" in result.stderr
    assert set(runs()) == before and recorded_pids() == {}


def test_ctrl_c_during_load_aborts_cleanly_and_keeps_the_record() -> None:
    before = set(runs())
    proc = spawn("run", QUICKSTART, "--set", "load.duration=60s")
    assert wait_until(lambda: "producer" in recorded_pids(), 120), "the load never started"
    pids = recorded_pids()
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    proc.wait(120)
    assert proc.returncode == 130
    (run_dir,) = set(runs()) - before
    record = run_json(run_dir)
    assert record["status"] == "aborted"
    assert [p["name"] for p in record["phases"]][-1] == "teardown"  # type: ignore[index]
    assert recorded_pids() == {}
    assert not any(alive(pid) for pid in pids.values())


def test_repetitions_give_one_run_each() -> None:
    before = set(runs())
    result = scalelab(
        "run",
        QUICKSTART,
        "--set",
        "repetitions=2",
        "--set",
        "load.duration=5s",
        "--set",
        "load.warmup=1s",
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    new = sorted(set(runs()) - before)
    assert len(new) == 2
    assert [run_json(d)["repetition"] for d in new] == [1, 2]
    assert all(run_json(d)["status"] == "succeeded" for d in new)
    assert "repetition 2 of 2" in result.stdout
