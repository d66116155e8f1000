"""Re-export and the export's failure paths against the real Prometheus."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from scalelab.export.run_export import ExportRefused, export_run
from scalelab.platform.ports import free_port
from scalelab.run.record import RunRecord
from scalelab.spec.loader import load_resolved

from .cli import REPO, recorded_pids, run_json, runs, scalelab, spawn

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


def record_of(run_dir: Path) -> Any:
    return json.loads((run_dir / "run.json").read_text())


def load_started(before: set[Path]) -> Path | None:
    """The new run's directory once its deploy phase has ended (the load starts), else None."""
    for run_dir in set(runs()) - before:
        try:
            phases = record_of(run_dir)["phases"]
        except (OSError, ValueError):
            continue
        if any(p["name"] == "deploy" and p.get("end") for p in phases):
            return run_dir
    return None


def stamps_in(path: Path, start: datetime, end: datetime) -> list[datetime]:
    stamps = pq.read_table(path, columns=["timestamp"]).column("timestamp").to_pylist()
    return [t for t in stamps if start < t < end]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_hole(run_dir: Path, paused: datetime, resumed: datetime) -> None:
    """No sample while Prometheus was paused; the record lists a hole over the pause."""
    assert stamps_in(run_dir / "metrics.parquet", paused, resumed) == []
    record = record_of(run_dir)
    export = record["results"]["export"]
    assert export["complete"] is False
    gaps = [(utc(g["start"]), utc(g["end"])) for g in export["gaps"]]
    assert any(start <= paused and end >= resumed for start, end in gaps), export["gaps"]
    warnings = [w for w in record["warnings"] if w.startswith("export incomplete")]
    assert len(warnings) == 1 and "no samples" in warnings[0]


def test_a_prometheus_stopped_mid_load_leaves_a_hole_that_reexport_keeps() -> None:
    before = set(runs())
    args = ["run", QUICKSTART, "--set", "load.duration=20s", "--set", "load.warmup=2s"]
    proc = spawn(*args)
    pid = None
    try:
        deadline = time.monotonic() + 300
        while (run_dir := load_started(before)) is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.2)
        assert run_dir is not None, "the load never started"
        pid = recorded_pids()["prometheus"]
        time.sleep(2)
        os.kill(pid, signal.SIGSTOP)  # Prometheus scrapes nothing until SIGCONT
        paused = datetime.now(UTC)
        time.sleep(8)
        now = datetime.now(UTC)  # Prometheus keeps whole milliseconds: a scrape on resuming
        resumed = now.replace(microsecond=now.microsecond // 1000 * 1000)  # may carry this one
        os.kill(pid, signal.SIGCONT)
        pid = None
        output = proc.communicate(timeout=600)[0]
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert record_of(run_dir)["status"] == "succeeded", output
    assert_hole(run_dir, paused, resumed)

    again = scalelab("export", run_dir.name)  # from the kept data, after the run
    assert again.returncode == 1, again.stdout + again.stderr
    assert "incomplete" in again.stdout and "scraped nothing" in again.stdout
    assert_hole(run_dir, paused, resumed)


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
