"""The headline series of a run on its grid: rates, latency, lag, CPU per component, host CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalelab.analysis.dataset import Run
from scalelab.analysis.series import key_series, own_metrics, run_grid
from scalelab.analysis.synthetic import Synthetic, write_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(write_run(tmp_path_factory.mktemp("s") / "run", Synthetic(rate=10.0, load_s=20)))


def test_grid_spans_traffic_start_to_cooldown_end(run: Run) -> None:
    grid = run_grid(run)
    assert grid is not None
    assert (grid.n, grid.step_s, grid.seconds[0]) == (5 + 20 + 3, 1.0, 0.0)


def test_key_series_hold_the_headline_figures(run: Run) -> None:
    grid = run_grid(run)
    assert grid is not None
    frame = key_series(run, grid)
    load = frame.loc[5:24]
    assert np.allclose(load["input rate"], 10.0) and np.allclose(load["target rate"], 10.0)
    assert load["throughput"].mean() == pytest.approx(10.0, abs=0.2)  # completions jitter
    assert load["throughput"].between(9, 11).all()
    assert (load["latency p50"] <= load["latency p99"]).all()
    assert load["consumer lag"].isin([0.0, 1.0]).all()
    assert load["cpu worker-0"].mean() == pytest.approx(0.3, abs=0.05)
    assert np.allclose(load["host cpu busy"], 1.2)  # 2 cores, 60 % busy each
    assert {"cpu broker", "cpu producer", "cpu tracker", "cpu worker-1"} <= set(frame.columns)


def test_without_metrics_the_target_comes_from_the_summary(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", Synthetic(rate=8.0, load_s=10))
    (run_dir / "metrics.parquet").unlink()
    run = Run(run_dir)
    grid = run_grid(run)
    assert grid is not None
    frame = key_series(run, grid)
    assert np.allclose(frame.loc[5:14, "target rate"], 8.0)
    assert frame.loc[:4, "target rate"].isna().all()
    assert not any(c.startswith("cpu ") for c in frame.columns)


def test_rows_of_other_runs_are_left_out(run: Run) -> None:
    metrics = run.metrics.copy()
    metrics["run_id"] = metrics["run_id"].cat.add_categories(["other", run.id])
    metrics.loc[metrics.index[:10], "run_id"] = "other"
    metrics.loc[metrics.index[10:20], "run_id"] = run.id
    run.__dict__["metrics"] = metrics
    try:
        assert len(own_metrics(run)) == len(metrics) - 10
    finally:
        del run.__dict__["metrics"]


def test_redelivered_messages_do_not_inflate_the_throughput_series(tmp_path: Path) -> None:
    run = Run(write_run(tmp_path / "run", Synthetic(rate=10.0, load_s=20)))
    grid = run_grid(run)
    assert grid is not None
    before = key_series(run, grid)["throughput"].sum()
    redelivered = run.qos.iloc[:50].copy()
    redelivered["done_ns"] = redelivered["done_ns"] + 2_000_000_000  # processed again 2 s later
    run.__dict__["qos"] = pd.concat([run.qos, redelivered], ignore_index=True)
    assert key_series(run, grid)["throughput"].sum() == pytest.approx(before)
