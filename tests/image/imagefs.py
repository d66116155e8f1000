"""The component image's archive and unpacked root filesystem, as the tests open them."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Image:
    """The archive's manifest and config, and the gzip layer blobs by name."""

    path: Path
    manifest: dict
    config: dict

    def layer_bytes(self, name: str) -> bytes:
        with tarfile.open(self.path) as tar:
            member = tar.extractfile(name)
            assert member is not None, name
            return gzip.decompress(member.read())


@dataclass
class Rootfs:
    """The image's layers unpacked in order; run() runs a command in it as the image's user."""

    root: Path
    env: dict[str, str]
    user: str

    def command(self, argv: list[str]) -> list[str]:
        """argv run in the root filesystem as the image's user, with /proc and /dev mounted
        in a private mount namespace (so nothing stays mounted)."""
        uid, gid = self.user.split(":")
        inner = (
            f"mount -t proc proc {self.root}/proc && mount --rbind /dev {self.root}/dev && "
            f'exec chroot {self.root} setpriv --reuid {uid} --regid {gid} --clear-groups -- "$@"'
        )
        return ["unshare", "--mount", "--fork", "sh", "-ec", inner, "sh", *argv]

    def run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, argv: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(argv),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # unshare --fork blocks SIGTERM in itself: signal the whole group instead.
            start_new_session=True,
        )

    @staticmethod
    def stop(process: subprocess.Popen[str]) -> str:
        """Stop a popen()ed command (SIGTERM, then SIGKILL) and return its output."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            return process.communicate()[0]
