"""The run record: ids, phase windows written even on failure, round trip; its owner, orphans
closed by `reset`, and the one-stack lock."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scalelab.run import stack
from scalelab.run.record import RunDirError, RunRecord, new_run_id, parse_rfc3339


def test_run_id_is_utc_stamp_name_and_hash() -> None:
    run_id = new_run_id("quickstart", "spec")
    assert re.fullmatch(r"\d{8}T\d{6}Z-quickstart-[0-9a-f]{6}", run_id)
    assert new_run_id("quickstart", "spec") != new_run_id("quickstart", "other")


def test_phase_window_is_closed_when_the_phase_raises(tmp_path: Path) -> None:
    record = RunRecord(id="r", name="n")
    with pytest.raises(RuntimeError), record.phase("load"):
        raise RuntimeError("boom")
    window = record.window("load")
    assert window is not None and window[0] <= window[1]
    assert (record.phases[0].end or "").endswith("Z")


def test_write_and_read_back(tmp_path: Path) -> None:
    record = RunRecord(id="r", name="n")
    with record.phase("setup"):
        pass
    record.add_error("ComponentError", "broker died", "broker")
    record.finish("failed")
    record.write(tmp_path)
    again = RunRecord.read(tmp_path)
    assert again.status == "failed"
    assert again.errors == [
        {"kind": "ComponentError", "message": "broker died", "component": "broker"}
    ]
    assert parse_rfc3339(again.ended or "").tzinfo is not None


def test_a_record_knows_whether_its_owner_lives(tmp_path: Path) -> None:
    record = RunRecord(id="r", name="n")
    record.claim()
    assert record.owner["pid"] == os.getpid() and record.owner_alive()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    record.owner = {**record.owner, "pid": gone.pid}
    assert not record.owner_alive()
    assert not RunRecord(id="old", name="n").owner_alive()  # a record that names no owner
    record.owner = {**record.owner, "host": "another-machine"}
    assert record.owner_alive()  # a run of another machine sharing runs/ is left alone


def test_unwritable_run_dir_error_names_path_and_errno(tmp_path: Path) -> None:
    error = RunDirError(tmp_path / "run.json", OSError(errno.ENOSPC, "No space left on device"))
    assert (
        str(error)
        == f"cannot write {tmp_path / 'run.json'}: No space left on device (errno 28 ENOSPC)"
    )
    assert error.errno == errno.ENOSPC and error.path == tmp_path / "run.json"


def test_reset_closes_orphaned_records_and_leaves_live_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALELAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SCALELAB_HOME", str(tmp_path / "state"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    records = {name: RunRecord(id=name, name="n") for name in ("orphan", "live", "done")}
    for name, record in records.items():
        record.claim()
        if name == "orphan":
            record.owner["pid"] = dead.pid
        if name == "done":
            record.finish("succeeded")
        record.write(tmp_path / "runs" / name)
    (tmp_path / "runs" / "gone").mkdir()  # a run directory without a record
    stopped, closed = stack.reset()
    assert stopped == [] and closed == ["orphan"]
    orphan = RunRecord.read(tmp_path / "runs" / "orphan")
    assert orphan.status == "aborted" and orphan.ended is not None
    assert orphan.errors[0]["message"].startswith(
        f"orphaned: its scalelab (pid {dead.pid}) is gone"
    )
    assert RunRecord.read(tmp_path / "runs" / "live").status == "running"
    assert RunRecord.read(tmp_path / "runs" / "done").status == "succeeded"


def test_reset_works_when_the_stack_run_dir_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALELAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SCALELAB_HOME", str(tmp_path / "state"))
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.json").write_text(json.dumps({"run_id": "x", "run_dir": str(tmp_path / "no")}))
    assert stack.reset() == ([], [])
    assert not (state / "stack.json").exists()


def test_one_stack_lock_per_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flock conflicts between open files, so two takes in one process stand for two runs."""
    monkeypatch.setenv("SCALELAB_HOME", str(tmp_path / "state"))
    held = stack.StackLock.take("run-a")
    try:
        with pytest.raises(stack.StackRunningError) as refused:
            stack.StackLock.take("run-b")
        assert refused.value.run_ids == {"run-a"}
        assert f"a run in progress (scalelab pid {os.getpid()})" in str(refused.value)
    finally:
        held.release()
    stack.StackLock.take("run-b").release()
