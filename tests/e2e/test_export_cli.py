"""Re-export and the export's failure paths against the real Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scalelab.export.run_export import ExportRefused, export_run
from scalelab.platform.ports import free_port
from scalelab.run.record import RunRecord
from scalelab.spec.loader import load_resolved

from .cli import REPO, run_json, runs, scalelab

pytestmark = pytest.mark.e2e
QUICKSTART = str(REPO / "examples" / "quickstart.yaml")


@pytest.fixture(scope="module")
def finished_run() -> Path:
    before = set(runs())
    args = ["run", QUICKSTART, "--set", "load.duration=8s", "--set", "load.warmup=2s"]
    result = scalelab(*args, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = set(runs()) - before
    return run_dir


def series(path: Path) -> set[tuple[str, str]]:
    table = pq.read_table(path, columns=["metric", "labels"])
    return set(
        zip(table.column("metric").to_pylist(), table.column("labels").to_pylist(), strict=True)
    )


def test_unreachable_prometheus_is_recorded_then_finished_later(finished_run: Path) -> None:
    original = series(finished_run / "metrics.parquet")
    after_run = run_json(finished_run)
    assert after_run["results"]["export"]["complete"] is True  # type: ignore[index]
    assert after_run["results"]["export"]["gaps"] == []  # type: ignore[index]
    # As if the run's Prometheus had been unreachable when the run exported.
    (finished_run / "metrics.parquet").unlink()
    record = RunRecord.read(finished_run)
    spec = load_resolved(finished_run / "spec.yaml")
    dead = f"http://127.0.0.1:{free_port()}"
    result = export_run(finished_run, spec, record, dead)
    assert not result.complete and result.failed
    assert any(f"scalelab export {record.id}" in w for w in record.warnings)
    record.write(finished_run)

    # The run's Prometheus is gone: the export starts one on the kept data.
    again = scalelab("export", record.id)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.lstrip().startswith("complete")
    # The same series again (plus Prometheus's own, scraped after the first export ran).
    assert original <= series(finished_run / "metrics.parquet")
    after = run_json(finished_run)
    assert after["results"]["export"]["complete"] is True  # type: ignore[index]
    warnings = after["warnings"]
    assert isinstance(warnings, list) and not any("export incomplete" in w for w in warnings)


def test_a_window_with_no_data_is_an_explicit_empty_result(tmp_path: Path) -> None:
    up = scalelab("up", QUICKSTART)
    assert up.returncode == 0, up.stderr
    try:
        url = run_json(runs()[-1])["endpoints"]["prometheus"]  # type: ignore[index]
        out = tmp_path / "empty.parquet"
        result = scalelab(
            "export",
            "--start",
            "2001-01-01T00:00:00Z",
            "--end",
            "2001-01-01T01:00:00+01:00",
            "--prometheus",
            str(url),
            "-o",
            str(out),
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "no series" in result.stdout or "0 points" in result.stdout
        assert pq.read_table(out).num_rows == 0
    finally:
        assert scalelab("down").returncode == 0


def test_a_dead_prometheus_never_replaces_the_runs_table(finished_run: Path) -> None:
    before = (finished_run / "metrics.parquet").read_bytes()
    record = RunRecord.read(finished_run)
    spec = load_resolved(finished_run / "spec.yaml")
    with pytest.raises(ExportRefused, match="--force"):
        export_run(finished_run, spec, record, f"http://127.0.0.1:{free_port()}")
    assert (finished_run / "metrics.parquet").read_bytes() == before


def test_naive_time_is_refused() -> None:
    result = scalelab(
        "export", "--start", "2026-01-01T10:00:00", "--prometheus", "http://127.0.0.1:9"
    )
    assert result.returncode == 2
    assert "2026-01-01T10:00:00" in result.stderr


def test_unknown_run_id_lists_the_closest(finished_run: Path) -> None:
    typo = finished_run.name[:-1] + ("0" if finished_run.name[-1] != "0" else "1")
    result = scalelab("export", typo)
    assert result.returncode == 2
    assert finished_run.name in result.stderr
    assert json.loads((finished_run / "run.json").read_text())["status"] == "succeeded"
