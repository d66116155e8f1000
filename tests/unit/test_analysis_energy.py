"""Energy: RAPL and Kepler counter deltas, else a CPU-time ESTIMATE whose arithmetic is checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalelab.analysis.dataset import Run
from scalelab.analysis.energy import energy, power_series
from scalelab.analysis.power_model import CpuPowerModel
from scalelab.analysis.series import run_grid
from scalelab.analysis.synthetic import T0_NS, Synthetic, write_run
from scalelab.export.parquet import SCHEMA, labels_json


def make(tmp_path: Path, **knobs: object) -> Run:
    return Run(write_run(tmp_path / "run", Synthetic(**knobs)))


def test_estimate_is_labelled_and_equals_the_models_arithmetic(tmp_path: Path) -> None:
    run = make(tmp_path, rate=10.0, load_s=30)
    result = energy(run)
    assert result["source"] == "estimate" and result["estimate"] is True
    assert "ESTIMATE" in result["message"]
    assert result["model"].startswith("P(t) = cores × P_idle + (P_max − P_idle) × busy_cores(t)")
    assert result["assumptions"]["P_idle_w_per_core"] == 0.74
    assert result["assumptions"]["P_max_w_per_core"] == 3.5
    # synthetic host: 2 cores, each 50 % user + 10 % system busy → 1.2 busy cores for 30 s
    busy = 2 * 0.6 * 30
    expected = 2 * 0.74 * 30 + (3.5 - 0.74) * busy
    load = result["load"]
    assert load["cpu_seconds"] == pytest.approx(busy)
    assert load["joules"] == pytest.approx(expected, rel=1e-6)
    frames = run.summary["completed_in_load"]  # served in the window, each once
    assert load["frames"] == frames and abs(frames - 300) <= 1
    assert load["joules_per_frame"] == pytest.approx(expected / frames, abs=1e-4)
    assert load["mean_watts"] == pytest.approx(expected / 30, abs=1e-3)
    assert set(result["phases"]) == {"warmup", "load", "cooldown"}


def test_components_get_the_dynamic_share_of_their_cpu_time(tmp_path: Path) -> None:
    run = make(tmp_path)
    result = energy(run)
    worker = result["components"]["worker-0"]
    assert worker["joules"] == pytest.approx((3.5 - 0.74) * worker["cpu_seconds"], abs=1e-3)
    frames = run.summary["completed_in_load"]
    assert worker["joules_per_frame"] == pytest.approx(worker["joules"] / frames, abs=1e-4)


def test_a_custom_model_changes_the_arithmetic(tmp_path: Path) -> None:
    model = CpuPowerModel(idle_w_per_core=10.0, max_w_per_core=20.0, source="a lab meter")
    result = energy(make(tmp_path), model=model)
    assert result["load"]["joules"] == pytest.approx(2 * 10 * 30 + 10 * 36)
    assert result["assumptions"]["source"] == "a lab meter"


def test_rapl_counters_are_measured_not_estimated(tmp_path: Path) -> None:
    run = make(tmp_path, rapl=True)  # package counter: 10 J per second
    result = energy(run)
    assert result["source"] == "rapl" and result["estimate"] is False
    assert "model" not in result
    assert result["load"]["joules"] == pytest.approx(300.0)
    frames = run.summary["completed_in_load"]
    assert result["load"]["joules_per_frame"] == pytest.approx(300.0 / frames, abs=1e-4)
    assert np.nanmean(power_series(run, run_grid(run), "rapl")) == pytest.approx(10.0)


def test_a_rapl_counter_that_wraps_is_counted_across_the_wrap(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", Synthetic())
    times = np.arange(0, 43)
    values = np.cumsum(np.full(times.size, 10.0)) % 200  # wraps at 200 J
    append_series(run_dir, "node_rapl_package_joules_total", {"index": "0"}, times, values)
    assert energy(Run(run_dir))["load"]["joules"] == pytest.approx(300.0, rel=0.05)


def test_kepler_metrics_are_used_per_component_when_named(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", Synthetic())
    times = np.arange(0, 43)
    for name, watts in (("worker-0", 4.0), ("worker-1", 6.0)):
        labels = {"container_name": name, "pod_name": f"scalelab-{name}"}
        append_series(run_dir, "kepler_container_joules_total", labels, times, watts * times)
    kepler = {"total": "kepler_container_joules_total"}
    result = energy(Run(run_dir), kepler=kepler, component_label="container_name")
    assert result["source"] == "kepler" and not result["estimate"]
    assert result["load"]["joules"] == pytest.approx(300.0)
    assert result["components"]["worker-0"]["joules"] == pytest.approx(120.0)
    frames = Run(run_dir).summary["completed_in_load"]
    assert result["components"]["worker-1"]["joules_per_frame"] == pytest.approx(
        180 / frames, abs=1e-5
    )


def test_no_data_gives_an_explicit_empty_result(tmp_path: Path) -> None:
    result = energy(Run(tmp_path))
    assert result["source"] == "none" and result["load"] == {} and result["phases"] == {}
    assert "energy unknown" in result["message"]


def test_without_metrics_the_estimate_uses_summary_cpu(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", Synthetic(workers=1))
    (run_dir / "metrics.parquet").unlink()
    result = energy(Run(run_dir))
    cpu = 0.3 * 30 * 4  # broker, producer, tracker, worker-0 at 0.3 cores each
    assert result["basis"] == "component CPU from summary.json (load phase only)"
    assert result["load"]["joules"] == pytest.approx(2 * 0.74 * 30 + 2.76 * cpu)
    assert list(result["phases"]) == ["load"]
    json.dumps(result)


def append_series(
    run_dir: Path, metric: str, labels: dict[str, str], times: np.ndarray, values: np.ndarray
) -> None:
    """Add one series (seconds since traffic started) to a run's metrics.parquet."""
    table = pq.read_table(run_dir / "metrics.parquet")
    extra = pa.table(
        {
            "metric": [metric] * len(times),
            "labels": [labels_json(metric, labels)] * len(times),
            "timestamp": pd.to_datetime(T0_NS + (times * 1e9).astype(np.int64), utc=True),
            "value": values.astype(float),
            **{name: [labels.get(name)] * len(times) for name in SCHEMA.names[4:]},
        },
        schema=SCHEMA,
    )
    pq.write_table(pa.concat_tables([table, extra]), run_dir / "metrics.parquet")
