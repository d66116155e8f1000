"""containerd imports the archive as `make image` does and runs a container from it.

A private containerd (its own root, state and socket in a temporary directory, no CRI
plugin) stands in for a node's: `ctr images import` must accept the docker-archive
(gzip layers, tag from manifest.json) and unpack it, and `ctr run` (runc) must start
the image's default command as uid 10001 in /tmp. Skips, saying why, when containerd,
ctr or runc is missing, or when not root."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import scalelab

from .imagefs import Image

TAG = f"scalelab.local/scalelab:{scalelab.__version__}"


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    missing = [tool for tool in ("containerd", "ctr", "runc") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing (apt-get install containerd)")
    if os.geteuid() != 0:
        pytest.skip("a private containerd needs root")
    # A short path: unix socket paths are limited to 108 bytes.
    home = Path(tmp_path_factory.mktemp("ctrd"))
    socket = home / "c.sock"
    (home / "config.toml").write_text(
        f'version = 2\nroot = "{home}/root"\nstate = "{home}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n[ttrpc]\n  address = "{home}/t.sock"\n'
    )
    with (home / "log").open("w") as log:
        daemon = subprocess.Popen(
            ["containerd", "--config", str(home / "config.toml")], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            assert daemon.poll() is None, (home / "log").read_text()[-2000:]
            assert time.monotonic() < deadline, "containerd never opened its socket"
            time.sleep(0.2)
        yield socket
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        subprocess.run(["umount", "-R", str(home / "root")], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def ctr(socket: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(socket), "-n", "k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_ctr_imports_the_archive_and_runs_it_as_10001(image: Image, containerd: Path) -> None:
    imported = ctr(containerd, "images", "import", str(image.path))
    assert imported.returncode == 0, imported.stderr
    assert TAG in ctr(containerd, "images", "ls", "-q").stdout.split()
    helped = ctr(containerd, "run", "--rm", TAG, "scalelab-help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage: scalelab" in helped.stdout
    code = "import os, scalelab; print(os.getuid(), os.getgid(), os.getcwd())"
    who = ctr(containerd, "run", "--rm", TAG, "scalelab-who", "python", "-c", code)
    assert who.returncode == 0, who.stderr
    assert who.stdout.split() == ["10001", "10001", "/tmp"]
