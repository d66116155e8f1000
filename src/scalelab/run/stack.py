"""What `status`, `down` and `reset` do with processes a stack left running.

They work from files only (stack.json and the pid files), so they also clean
up after a scalelab that crashed or was killed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalelab import paths
from scalelab.platform.process import PidFile, terminate_group
from scalelab.run.record import Phase, RunRecord, rfc3339, utc_now

STACK_FILE = "stack.json"


@dataclass
class ProcessState:
    name: str
    pid: int
    alive: bool
    ports: dict[str, int]
    started: str
    run_id: str


def read_stack() -> dict[str, Any] | None:
    path = paths.state_dir() / STACK_FILE
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def pid_files() -> list[tuple[Path, PidFile]]:
    found = []
    for path in sorted(paths.pid_dir().glob("*.json")):
        pid_file = PidFile.read(path)
        if pid_file is not None:
            found.append((path, pid_file))
    return found


def process_states() -> list[ProcessState]:
    return [
        ProcessState(p.name, p.pid, p.process() is not None, p.ports, p.started, p.run_id)
        for _, p in pid_files()
    ]


def stop_processes(run_id: str | None = None) -> list[ProcessState]:
    """Stop every process from the pid files (of one run, or all); returns what was stopped."""
    stopped = []
    for path, pid_file in pid_files():
        if run_id is not None and pid_file.run_id != run_id:
            continue
        live = pid_file.process() is not None
        if live:
            terminate_group(pid_file.pid)
        stopped.append(
            ProcessState(
                pid_file.name, pid_file.pid, live, pid_file.ports, pid_file.started, pid_file.run_id
            )
        )
        path.unlink(missing_ok=True)
    return stopped


def bring_down() -> tuple[dict[str, Any] | None, list[ProcessState]]:
    """Stop the stack `up` left running and close its run record as succeeded."""
    stack = read_stack()
    if stack is None:
        return None, []
    started = rfc3339(utc_now())
    stopped = stop_processes(stack["run_id"])
    _close_record(Path(stack["run_dir"]), "succeeded", started)
    _remove_fresh_storage(stack["run_id"])
    (paths.state_dir() / STACK_FILE).unlink(missing_ok=True)
    return stack, stopped


def reset() -> list[ProcessState]:
    """Remove whatever earlier runs left: processes, the stack file, stale broker storage."""
    stack = read_stack()
    stopped = stop_processes()
    if stack is not None:
        _close_record(Path(stack["run_dir"]), "aborted", rfc3339(utc_now()))
        (paths.state_dir() / STACK_FILE).unlink(missing_ok=True)
    for stale in (paths.state_dir() / "kafka").glob("data-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return stopped


def _close_record(run_dir: Path, status: str, teardown_start: str) -> None:
    try:
        record = RunRecord.read(run_dir)
    except (OSError, ValueError, TypeError):
        return
    record.phases.append(Phase("teardown", teardown_start, rfc3339(utc_now())))
    if record.status == "running":
        if status == "aborted":
            record.add_error("aborted", "stopped by `scalelab reset`")
        record.finish(status)  # type: ignore[arg-type]
    record.write(run_dir)


def _remove_fresh_storage(run_id: str) -> None:
    shutil.rmtree(paths.state_dir() / "kafka" / f"data-{run_id}", ignore_errors=True)
