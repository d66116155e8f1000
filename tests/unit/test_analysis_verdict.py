"""The validity verdict: VALID for a clean run, INVALID with the reason for each known defect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalelab.analysis.synthetic import Synthetic, write_run
from scalelab.analysis.verdict import verdict


def make(tmp_path: Path, **knobs: object) -> Path:
    return write_run(tmp_path / "run", Synthetic(**knobs))


def edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_a_clean_run_is_valid_and_meets_its_slo(tmp_path: Path) -> None:
    result = verdict(make(tmp_path))
    assert result.valid and result.result == "VALID", result.reasons
    assert result.slo["latency_p99"]["met"] and result.slo_met is True
    assert result.to_dict()["result"] == "VALID"


def test_rate_five_percent_off_is_invalid(tmp_path: Path) -> None:
    result = verdict(make(tmp_path, rate=20.0, achieved_ratio=0.95))
    (reason,) = result.reasons
    assert "achieved rate 19.00 msg/s is 5.0% off the target 20.00 msg/s" in reason


def test_rate_within_max_rate_error_is_valid(tmp_path: Path) -> None:
    run = make(tmp_path, rate=100.0, achieved_ratio=0.99)
    assert verdict(run).valid


def test_growing_consumer_lag_is_not_a_steady_state(tmp_path: Path) -> None:
    result = verdict(make(tmp_path, lag_growth=2.0))
    (reason,) = result.reasons
    assert "consumer lag still growing" in reason and "(+1.98 msg/s" in reason


def test_lag_that_wobbles_without_growing_is_steady(tmp_path: Path) -> None:
    assert verdict(make(tmp_path, lag_growth=0.0)).valid


def test_a_scrape_gap_in_the_load_window_is_invalid(tmp_path: Path) -> None:
    result = verdict(make(tmp_path, gap=(10.0, 14.0)))
    assert not result.valid
    (reason,) = result.reasons
    assert "scrape gaps" in reason and "process_cpu_seconds_total" in reason


def test_a_gap_outside_the_load_window_does_not_count(tmp_path: Path) -> None:
    assert verdict(make(tmp_path, gap=(31.0, 33.0))).valid  # during cooldown


def test_short_load_phase_broken_accounting_and_failed_status(tmp_path: Path) -> None:
    run = make(tmp_path, lost=3, status="failed")
    spec = (run / "spec.yaml").read_text().replace("min_load_duration: 0", "min_load_duration: 60")
    (run / "spec.yaml").write_text(spec)
    reasons = " | ".join(verdict(run).reasons)
    assert "shorter than slo.min_load_duration 60 s" in reasons
    assert "accounting broken: 3 of 350 messages lost" in reasons
    assert "run status is failed" in reasons


def test_slo_missed_is_reported_but_the_run_stays_valid(tmp_path: Path) -> None:
    run = make(tmp_path, slo={"latency_p99": 0.05, "latency_p95": 1.0, "min_throughput_ratio": 0.9})
    result = verdict(run)
    assert result.valid
    assert result.slo["latency_p99"]["met"] is False
    assert result.slo["latency_p95"]["met"] is True
    ratio = result.slo["min_throughput_ratio"]
    assert (
        ratio["met"]
        and ratio["unit"] == "ratio"
        and ratio["measured"] == pytest.approx(1.0, abs=0.01)
    )
    assert result.slo_met is False


def test_missing_files_give_reasons_not_exceptions(tmp_path: Path) -> None:
    run = make(tmp_path)
    for name in ("summary.json", "metrics.parquet", "qos.parquet"):
        (run / name).unlink()
    result = verdict(run)
    assert not result.valid
    assert "no summary.json: the run left no headline figures" in result.reasons
    assert "no metrics.parquet: scrape gaps not checked" in result.notes


def test_an_empty_directory_is_invalid(tmp_path: Path) -> None:
    result = verdict(tmp_path)
    assert result.reasons == [
        "run status is unknown",
        "no summary.json: the run left no headline figures",
        "no finished load phase in run.json",
    ]


@pytest.mark.parametrize("message", ["Traceback (most recent call last):\n  ...\nKeyError: 'x'"])
def test_a_failed_run_shows_the_gist_of_its_error(tmp_path: Path, message: str) -> None:
    run = make(tmp_path, status="failed")
    edit_json(run / "run.json", errors=[{"kind": "KeyError", "message": message}])
    assert "run status is failed: KeyError: 'x'" in verdict(run).reasons
