"""What `status`, `down` and `reset` do with processes a stack left running.

They work from files only (stack.json and the pid files), so they also clean
up after a scalelab that crashed or was killed. One stack at a time per state
directory: a run holds an exclusive lock on `stack.lock` for its life (the
kernel drops it when the process dies, so a killed scalelab never leaves it
held), and the pid files cover a stack that `scalelab up` left running.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from scalelab import paths
from scalelab.errors import ScalelabError
from scalelab.platform.process import PidFile, terminate_group
from scalelab.run.record import Phase, RunRecord, rfc3339, utc_now

STACK_FILE = "stack.json"
LOCK_FILE = "stack.lock"


class StackRunningError(ScalelabError):
    """Another stack is running from the same state directory (its Prometheus holds the data)."""

    def __init__(self, names: list[str], run_ids: set[str]):
        self.names = names
        self.run_ids = run_ids
        super().__init__(
            f"a stack is already running here ({', '.join(names)} of run "
            f"{', '.join(sorted(run_ids))}): stop it with `scalelab down`, or `scalelab reset`"
        )


class StackLock:
    """The state directory's stack lock (flock), held by one run from setup to teardown."""

    def __init__(self, handle: IO[str]):
        self.handle = handle

    @classmethod
    def take(cls, run_id: str) -> StackLock:
        """Take the lock at once or raise StackRunningError naming the run that holds it."""
        path = paths.state_dir() / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - held open for the run's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(path)
            handle.close()
            pid = holder.get("pid", "?")
            raise StackRunningError(
                [f"a run in progress (scalelab pid {pid})"], {str(holder.get("run_id", "?"))}
            ) from None
        handle.truncate(0)
        handle.write(json.dumps({"run_id": run_id, "pid": os.getpid()}))
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _lock_holder(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def reusable_stack(platform: str) -> dict[str, Any] | None:
    """The stack `scalelab up` left running, when a run on `platform` can use it.

    Every process it recorded must still be alive (else `refuse_if_running` and
    `reset` deal with what is left).
    """
    kept = read_stack()
    if kept is None or kept.get("platform", "local") != platform:
        return None
    procs = [p for _, p in pid_files() if p.run_id == kept.get("run_id")]
    if not procs or any(p.process() is None for p in procs):
        return None
    return kept


def refuse_if_running() -> None:
    """Raise StackRunningError if processes of another stack (pid files) are alive."""
    live = [(path, pid_file) for path, pid_file in pid_files() if pid_file.process() is not None]
    if live:
        raise StackRunningError([p.name for _, p in live], {p.run_id for _, p in live})


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


def reset() -> tuple[list[ProcessState], list[str]]:
    """Remove whatever earlier runs left: processes, the stack file, stale broker storage.

    Returns what was stopped and the ids of the run records it closed: the stack's, and
    every `running` record whose scalelab is gone (killed, or unable to write its record).
    """
    stack = read_stack()
    started = rfc3339(utc_now())
    stopped = stop_processes()
    closed = []
    if stack is not None:
        if _close_record(Path(stack.get("run_dir", "")), "aborted", started):
            closed.append(str(stack.get("run_id")))
        (paths.state_dir() / STACK_FILE).unlink(missing_ok=True)
    closed += close_orphaned_records(started)
    for stale in (paths.state_dir() / "kafka").glob("data-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return stopped, closed


def close_orphaned_records(teardown_start: str) -> list[str]:
    """Mark `running` records whose owning scalelab no longer exists `aborted`, with why."""
    root = paths.runs_dir()
    closed = []
    for run_dir in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            record = RunRecord.read(run_dir)
        except (OSError, ValueError, TypeError):
            continue
        if record.status != "running" or record.owner_alive():
            continue
        pid = record.owner.get("pid", "unknown")
        reason = (
            f"orphaned: its scalelab (pid {pid}) is gone (killed, or it could not write "
            "this record); closed by `scalelab reset`"
        )
        if _close_record(run_dir, "aborted", teardown_start, reason):
            closed.append(record.id)
    return closed


def _close_record(
    run_dir: Path,
    status: str,
    teardown_start: str,
    reason: str = "stopped by `scalelab reset`",
) -> bool:
    """Close a record with a teardown phase; False when it is gone or cannot be written."""
    try:
        record = RunRecord.read(run_dir)
    except (OSError, ValueError, TypeError):
        return False
    record.phases.append(Phase("teardown", teardown_start, rfc3339(utc_now())))
    if record.status == "running":
        if status == "aborted":
            record.add_error("aborted", reason)
        record.finish(status)  # type: ignore[arg-type]
    try:
        record.write(run_dir)
    except OSError:
        return False
    return True


def _remove_fresh_storage(run_id: str) -> None:
    shutil.rmtree(paths.state_dir() / "kafka" / f"data-{run_id}", ignore_errors=True)
