"""Supervised processes: bounded stop, pid files, and nothing outliving its parent."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from scalelab.errors import PortInUseError
from scalelab.platform.ports import choose_port, free_port
from scalelab.platform.process import ManagedProcess, PidFile, ProcessSpec, wait_until

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def start(tmp_path: Path, code: str, detached: bool = True) -> ManagedProcess:
    spec = ProcessSpec("child", [sys.executable, "-c", code], tmp_path / "child.log")
    proc = ManagedProcess(spec, tmp_path / "pids", "run-1", detached)
    proc.start()
    return proc


def test_pid_file_describes_the_live_process(tmp_path: Path) -> None:
    proc = start(tmp_path, "import time; time.sleep(600)")
    try:
        pid_file = PidFile.read(tmp_path / "pids" / "child.json")
        assert pid_file is not None and pid_file.pid == proc.pid and pid_file.run_id == "run-1"
        assert pid_file.process() is not None
    finally:
        proc.stop()
    assert not (tmp_path / "pids" / "child.json").exists()
    assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == "zombie"


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    proc = start(tmp_path, STUBBORN)
    time.sleep(0.3)
    began = time.monotonic()
    proc.stop(timeout=1.0)
    assert time.monotonic() - began < 5
    code = proc.exit_code()
    assert code is not None and code < 0


def test_child_dies_with_its_parent(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a run's children go when scalelab is killed."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from scalelab.platform.process import ManagedProcess, ProcessSpec\n"
        f"spec = ProcessSpec('c', [sys.executable, '-c', 'import time; time.sleep(600)'], "
        f"Path(r'{tmp_path}') / 'c.log')\n"
        f"p = ManagedProcess(spec, Path(r'{tmp_path}') / 'pids', 'r', detached=False)\n"
        "p.start(); print(p.pid, flush=True); time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert wait_until(lambda: not _alive(child), timeout=10)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_fixed_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUseError) as caught:
            choose_port("prometheus", port, set())
    assert caught.value.port == port and "prometheus" in str(caught.value)


def test_free_ports_are_distinct() -> None:
    taken: set[int] = set()
    ports = {choose_port("x", 0, taken) for _ in range(5)}
    assert len(ports) == 5 and ports == taken
    assert 0 < free_port() < 65536


def test_child_that_ignores_sigterm_still_dies_with_its_parent(tmp_path: Path) -> None:
    """The death signal is SIGKILL: a child stuck in its SIGTERM handler cannot outlive us."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from scalelab.platform.process import ManagedProcess, ProcessSpec\n"
        f"code = {STUBBORN!r}\n"
        f"spec = ProcessSpec('c', [sys.executable, '-c', code], Path(r'{tmp_path}') / 'c.log')\n"
        f"p = ManagedProcess(spec, Path(r'{tmp_path}') / 'pids', 'r', detached=False)\n"
        "p.start(); print(p.pid, flush=True); time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # the child has installed its SIGTERM handler
    parent.kill()
    parent.wait()
    try:
        assert wait_until(lambda: not _alive(child), timeout=10)
    finally:
        if _alive(child):
            psutil.Process(child).kill()


def test_kill_from_another_thread_stops_a_stubborn_child_at_once(tmp_path: Path) -> None:
    """A forced teardown: `kill` (any thread) SIGKILLs, `stop` then reaps without waiting."""
    proc = start(tmp_path, STUBBORN)
    time.sleep(0.3)
    killer = threading.Thread(target=proc.kill)
    killer.start()
    killer.join()
    assert wait_until(lambda: not _alive(proc.pid), timeout=5)
    proc.stop(timeout=60)
    assert proc.exit_code() == -signal.SIGKILL
    assert not (tmp_path / "pids" / "child.json").exists()
