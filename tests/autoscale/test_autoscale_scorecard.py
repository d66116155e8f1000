"""The scorecard ranks policies on the same load: SLO violation first, then resources."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import typer
import yaml
from typer.testing import CliRunner

from scalelab.analysis.scorecard import scorecard
from scalelab.cli.scorecard_cmd import scorecard as scorecard_command

LOAD = {"profile": "diurnal", "rate": 20, "duration": 60}


def make_run(
    root: Path, name: str, policy: str, slow_seconds: int, replica_s: float, load: dict = LOAD
) -> Path:
    """60 s of 10 frames/s; the first `slow_seconds` seconds at 3 s latency, the rest 0.1 s."""
    run = root / name
    run.mkdir()
    spec = {
        "name": name,
        "load": load,
        "slo": {"latency_p95": 1.0},
        "autoscaler": {"policy": policy},
    }
    (run / "spec.yaml").write_text(yaml.safe_dump(spec))
    (run / "run.json").write_text(json.dumps({"id": name, "status": "succeeded"}))
    intended = [s * 1_000_000_000 + i * 100_000_000 for s in range(60) for i in range(10)]
    latency = [3.0 if t // 1_000_000_000 < slow_seconds else 0.1 for t in intended]
    pq.write_table(
        pa.table(
            {
                "id": [f"{name}:{i}" for i in range(len(intended))],
                "intended_ns": pa.array(intended, pa.int64()),
                "latency_s": latency,
            }
        ),
        run / "qos.parquet",
    )
    (run / "autoscaler.json").write_text(
        json.dumps(
            {"policy": policy, "rescales": 2, "replica_seconds": replica_s, "first_scale_up_s": 4.0}
        )
    )
    (run / "summary.json").write_text(json.dumps({"energy": {"load": {"joules": replica_s * 5}}}))
    return run


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
    assert all(s.processed == 600 for s in card.scores)


def test_a_different_load_is_flagged(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", "hpa", 0, 100)
    b = make_run(tmp_path, "b", "ds2", 0, 100, load={**LOAD, "rate": 40})
    assert not scorecard([a, b]).same_load


def test_the_command_prints_the_ranking(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", "hpa", 10, 100)
    b = make_run(tmp_path, "b", "ds2", 0, 120)
    app = typer.Typer()
    app.command()(scorecard_command)
    result = CliRunner().invoke(app, [str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.output)["scores"]
    assert [s["policy"] for s in ranked] == ["ds2", "hpa"]
