"""The notebook API and run-id resolution: open_run, open_runs, runs_table, close-match errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalelab.analysis.dataset import flatten, open_run, open_runs, runs_table
from scalelab.analysis.runs import resolve_run, run_ids
from scalelab.analysis.synthetic import Synthetic, write_run
from scalelab.errors import ConfigError

RUN_A = "20260913T100000Z-synthetic-aaaaaa"
RUN_B = "20260913T110000Z-synthetic-bbbbbb"


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "runs"
    write_run(root / RUN_A, Synthetic(run_id=RUN_A, workers=1, load_s=10))
    write_run(root / RUN_B, Synthetic(run_id=RUN_B, workers=2, load_s=10))
    monkeypatch.setenv("SCALELAB_RUNS", str(root))
    return root


def test_run_ids_resolve_by_id_and_by_path(runs_root: Path) -> None:
    assert run_ids() == [RUN_A, RUN_B]
    assert resolve_run(RUN_A) == runs_root / RUN_A
    assert resolve_run(runs_root / RUN_B) == (runs_root / RUN_B).resolve()


def test_unknown_run_id_names_the_closest_ids(runs_root: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_run("20260913T100000Z-synthetic-aaaaab")
    assert caught.value.exit_code == 2
    assert RUN_A in str(caught.value) and "did you mean" in str(caught.value)
    with pytest.raises(ConfigError, match="bbbbbb"):
        resolve_run("bbbbbb")  # a hash alone matches by substring


def test_unknown_run_without_any_runs_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no runs there yet"):
        resolve_run("nope", tmp_path)


def test_open_run_reads_every_file(runs_root: Path) -> None:
    run = open_run(RUN_A)
    assert run.id == RUN_A
    assert len(run.qos) == 150 and {"latency_s", "worker", "intended_ns"} <= set(run.qos.columns)
    assert {"metric", "labels", "timestamp", "value"} <= set(run.metrics.columns)
    assert run.summary["throughput"] == 10.0
    assert run.record["status"] == "succeeded"
    assert run.spec["workload"]["workers"] == 1
    assert list(run.phases) == ["warmup", "load", "cooldown"]
    assert run.params["workload.workers"] == 1


def test_a_run_with_missing_or_broken_files_reads_as_empty(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "r", Synthetic())
    (run_dir / "qos.parquet").write_bytes(b"PAR1 truncated")
    (run_dir / "metrics.parquet").unlink()
    (run_dir / "summary.json").write_text("{not json")
    run = open_run(run_dir)
    assert run.qos.empty and "latency_s" in run.qos.columns
    assert run.metrics.empty and run.summary == {}
    assert any("qos.parquet unreadable" in note for note in run.notes)


def test_open_runs_joins_qos_rows_with_spec_parameters(runs_root: Path) -> None:
    frame = open_runs([RUN_A, RUN_B])
    assert len(frame) == 150 + 150
    assert set(frame["run_id"]) == {RUN_A, RUN_B}
    assert frame.groupby("run_id")["workload.workers"].first().to_dict() == {RUN_A: 1, RUN_B: 2}
    assert set(frame["phase"]) == {"warmup", "load"}
    assert frame.groupby("workload.workers")["latency_s"].quantile(0.99).notna().all()


def test_runs_table_has_headline_figures_per_run(runs_root: Path) -> None:
    table = runs_table()
    assert list(table.index) == [RUN_A, RUN_B]
    assert table.loc[RUN_A, "throughput"] == 10.0
    assert table.loc[RUN_B, "status"] == "succeeded"
    assert runs_table([RUN_B]).index.tolist() == [RUN_B]


def test_flatten_uses_dotted_keys_and_keeps_lists_comparable() -> None:
    tree = {"workload": {"workers": 2, "model": {"name": "y"}}, "faults": [{"at": 1}], "x": {}}
    assert flatten(tree) == {
        "workload.workers": 2,
        "workload.model.name": "y",
        "faults": '[{"at": 1}]',
        "x": "{}",
    }


def test_messages_have_utc_datetimes_seconds_since_load_start_and_phases(runs_root: Path) -> None:
    run = open_run(RUN_A)
    messages = run.messages
    assert str(messages["done"].dtype) == "datetime64[ns, UTC]"
    assert (messages["done"].astype("int64") == messages["done_ns"]).all()
    load_start = run.phases["load"][0]
    first_load = messages[messages["phase"] == "load"]["t_s"].min()
    assert 0 <= first_load < 0.2  # the first message offered in the load phase
    assert (messages[messages["phase"] == "warmup"]["t_s"] < 0).all()
    assert messages["t_s"].iloc[0] == pytest.approx(
        (messages["intended_ns"].iloc[0] - load_start) / 1e9
    )


def test_columns_that_do_not_apply_to_the_run_are_left_out(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "r", Synthetic(load_s=6))
    table = pq.read_table(run_dir / "qos.parquet")
    for name in ("decode_s", "detections"):  # a Flink job has no decode stage nor detections
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pa.nulls(len(table), table.schema.field(name).type))
    pq.write_table(table, run_dir / "qos.parquet")
    run = open_run(run_dir)
    assert "decode_s" not in run.messages and "detections" not in run.messages
    assert "decode_s" in run.qos  # the file as stored keeps them
    assert "run_id" not in run.samples or run.samples["run_id"].notna().any()


def test_rate_turns_a_counter_into_per_second_rates_per_component(runs_root: Path) -> None:
    run = open_run(RUN_A)
    cores = run.rate("process_cpu_seconds_total")
    assert {"broker", "worker-0"} <= set(cores.columns)
    assert str(cores["time"].dtype) == "datetime64[ns, UTC]" and cores.index.name == "t_s"
    load = cores[(cores.index >= 0) & (cores.index < 10)]
    rows = run.metrics[
        (run.metrics["metric"] == "process_cpu_seconds_total")
        & (run.metrics["component"] == "broker")
    ].sort_values("timestamp")
    start, end = run.phases["load"]
    inside = rows[
        (rows["timestamp"].astype("int64") >= start) & (rows["timestamp"].astype("int64") <= end)
    ]
    expected = (inside["value"].iloc[-1] - inside["value"].iloc[0]) / (
        (inside["timestamp"].iloc[-1] - inside["timestamp"].iloc[0]).total_seconds()
    )
    assert load["broker"].mean() == pytest.approx(expected, rel=0.1)
    total = run.rate("process_cpu_seconds_total", by=None)
    assert list(total.columns) == ["time", "process_cpu_seconds_total"]


def test_opening_a_dataset_imports_neither_kafka_nor_onnxruntime(runs_root: Path) -> None:
    code = (
        "import sys\nfrom scalelab.analysis import open_run, open_runs\n"
        f"run = open_run({RUN_A!r})\n"
        "run.qos, run.metrics, run.messages, run.samples, run.summary\n"
        "run.rate('process_cpu_seconds_total')\n"
        f"open_runs([{RUN_A!r}, 'latest'])\n"
        "print('LOADED', [m for m in ('confluent_kafka', 'onnxruntime') if m in sys.modules])"
    )
    env = {**os.environ, "SCALELAB_RUNS": str(runs_root)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED []" in done.stdout


def test_the_tracker_writes_the_schema_the_dataset_reads() -> None:
    from scalelab.analysis.qos_schema import QOS_SCHEMA
    from scalelab.components.tracker import QOS_SCHEMA as WRITTEN

    assert QOS_SCHEMA.equals(WRITTEN)
