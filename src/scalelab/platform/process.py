"""Supervised child processes: logs to files, pid files, SIGTERM then SIGKILL.

Children run in their own session so that a Ctrl-C in the terminal reaches
scalelab alone, which then tears down in order (export before Prometheus
stops). For runs that must not outlive scalelab, the child also asks the
kernel for a death signal when its parent dies (PR_SET_PDEATHSIG), so even a
SIGKILLed scalelab leaves nothing behind. The death signal is SIGKILL unless
the process spec says otherwise: a child that handles SIGTERM gracefully may
block in that handler (a Kafka producer flushing to a broker that died with
scalelab), and nobody is left to follow up with SIGKILL. Prometheus and the
broker keep SIGTERM, which they handle promptly and which keeps their
storage clean. `scalelab reset` handles the rest through the pid files.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 10.0


@dataclass
class ProcessSpec:
    """What to start: a name unique within the stack, the command line, and its log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    death_signal: signal.Signals = signal.SIGKILL


@dataclass
class PidFile:
    """What `scalelab reset` needs to find and stop a process an earlier run left."""

    name: str
    pid: int
    create_time: float
    argv0: str
    started: str
    run_id: str
    ports: dict[str, int]

    @classmethod
    def read(cls, path: Path) -> PidFile | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def process(self) -> psutil.Process | None:
        """The live process this file describes, or None if it is gone or the pid was reused."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0:
                return None
            return proc if proc.status() != psutil.STATUS_ZOMBIE else None
        except psutil.Error:
            return None


def _die_with_parent(death_signal: signal.Signals) -> Callable[[], None]:
    """A preexec hook (runs in the child between fork and exec) that arms the death signal.

    The death signal follows the thread that forked, and it is not sent if the parent
    died before prctl ran: the hook checks the parent is still the one that forked it.
    """
    libc = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded before fork, not in the child
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, int(death_signal))
        if os.getppid() != parent:
            os.kill(os.getpid(), death_signal)

    return arm


class ManagedProcess:
    """One running child with its log and pid file."""

    def __init__(self, spec: ProcessSpec, pid_dir: Path, run_id: str, detached: bool):
        self.spec = spec
        self.pid_path = pid_dir / f"{spec.name}.json"
        self.run_id = run_id
        self.detached = detached
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = datetime.now(UTC)

    def start(self) -> None:
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        preexec = None if self.detached else _die_with_parent(self.spec.death_signal)
        with open(self.spec.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.spec.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.spec.cwd,
                env={**os.environ, **self.spec.env},
                start_new_session=True,
                preexec_fn=preexec,
            )
        self._write_pid_file()

    def _write_pid_file(self) -> None:
        assert self.popen is not None
        pid_file = PidFile(
            name=self.spec.name,
            pid=self.popen.pid,
            create_time=psutil.Process(self.popen.pid).create_time(),
            argv0=self.spec.argv[0],
            started=self.started_at.isoformat().replace("+00:00", "Z"),
            run_id=self.run_id,
            ports=self.spec.ports,
        )
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole, then renamed: `status`, `reset` and tests that read the pid
        # directory at this instant see the old state or the new one, never an empty file.
        partial = self.pid_path.with_name(self.pid_path.name + ".partial")
        partial.write_text(json.dumps(asdict(pid_file), indent=2))
        partial.replace(self.pid_path)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.spec.log_path, lines)

    def kill(self) -> None:
        """SIGKILL the process group now (a forced teardown); `stop` still reaps it.

        Reads only `returncode` (no wait), so it is safe from a thread other than the one
        that reaps the process; a reaped process is left alone, its pid may be reused.
        """
        if self.popen is not None and self.popen.returncode is None:
            kill_group(self.popen.pid)

    def gone(self) -> bool:
        """Dead (a zombie counts) without reaping it: safe from any thread."""
        if self.popen is None or self.popen.returncode is not None:
            return True
        try:
            return psutil.Process(self.popen.pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, wait, then SIGKILL; always removes the pid file."""
        if self.popen is not None and self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)  # whatever the leader left in its group
        self.pid_path.unlink(missing_ok=True)


def kill_group(pid: int) -> None:
    """SIGKILL a process group at once (a forced teardown); safe to call from any thread."""
    _signal_group(pid, signal.SIGKILL)


def terminate_group(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """Stop a process and its whole process group: SIGTERM, bounded wait, SIGKILL."""
    try:
        members = [psutil.Process(pid)]
        members += members[0].children(recursive=True)
    except psutil.Error:
        return
    _signal_group(pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=timeout)
    if alive:
        _signal_group(pid, signal.SIGKILL)
        for proc in alive:
            _kill_quietly(proc)
        psutil.wait_procs(alive, timeout=5)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _kill_quietly(proc: psutil.Process) -> None:
    with contextlib.suppress(psutil.Error):
        proc.kill()


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll a condition until it holds or the timeout passes; True if it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
