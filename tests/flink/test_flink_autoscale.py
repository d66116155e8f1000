"""The autoscaler on a real Flink job: a load step the job cannot serve at parallelism 1,
DS2 reading Flink's counters in the run's Prometheus, a rescale through the adaptive
scheduler, every decision in decisions.parquet, nothing lost. Outcomes only (counts,
times, reasons): the machine is shared."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scalelab.autoscale.decisions import read_decisions

from .conftest import recorded_pids, run_flink

pytestmark = pytest.mark.e2e

STEP_AT = 12.0  # s into the load: 5 → 40 frames/s
INTERVAL, COOLDOWN, WINDOW = 3.0, 5.0, 5.0
RESCALE_S = 30.0  # request → first checkpoint at the new parallelism, generously

# One subtask sleeps 40 ms a frame (a model-server call): ~25 frames/s, busy all the time
# at 40 frames/s; two subtasks serve it. DS2 at 70 % wants 3 there; the 2 slots clamp it.
SPEC = f"""\
name: flink-autoscale-test
broker: {{partitions: 2}}
monitoring: {{scrape_interval: 1s}}
source: {{kind: synthetic, width: 160, height: 120, encoding: jpeg}}
load:
  profile: step
  steps: [{{rate: 5, duration: {STEP_AT:g}s}}, {{rate: 40, duration: 28s}}]
  duration: 40s
  warmup: 0s
slo: {{min_load_duration: 10s, min_samples: 10}}
workload:
  kind: flink
  parallelism: 1
  taskmanagers: 1
  slots_per_taskmanager: 2
  checkpoint_interval: 1s
  rescale_cooldown: 1s
  work: {{decode: true, sleep: 40ms}}
autoscaler:
  policy: ds2
  min: 1
  max: 4
  interval: {INTERVAL:g}s
  cooldown: {COOLDOWN:g}s
  window: {WINDOW:g}s
  catch_up: 10s
  stabilisation_down: 120s
"""


def test_ds2_scales_the_parallelism_up_after_a_load_step(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    run_dir, record = run_flink(spec)
    assert record["status"] == "succeeded", record.get("errors")

    rows = read_decisions(run_dir / "decisions.parquet")
    seen = [(r["elapsed_s"], r["action"], r["target"], r["reason"]) for r in rows]
    ups = [r for r in rows if r["action"] == "scale-up"]
    assert ups, seen
    up = ups[0]
    # After the step, within one interval plus the rate window (no earlier rescale, so no
    # cooldown to wait for; allowed anyway), never before it.
    assert STEP_AT - 1 <= up["elapsed_s"] <= STEP_AT + INTERVAL + COOLDOWN + WINDOW, seen
    assert (up["current"], up["target"]) == (1, 2), seen
    inputs = json.loads(str(up["inputs"]))
    assert inputs["current"] == 1 and inputs["busy"], inputs
    assert "true rate" in up["reason"]
    # Request, effective (every task RUNNING at 2), complete (a checkpoint at 2).
    assert up["requested_ns"] <= up["effective_ns"] <= up["completed_ns"]
    assert (up["completed_ns"] - up["requested_ns"]) / 1e9 <= RESCALE_S
    # The same rescale, through the job's own rescale path, is in run.json's Flink record.
    change = record["results"]["flink"]["rescales"][0]
    assert change["target"] == 2 and change["completed_ns"] == up["completed_ns"]
    kinds = [event["kind"] for event in record["events"]]
    assert "autoscaler-scale-up" in kinds and "rescale-completed" in kinds, kinds
    workers = set(pq.read_table(run_dir / "qos.parquet").column("worker").to_pylist())
    assert workers == {"flink-0", "flink-1"}  # the new subtask processed frames

    summary = json.loads((run_dir / "summary.json").read_text())
    accounting = summary["accounting"]
    assert accounting["ok"] and accounting["lost"] == 0, accounting
    assert accounting["produced"] == (
        accounting["processed"] + accounting["dead_lettered"] + accounting["still_queued"]
    )
    assert accounting["duplicates"] == accounting["processed_records"] - accounting["processed"]
    scaler = summary["autoscaler"]
    assert scaler["scale_unit"] == "parallelism" and scaler["max_replicas"] == 2
    assert scaler["scale_ups"] >= 1 and scaler["duplicates_per_rescale"] is not None
    assert recorded_pids() == []
