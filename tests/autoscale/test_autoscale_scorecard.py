"""The scorecard ranks policies on the same load: SLO violation first, then resources.

SLO-violation seconds are seconds of the load phase only (warmup and drain are not
judged), at the percentile the spec's SLO names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import typer
import yaml
from typer.testing import CliRunner

from scalelab.analysis.scorecard import scorecard
from scalelab.cli.scorecard_cmd import scorecard as scorecard_command

LOAD = {"profile": "diurnal", "rate": 20, "duration": 60}
P95_SLO = {"latency_p95": 1.0}
T0_NS = 1_795_000_000 * 1_000_000_000  # when traffic started
WARMUP_S, LOAD_S, COOLDOWN_S = 10, 60, 5
Latency = Callable[[int, int], float]
"""The latency (s) of the i-th message sent in second t since traffic started."""


def slow_load(seconds: int) -> Latency:
    """The first `seconds` of the load phase at 3 s, everything else at 0.1 s."""
    return lambda t, i: 3.0 if WARMUP_S <= t < WARMUP_S + seconds else 0.1


def make_run(
    root: Path,
    name: str,
    policy: str,
    slow_seconds: int = 0,
    replica_s: float = 100,
    *,
    load: dict[str, Any] = LOAD,
    slo: dict[str, Any] = P95_SLO,
    latency: Latency | None = None,
    per_second: int = 10,
    phases: bool = True,
) -> Path:
    """10 s of warmup then 60 s of load at `per_second` frames/s, then a 5 s cooldown."""
    run = root / name
    run.mkdir()
    spec = {"name": name, "load": load, "slo": slo, "autoscaler": {"policy": policy}}
    (run / "spec.yaml").write_text(yaml.safe_dump(spec))
    record: dict[str, Any] = {"id": name, "status": "succeeded"}
    if phases:
        record["phases"] = _phases()
    (run / "run.json").write_text(json.dumps(record))
    latency = latency or slow_load(slow_seconds)
    sent = [(t, i) for t in range(WARMUP_S + LOAD_S) for i in range(per_second)]
    pq.write_table(
        pa.table(
            {
                "id": [f"{name}:{n}" for n in range(len(sent))],
                "intended_ns": pa.array(
                    [T0_NS + t * 1_000_000_000 + i * 1_000_000_000 // per_second for t, i in sent],
                    pa.int64(),
                ),
                "latency_s": [latency(t, i) for t, i in sent],
            }
        ),
        run / "qos.parquet",
    )
    (run / "autoscaler.json").write_text(
        json.dumps(
            {
                "policy": policy,
                "rescales": 2,
                "replica_seconds": replica_s,
                "first_scale_up_s": 4.0,
                "reaction_s": [1.5, 6.5, 2.0],  # per scale-up: wanting more → complete
            }
        )
    )
    (run / "summary.json").write_text(json.dumps({"energy": {"load": {"joules": replica_s * 5}}}))
    return run


def _phases() -> list[dict[str, str]]:
    out, start = [], 0
    for name, seconds in (("warmup", WARMUP_S), ("load", LOAD_S), ("cooldown", COOLDOWN_S)):
        out.append({"name": name, "start": _rfc(start), "end": _rfc(start + seconds)})
        start += seconds
    return out


def _rfc(seconds: int) -> str:
    return pd.Timestamp(T0_NS + seconds * 1_000_000_000, unit="ns", tz="UTC").isoformat()


def test_the_policy_that_meets_the_slo_with_least_resources_ranks_first(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path, "a", "hpa", slow_seconds=20, replica_s=100),  # cheap, misses the SLO
        make_run(tmp_path, "b", "ds2", slow_seconds=3, replica_s=150),
        make_run(tmp_path, "c", "threshold", slow_seconds=3, replica_s=200),
    ]
    card = scorecard(runs)
    assert [s.policy for s in card.scores] == ["ds2", "threshold", "hpa"]
    assert [s.rank for s in card.scores] == [1, 2, 3]
    assert card.scores[0].slo_violation_s == 3 and card.scores[-1].slo_violation_s == 20
    assert card.same_load
    assert all(s.processed == 700 for s in card.scores)  # warmup frames were processed too
    # When it first scaled up, and how long its scale-ups took from wanting to done.
    assert all(s.first_scale_up_s == 4.0 and s.reaction_s == 2.0 for s in card.scores)


def test_a_slow_warmup_is_not_an_slo_violation(tmp_path: Path) -> None:
    """A policy that starts slow while warming up but keeps the SLO under load is not charged
    for the warmup, and does not rank behind one that missed it under load."""

    def slow_warmup(t: int, i: int) -> float:
        return 5.0 if t < WARMUP_S else 0.1

    warm = make_run(tmp_path, "warm", "ds2", replica_s=150, latency=slow_warmup)
    late = make_run(tmp_path, "late", "hpa", slow_seconds=2, replica_s=100)
    card = scorecard([warm, late])
    assert {s.policy: s.slo_violation_s for s in card.scores} == {"ds2": 0, "hpa": 2}
    assert [s.policy for s in card.scores] == ["ds2", "hpa"]


def test_the_seconds_are_those_of_the_load_phase_by_intended_send_time(tmp_path: Path) -> None:
    """Slow in the last 2 s of warmup and the first 4 s of load: 4 seconds violated."""

    def straddling(t: int, i: int) -> float:
        return 3.0 if WARMUP_S - 2 <= t < WARMUP_S + 4 else 0.1

    run = make_run(tmp_path, "a", "hpa", latency=straddling)
    assert scorecard([run]).scores[0].slo_violation_s == 4


def test_a_p99_slo_is_judged_by_p99(tmp_path: Path) -> None:
    """3 frames in 100 at 2 s each second of the load: p95 is fast, p99 is not."""

    def tail(t: int, i: int) -> float:
        return 2.0 if i < 3 else 0.05

    p99 = make_run(tmp_path, "p99", "hpa", slo={"latency_p99": 1.0}, latency=tail, per_second=100)
    p95 = make_run(tmp_path, "p95", "ds2", slo=P95_SLO, latency=tail, per_second=100)
    loose = make_run(
        tmp_path, "loose", "threshold", slo={"latency_p99": 3.0}, latency=tail, per_second=100
    )
    scores = {s.run: s for s in scorecard([p99, p95, loose]).scores}
    assert scores["p99"].slo_violation_s == LOAD_S  # every second of the load, not the warmup
    assert scores["p95"].slo_violation_s == 0
    assert scores["loose"].slo_violation_s == 0
    assert [(c.percentile, c.limit_s) for c in scores["p99"].slo_ceilings] == [("p99", 1.0)]


def test_with_both_percentiles_a_second_is_violated_when_either_is(tmp_path: Path) -> None:
    """p99 over its limit in the first 5 s of load, p95 over its limit in the last 3 s."""

    def both(t: int, i: int) -> float:
        into_load = t - WARMUP_S
        if 0 <= into_load < 5 and i < 3:
            return 2.0  # only the tail: p99 slow
        if into_load >= LOAD_S - 3 and i < 10:
            return 0.8  # a tenth of the frames: p95 above 0.5 s, p99 below 1 s
        return 0.05

    slo = {"latency_p95": 0.5, "latency_p99": 1.0}
    run = make_run(tmp_path, "both", "hpa", slo=slo, latency=both, per_second=100)
    assert scorecard([run]).scores[0].slo_violation_s == 8


def test_without_a_latency_slo_the_default_ceiling_is_named_as_such(tmp_path: Path) -> None:
    run = make_run(tmp_path, "a", "hpa", slow_seconds=4, slo={})
    [s] = scorecard([run]).scores
    assert s.slo_violation_s == 4  # 3 s frames against the default 1 s
    [ceiling] = s.slo_ceilings
    assert ceiling.default and (ceiling.percentile, ceiling.limit_s) == ("p95", 1.0)
    assert ceiling.label("1 s") == "default p95 ceiling 1 s (no latency SLO)"


def test_a_run_without_a_finished_load_phase_is_not_judged_and_ranks_last(tmp_path: Path) -> None:
    unjudged = make_run(tmp_path, "a", "hpa", replica_s=10, phases=False)
    judged = make_run(tmp_path, "b", "ds2", slow_seconds=30, replica_s=300)
    card = scorecard([unjudged, judged])
    assert [(s.policy, s.slo_violation_s) for s in card.scores] == [("ds2", 30), ("hpa", None)]


def test_a_different_load_is_flagged(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", "hpa", 0, 100)
    b = make_run(tmp_path, "b", "ds2", 0, 100, load={**LOAD, "rate": 40})
    assert not scorecard([a, b]).same_load


def test_the_command_prints_the_ranking(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", "hpa", 10, 100)
    b = make_run(tmp_path, "b", "ds2", 0, 120)
    c = make_run(tmp_path, "c", "threshold", 0, 50, phases=False)
    app = typer.Typer()
    app.command()(scorecard_command)
    result = CliRunner().invoke(app, [str(a), str(b), str(c), "--json"])
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.output)["scores"]
    assert [s["policy"] for s in ranked] == ["ds2", "hpa", "threshold"]
    assert [s["slo_violation_s"] for s in ranked] == [0, 10, None]
    assert ranked[0]["slo_ceilings"] == [{"percentile": "p95", "limit_s": 1.0, "default": False}]
    table = CliRunner().invoke(app, [str(a), str(b), str(c)], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "judged per second of the load phase against: SLO p95 ceiling 1 s" in table.output
    assert "c has no finished load phase in run.json" in table.output
