"""The built component image (make image), opened for the image tests.

Every test here checks build/image/scalelab-image.tar as built; they skip, saying why,
when it has not been built or when the machine cannot run it (the root filesystem is
unpacked and commands run in it with chroot as uid 10001, which needs root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from needs_cluster import missing

from .imagefs import Image, Rootfs

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / "build" / "image" / "scalelab-image.tar"


@pytest.fixture(scope="session")
def image() -> Image:
    if not ARCHIVE.exists():
        missing(f"{ARCHIVE.relative_to(REPO)} is not built (make image)")
    with tarfile.open(ARCHIVE) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    return Image(ARCHIVE, manifest, config)


@pytest.fixture(scope="session")
def rootfs(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rootfs]:
    if os.geteuid() != 0:
        pytest.skip("running commands in the image's root filesystem needs root (chroot)")
    for tool in ("unshare", "chroot", "tar"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing")
    root = tmp_path_factory.mktemp("image-rootfs")
    with tarfile.open(image.path) as tar:
        for name in image.manifest[0]["Layers"]:
            member = tar.extractfile(name)
            assert member is not None
            # GNU tar keeps owners, modes and hard links exactly as the layer says.
            untar = subprocess.Popen(
                ["tar", "-xz", "--numeric-owner", "-C", str(root)], stdin=subprocess.PIPE
            )
            assert untar.stdin is not None
            shutil.copyfileobj(member, untar.stdin, 1 << 20)
            untar.stdin.close()
            assert untar.wait() == 0, f"tar could not unpack layer {name}"
    os.chmod(root, 0o755)
    env = dict(item.split("=", 1) for item in image.config["config"]["Env"])
    yield Rootfs(root, env, image.config["config"]["User"])
    shutil.rmtree(root, ignore_errors=True)
