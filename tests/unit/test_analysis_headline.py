"""Headline figures a user publishes: served throughput, each message once, no survivorship bias,
minimum evidence, noisy neighbours, step tables, fault recovery and units (issue 8)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from ruamel.yaml import YAML

from scalelab.analysis.analyse import analyse_run
from scalelab.analysis.steps import load_plan, step_table
from scalelab.analysis.summary import summarise
from scalelab.analysis.synthetic import Synthetic, write_run
from scalelab.analysis.verdict import verdict
from scalelab.cli.summary_view import print_summary

STEPS = {"steps": [(10.0, 15.0), (40.0, 15.0)], "warmup_s": 5, "load_s": 25, "rate": 28.0}
"""Two steps, 10/s then 40/s, against a system that completes at most 20/s."""


def make(tmp_path: Path, **knobs: Any) -> Path:
    return write_run(tmp_path / "run", Synthetic(**knobs))


def summary_of(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "summary.json").read_text()))


def served_per_second(run_dir: Path) -> float:
    """Independent count: distinct ids whose first done time falls in the load window."""
    qos = pq.read_table(run_dir / "qos.parquet").to_pandas()
    window = summary_of(run_dir)["window"]
    first = qos.groupby("id")["done_ns"].min()
    inside = (first >= window["start_ns"]) & (first < window["end_ns"])
    return float(inside.sum()) / ((window["end_ns"] - window["start_ns"]) / 1e9)


def rerun_summary(run_dir: Path, **kwargs: Any) -> dict[str, Any]:
    old = summary_of(run_dir)
    window = (old["window"]["start_ns"], old["window"]["end_ns"])
    extras = {k: old[k] for k in ("accounting", "cpu", "consumer_lag")}
    return summarise(run_dir, window, old["rate"]["target_rate"], extras, **kwargs)


# -- 8.1: throughput is what completed, per step ------------------------------------------------
def test_a_saturated_step_run_reports_completed_throughput_not_the_offered_rate(
    tmp_path: Path,
) -> None:
    run_dir = make(tmp_path, **STEPS, capacity=20.0, slo={"min_throughput_ratio": 0.9})
    summary = summary_of(run_dir)
    assert summary["rate"]["target_rate"] == 28.0 and summary["rate"]["achieved_rate"] == 28.0
    assert summary["throughput"] == pytest.approx(served_per_second(run_dir), abs=1e-3)
    assert summary["throughput"] < 20.5  # the system's capacity, not the 28/s offered
    result = verdict(run_dir)
    assert result.slo["min_throughput_ratio"]["met"] is False
    assert result.slo["min_throughput_ratio"]["measured"] < 0.75


def test_the_step_table_shows_each_step_and_the_verdict_names_the_saturated_one(
    tmp_path: Path,
) -> None:
    run_dir = make(tmp_path, **STEPS, capacity=20.0)
    first, second = summary_of(run_dir)["steps"]
    assert (first["step"], first["start_s"], first["end_s"]) == ("1", 5.0, 15.0)
    assert (second["step"], second["start_s"], second["end_s"]) == ("2", 15.0, 30.0)
    assert first["offered_rate"] == 10.0 and abs(first["completed_rate"] - 10.0) <= 0.2
    assert second["offered_rate"] == 40.0 and second["completed_rate"] == pytest.approx(20, abs=0.2)
    assert not first["saturated"] and second["saturated"]
    assert second["latency_s"]["p99"] > 5 * first["latency_s"]["p99"]
    assert second["lag_end"] > 250 and first["lag_end"] < 5
    result = verdict(run_dir)
    assert not result.valid
    (saturated,) = [r for r in result.reasons if r.startswith("saturated")]
    assert re.search(r"step 2 \(offered 40.00 msg/s, completed (19.9\d|20.00) msg/s\)", saturated)
    assert "step 1" not in saturated


def test_a_step_run_within_capacity_is_valid_with_a_table(tmp_path: Path) -> None:
    run_dir = make(tmp_path, **STEPS, capacity=100.0)
    steps = summary_of(run_dir)["steps"]
    assert [s["saturated"] for s in steps] == [False, False]
    assert verdict(run_dir).valid, verdict(run_dir).reasons


def test_a_slow_pipeline_that_keeps_up_is_not_saturated_after_a_step_up() -> None:
    """Completions trail sends by the latency: 1 s behind a 4 → 16 msg/s step, not a queue."""
    spec = {"load": {"profile": "step", "steps": [{"rate": 4, "duration": 10},
                                                  {"rate": 16, "duration": 10}],
                     "warmup": 0}}  # fmt: skip
    plan = load_plan(spec)
    assert plan is not None and plan.offsets is not None
    origin = 1_780_000_000_000_000_000
    intended = origin + (plan.offsets * 1e9).astype(np.int64)
    done = intended + 1_000_000_000  # every message takes 1 s, none waits behind another
    qos = {"intended_ns": intended, "done_ns": done, "latency_s": np.full(done.size, 1.0)}
    rows = step_table(plan, qos, origin, (origin, origin + 20 * 10**9), [])
    assert [r["saturated"] for r in rows] == [False, False]
    assert rows[1]["completed"] < rows[1]["offered"]  # the shortfall the old check took for one


def test_a_ramp_is_cut_into_segments_with_the_spec_rates() -> None:
    spec = {"load": {"profile": "ramp", "start_rate": 0, "end_rate": 60,
                     "duration": 60, "warmup": 10}}  # fmt: skip
    plan = load_plan(spec)
    assert plan is not None and len(plan.segments) == 5
    assert [s.start_s for s in plan.segments] == [10, 20, 30, 40, 50]
    assert plan.segments[0].nominal_rate == pytest.approx(15.0)
    assert plan.load_seq_range() == (50, 1800)  # N(t) = t²/2 messages before t
    constant = load_plan({"load": {"profile": "constant", "rate": 4, "duration": 70}})
    assert constant is not None and constant.segments == []


# -- 8.2: each message once ------------------------------------------------------------------------
def test_duplicates_count_once_at_their_first_completion(tmp_path: Path) -> None:
    clean = summary_of(make(tmp_path / "clean"))
    run_dir = make(tmp_path / "dup", duplicates=20)
    summary = summary_of(run_dir)
    assert summary["duplicates"] == {"records": 20, "messages": 20}
    assert summary["throughput"] == clean["throughput"]
    assert summary["processed_in_load"] == clean["processed_in_load"] == 300
    assert summary["latency_s"] == clean["latency_s"]  # the +2 s redeliveries are not in p99
    assert summary["per_worker"].keys() == clean["per_worker"].keys()
    assert any("20 duplicate records" in note for note in verdict(run_dir).notes)


# -- 8.3: survivorship and minimum evidence ----------------------------------------------------
def test_messages_that_never_completed_make_the_run_invalid(tmp_path: Path) -> None:
    run_dir = make(tmp_path, not_completed=7)
    completion = summary_of(run_dir)["completion"]
    assert completion["load_messages"] == 300 and completion["not_completed"] == 7
    assert completion["basis"].startswith("producer.json")
    result = verdict(run_dir)
    assert not result.valid
    assert any(r.startswith("not completed: 7 of 300 messages") for r in result.reasons)


def test_without_the_producers_seq_range_the_schedule_is_rebuilt_from_the_spec(
    tmp_path: Path,
) -> None:
    run_dir = make(tmp_path, not_completed=7, seq_keys=False)
    completion = summary_of(run_dir)["completion"]
    assert completion["not_completed"] == 7 and "schedule" in completion["basis"]


def test_dead_lettered_messages_are_not_counted_as_not_completed(tmp_path: Path) -> None:
    run_dir = make(tmp_path, not_completed=7)
    run_id = Synthetic().run_id
    missing = [f"{run_id}:{seq}" for seq in range(343, 350)]  # the last 7 of the load phase
    completion = rerun_summary(run_dir, dead_letter_ids=missing)["completion"]
    assert completion["dead_lettered"] == 7 and completion["not_completed"] == 0


def test_without_ids_the_accountings_dead_letter_count_is_not_called_unserved(
    tmp_path: Path,
) -> None:
    run_dir = make(tmp_path, not_completed=7)
    summary = summary_of(run_dir)
    summary["accounting"]["dead_lettered"] = 7
    (run_dir / "summary.json").write_text(json.dumps(summary))
    completion = rerun_summary(run_dir)["completion"]
    assert completion["dead_lettered"] == 7 and completion["not_completed"] == 0
    assert "counted from the accounting" in completion["basis"]


def test_too_few_samples_for_a_p99_claim_is_invalid(tmp_path: Path) -> None:
    result = verdict(make(tmp_path, rate=3.0))  # 90 completed in 30 s
    assert any(
        "only 90 messages of the load phase completed, fewer than slo.min_samples 100" in r
        for r in result.reasons
    )


def test_min_load_duration_defaults_to_30_s_when_the_spec_has_none(tmp_path: Path) -> None:
    run_dir = make(tmp_path, rate=20.0, load_s=20)
    spec = YAML(typ="safe").load((run_dir / "spec.yaml").read_text())
    del spec["slo"]["min_load_duration"]
    with (run_dir / "spec.yaml").open("w") as out:
        YAML(typ="safe").dump(spec, out)
    reasons = verdict(run_dir).reasons
    assert any("shorter than slo.min_load_duration 30 s" in r for r in reasons), reasons


# -- 8.7: noisy neighbours ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("share", "limit", "valid", "noted"),
    [(0.05, None, True, False), (0.2, None, True, True), (0.6, None, False, False),
     (0.6, 0.7, True, True)],
)  # fmt: skip
def test_cpu_not_used_by_the_run_is_noted_then_invalid(
    tmp_path: Path, share: float, limit: float | None, valid: bool, noted: bool
) -> None:
    slo: dict[str, Any] = {"latency_p99": 1.0}
    if limit is not None:
        slo["max_foreign_cpu"] = limit
    result = verdict(make(tmp_path, foreign_cpu=share, slo=slo))
    assert result.valid is valid, result.reasons
    assert any(f"{share:.1%} of the host's busy CPU" in n for n in result.notes) is noted
    if not valid:
        assert any(r.startswith("noisy neighbours: 60.0%") for r in result.reasons)


def test_energy_attributed_to_the_run_stands_next_to_the_host_wide_figure(tmp_path: Path) -> None:
    run_dir = make(tmp_path, foreign_cpu=0.25)
    analyse_run(run_dir)
    spent = summary_of(run_dir)["energy"]
    assert spent["load"]["scope"] == "host-wide" and spent["attributed"]["share"] == 0.75
    assert spent["attributed"]["joules"] == pytest.approx(0.75 * spent["load"]["joules"], rel=1e-3)
    assert "ESTIMATE" in spent["attributed"]["basis"]
    text = printed(run_dir)
    assert "energy in load, host-wide:" in text
    assert "energy in load, the run's own processes (75% of busy CPU):" in text


# -- 8.8: warmup boundary and units ------------------------------------------------------------
def test_a_fractional_warmup_is_not_rounded_into_the_achieved_rate(tmp_path: Path) -> None:
    run_dir = make(tmp_path, warmup_s=2.5, seq_keys=False)
    assert summary_of(run_dir)["rate"]["achieved_rate"] == 10.0


def printed(run_dir: Path) -> str:
    console = Console(record=True, width=200)
    print_summary(console, run_dir)
    return console.export_text()


def test_the_slo_lines_print_units(tmp_path: Path) -> None:
    run_dir = make(tmp_path, slo={"latency_p99": 1.0, "min_throughput_ratio": 0.9})
    analyse_run(run_dir)
    text = printed(run_dir)
    assert re.search(r"SLO latency_p99: met \(target 1 s, measured \d+(\.\d+)? ms\)", text), text
    assert re.search(
        r"SLO min_throughput_ratio: met \(target 90\.0 %, measured 1\d\d\.\d %\)", text
    )
    html = (run_dir / "report.html").read_text()
    assert "<td>1 s</td>" in html and "<td>90.0 %</td>" in html


def test_the_terminal_summary_shows_the_step_table_and_served_throughput(tmp_path: Path) -> None:
    run_dir = make(tmp_path, **STEPS, capacity=20.0)
    analyse_run(run_dir)
    text = printed(run_dir)
    assert "per step (load phase)" in text and "2 saturated" in text
    assert re.search(
        r"throughput \(completed\) +│ 1\d\.\d\d frames/s \(\d\d\.\d% of offered\)", text
    )
    assert "Per step (load phase)" in (run_dir / "report.html").read_text()


# -- 8.9: a killed worker's partitions and the time until they were taken over ---------------
def test_a_killed_workers_partitions_and_recovery_time(tmp_path: Path) -> None:
    run_dir = make(tmp_path, kill=(12.0, 1, 3.0))
    (fault,) = summary_of(run_dir)["faults"]
    assert fault["kind"] == "kill-worker" and fault["component"] == "worker-1"
    assert fault["partitions"] == [1] and fault["t_s"] == 12.0
    assert fault["recovered"] and fault["recovery_s"] == pytest.approx(3.0, abs=0.01)
    assert re.search(r"kill-worker +│ 12\.0 +│ worker-1 +│ 1 +│ 3 s", printed(run_dir))
    record = json.loads((run_dir / "run.json").read_text())
    del record["events"][0]["component"]  # a record written before events named components
    (run_dir / "run.json").write_text(json.dumps(record))
    (again,) = rerun_summary(run_dir)["faults"]
    assert again["component"] == "worker-1" and again["partitions"] == [1]


def test_a_partition_never_taken_over_has_no_recovery_time(tmp_path: Path) -> None:
    run_dir = make(tmp_path, workers=1, kill=(12.0, 0, 3.0))  # no other worker to take over
    (fault,) = summary_of(run_dir)["faults"]
    assert fault["partitions"] == [0]
    assert fault["recovered"] is False and fault["recovery_s"] is None
    assert np.isfinite(summary_of(run_dir)["throughput"])


# -- compare shows the corrected figures -------------------------------------------------------
def test_compare_shows_served_throughput_saturated_steps_and_unserved_messages(
    tmp_path: Path,
) -> None:
    from scalelab.analysis.compare import compare
    from scalelab.analysis.dataset import Run

    saturated = write_run(tmp_path / "sat", Synthetic(run_id="sat", **STEPS, capacity=20.0))
    lossy = write_run(tmp_path / "dup", Synthetic(run_id="dup", duplicates=5, not_completed=4))
    rows = dict(compare([Run(saturated), Run(lossy)]).rows())
    assert rows["saturated steps"] == ["2", "–"]
    assert rows["not completed (load phase)"][1] == "4"
    assert rows["duplicate records (left out)"] == ["0", "5"]
    sat_served = served_per_second(saturated)
    assert rows["throughput (completed)"][0] == f"{sat_served:.2f} frames/s"
    assert rows["completed / offered"][0] == f"{100 * sat_served / 28.0:.1f} %"


def test_an_old_summary_counting_sends_meets_no_throughput_slo(tmp_path: Path) -> None:
    """Summaries written before completions were counted have no basis: no claim from them."""
    run_dir = make(tmp_path, slo={"min_throughput_ratio": 0.9})
    assert verdict(run_dir).slo["min_throughput_ratio"]["met"]
    summary = summary_of(run_dir)
    del summary["throughput_basis"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    entry = verdict(run_dir).slo["min_throughput_ratio"]
    assert entry["measured"] is None and not entry["met"]


def test_seconds_print_readably_at_every_scale() -> None:
    from scalelab.analysis.units import seconds

    assert [seconds(v) for v in (0.0123, 0.3, 1.0, 1.5, 86400.0)] == [
        "12.3 ms",
        "300 ms",
        "1 s",
        "1.5 s",
        "86,400 s",
    ]
