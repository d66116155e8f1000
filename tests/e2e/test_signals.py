"""Hostile ends of `scalelab run`, through the real CLI: signals, a killed CLI, concurrent
runs, an unwritable or full runs directory. Each test checks what a user relies on: the
CLI ends, the record says what happened, and no process or pid file is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from scalelab.platform.process import wait_until
from scalelab.run.model import resolve_model
from scalelab.spec.loader import load_spec

from .cli import REPO, alive, recorded_pids, runs, scalelab, spawn

pytestmark = pytest.mark.e2e
QUICKSTART = str(REPO / "examples" / "quickstart.yaml")
AFTER_TEARDOWN_S = 30.0
"""The promise: the CLI has exited this long after its teardown ended, at the latest."""


def start_run(*overrides: str) -> tuple[subprocess.Popen[str], set[Path]]:
    args = ["run", QUICKSTART, "--set", "load.warmup=2s"]
    for item in overrides:
        args += ["--set", item]
    before = set(runs())
    return spawn(*args), before


def wait_for_load(proc: subprocess.Popen[str]) -> dict[str, int]:
    """Wait until the producer runs (the load has begun); the pids of every child."""
    started = wait_until(lambda: "producer" in recorded_pids() or proc.poll() is not None, 240)
    assert started and proc.poll() is None, _output(proc)
    time.sleep(2)
    return recorded_pids()


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str, float]:
    """Exit code, output, and the wall-clock time at which the CLI exited."""
    output, _ = proc.communicate(timeout=timeout)
    return proc.returncode, output, time.time()


def record_of(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "run.json").read_text()))


def the_new_run(before: set[Path]) -> Path:
    (run_dir,) = [path for path in set(runs()) - before if path.is_dir()]
    return run_dir


def teardown_end(record: dict[str, Any]) -> float:
    (teardown,) = [p for p in record["phases"] if p["name"] == "teardown"]
    assert teardown["end"], "the teardown never finished"
    return datetime.fromisoformat(teardown["end"].replace("Z", "+00:00")).timestamp()


def assert_nothing_left(pids: dict[str, int]) -> None:
    assert recorded_pids() == {}, "pid files left behind"
    left = [name for name, pid in pids.items() if alive(pid)]
    assert not left, f"processes left behind: {left}"


def _output(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        return "(still running)"
    return proc.stdout.read() if proc.stdout else ""


# -- signals ------------------------------------------------------------------------------


def test_ctrl_c_mid_load_exits_soon_after_teardown_with_its_summary() -> None:
    proc, before = start_run("load.duration=60s")
    pids = wait_for_load(proc)
    proc.send_signal(signal.SIGINT)
    code, output, exited = finish(proc)
    run_dir = the_new_run(before)
    record = record_of(run_dir)
    assert code == 130, output
    assert record["status"] == "aborted"
    assert exited - teardown_end(record) < AFTER_TEARDOWN_S
    assert f"aborted run {record['id']}" in output
    assert "phases: setup" in output and "teardown" in output
    assert "interrupted (SIGINT)" in output
    assert_nothing_left(pids)


@pytest.mark.parametrize("delay", [0.5, 1.5, 4.0])
def test_ctrl_c_while_the_cli_starts_is_never_ignored(delay: float) -> None:
    """Start-up imports swallowed a Ctrl-C here, and the run then went on to the end."""
    proc, before = start_run("load.duration=40s")
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    code, output, _ = finish(proc, timeout=120)
    assert code in (130, -signal.SIGINT), output  # -2: died of it before Python's handler
    for run_dir in set(runs()) - before:  # none, or one that was aborted
        assert record_of(run_dir)["status"] == "aborted", output
    assert_nothing_left({})


def test_second_ctrl_c_forces_a_fast_teardown() -> None:
    proc, before = start_run("load.duration=60s")
    pids = wait_for_load(proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    second = time.time()
    code, output, exited = finish(proc)
    record = record_of(the_new_run(before))
    assert code == 130, output
    assert record["status"] == "aborted"
    messages = [e["message"] for e in record["errors"]]
    assert any(m.startswith("forced stop (second signal)") for m in messages), messages
    assert exited - second < AFTER_TEARDOWN_S
    assert "forced stop" in output
    assert_nothing_left(pids)


def test_sigterm_during_teardown_finishes_it_and_records_the_abort() -> None:
    proc, before = start_run("load.duration=6s", "load.warmup=1s")
    pids = wait_for_load(proc)

    def in_teardown() -> bool:
        created = set(runs()) - before
        if not created or proc.poll() is not None:
            return proc.poll() is not None
        with contextlib.suppress(OSError, ValueError):
            phases = record_of(created.pop())["phases"]
            return bool(phases) and phases[-1]["name"] == "teardown"
        return False

    assert wait_until(in_teardown, 240, interval=0.02) and proc.poll() is None, _output(proc)
    proc.send_signal(signal.SIGTERM)
    code, output, _ = finish(proc)
    record = record_of(the_new_run(before))
    assert code == 130, output
    assert record["status"] == "aborted"
    messages = [e["message"] for e in record["errors"]]
    assert "SIGTERM during teardown; the teardown was finished" in messages
    teardown_end(record)
    assert_nothing_left(pids)


def test_killed_cli_leaves_no_child_and_reset_closes_its_record() -> None:
    proc, before = start_run("load.duration=60s")
    pids = wait_for_load(proc)
    proc.kill()
    proc.wait()
    assert wait_until(lambda: not any(alive(pid) for pid in pids.values()), 30), [
        name for name, pid in pids.items() if alive(pid)
    ]
    run_dir = the_new_run(before)
    assert record_of(run_dir)["status"] == "running"
    reset = scalelab("reset")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    record = record_of(run_dir)
    assert record["status"] == "aborted"
    (error,) = record["errors"]
    assert error["message"].startswith(f"orphaned: its scalelab (pid {proc.pid}) is gone")
    assert f"closed the record of run {record['id']} as aborted" in reset.stdout
    assert_nothing_left(pids)


# -- concurrent runs ------------------------------------------------------------------------


def test_two_runs_started_at_once_one_runs_the_other_is_refused() -> None:
    spec = load_spec(Path(QUICKSTART), [])
    resolve_model(spec.workload, spec.base_dir)  # built once here, not by both runs at once
    before = set(runs())
    args = ["run", QUICKSTART, "--set", "load.duration=4s", "--set", "load.warmup=1s"]
    first, second = spawn(*args), spawn(*args)
    assert wait_until(lambda: _one_done(first, second), 240)
    refused, winner = (first, second) if first.poll() is not None else (second, first)
    assert winner.poll() is None, "the refusal must come while the other run goes on"
    refused_out, _ = refused.communicate()
    assert refused.returncode == 1, refused_out
    assert "a stack is already running here (a run in progress (scalelab pid" in refused_out
    code, winner_out, _ = finish(winner, timeout=400)
    assert code == 0, winner_out
    records = {d.name: record_of(d) for d in set(runs()) - before}
    statuses = sorted(r["status"] for r in records.values())
    assert statuses == ["failed", "succeeded"]
    for run_id, record in records.items():
        config = Path(os.environ["SCALELAB_RUNS"]) / run_id / "config"
        if record["status"] == "succeeded":
            assert (config / "server.properties").is_file()
            log = (config.parent / "logs" / "broker.log").read_text()
            assert "Invalid cluster.id" not in log
        else:
            assert record["errors"][0]["kind"] == "StackRunningError"
            assert not config.exists(), "the refused run wrote stack files"
    assert recorded_pids() == {}


def _one_done(*procs: subprocess.Popen[str]) -> bool:
    return any(p.poll() is not None for p in procs)


# -- unwritable and full disks --------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A small tmpfs (root alone does not stop root from writing a chmod-ed directory)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): no disk to fill")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_unwritable_runs_dir_names_the_path_and_errno(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=1m") as root:
        monkeypatch.setenv("SCALELAB_RUNS", str(root / "runs"))
        result = scalelab("run", QUICKSTART)
    assert result.returncode != 0
    assert f"cannot write {root / 'runs'}" in result.stderr
    assert "Read-only file system (errno 30 EROFS)" in result.stderr
    assert recorded_pids() == {}


def fill(directory: Path) -> None:
    """Fill the file system under `directory` to the last byte."""
    with open(directory / "filler", "wb", buffering=0) as handle:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * size)


def test_disk_full_mid_run_still_tears_down_and_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tmpfs(tmp_path / "small", "size=64m") as root:
        monkeypatch.setenv("SCALELAB_RUNS", str(root))
        proc, before = start_run("load.duration=60s")
        pids = wait_for_load(proc)
        fill(root)
        code, output, _ = finish(proc)
        run_dir = the_new_run(before)
        assert code == 1, output
        assert "No space left on device (errno 28 ENOSPC)" in output
        assert f"cannot write {run_dir / 'run.json'}" in output
        assert_nothing_left(pids)
        (root / "filler").unlink()
        assert record_of(run_dir)["status"] == "running"  # the CLI could not close it
        reset = scalelab("reset")
        assert reset.returncode == 0, reset.stdout + reset.stderr
        assert record_of(run_dir)["status"] == "aborted"
