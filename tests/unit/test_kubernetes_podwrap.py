"""podwrap, the in-pod supervisor, run for real around small child processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalelab.platform.process import wait_until

# A component: says it is up, exits 0 on SIGTERM after writing a file, else ends with argv[1].
CHILD = """
import pathlib, signal, sys, time
data = pathlib.Path(sys.argv[2])
def stop(*_):
    (data / "drained").write_text("yes")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
(data / "up").write_text("1")
if sys.argv[1] != "wait":
    sys.exit(int(sys.argv[1]))
while True:
    time.sleep(0.05)
"""


def podwrap(data: Path, mode: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "scalelab.platform.kubernetes.podwrap",
        "--data",
        str(data),
        "--",
        sys.executable,
        "-c",
        CHILD,
        mode,
        str(data),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert wait_until(lambda: (data / "up").exists() or proc.poll() is not None, 10)
    return proc


def exit_code(data: Path) -> str | None:
    path = data / ".scalelab" / "exit-code"
    return path.read_text() if path.exists() else None


def test_a_clean_exit_is_recorded_and_the_container_stays_up(tmp_path: Path) -> None:
    proc = podwrap(tmp_path, "0")
    assert wait_until(lambda: exit_code(tmp_path) == "0", 10)
    time.sleep(0.3)
    assert proc.poll() is None  # kept up so files can be copied out
    proc.send_signal(signal.SIGUSR2)
    assert proc.wait(10) == 0
    assert b"component exited with code 0" in (proc.stdout.read() if proc.stdout else b"")


def test_a_failure_ends_the_container_with_its_code(tmp_path: Path) -> None:
    proc = podwrap(tmp_path, "3")
    assert proc.wait(10) == 3
    assert exit_code(tmp_path) == "3"


def test_stop_request_drains_the_component_and_holds(tmp_path: Path) -> None:
    proc = podwrap(tmp_path, "wait")
    proc.send_signal(signal.SIGUSR1)
    assert wait_until(lambda: exit_code(tmp_path) == "0", 10)
    assert (tmp_path / "drained").read_text() == "yes"
    assert proc.poll() is None
    proc.terminate()
    assert proc.wait(10) == 0


def test_pod_deletion_stops_the_component_and_exits(tmp_path: Path) -> None:
    proc = podwrap(tmp_path, "wait")
    proc.terminate()
    assert proc.wait(10) == 0
    assert (tmp_path / "drained").exists() and exit_code(tmp_path) == "0"


def test_no_command_is_an_error(tmp_path: Path) -> None:
    from scalelab.platform.kubernetes.podwrap import main

    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--"])
