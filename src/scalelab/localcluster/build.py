"""Building the pinned binaries from `cluster/` (Go wrapper modules and the pause program).

A binary is rebuilt only when its stamp (a hash of the module's go.mod, go.sum and
sources, the Go version and the link flags) changed; the Go build cache makes a
rebuild after a change fast. The pause image is written as a docker-archive
tarball that `ctr images import` loads: no registry anywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scalelab.errors import MissingDependencyError, ScalelabError
from scalelab.localcluster import layout as L
from scalelab.localcluster.layout import Layout
from scalelab.paths import PROJECT_ROOT

CLUSTER_SRC = PROJECT_ROOT / "cluster"
_V = L.KUBERNETES_VERSION
_VERSION_VARS = (("gitVersion", _V), ("gitMajor", "1"), ("gitMinor", "34"))
K8S_VERSION_FLAGS = " ".join(
    [f"-X k8s.io/component-base/version.{var}={val}" for var, val in _VERSION_VARS]
    + ["-X k8s.io/component-base/version.gitTreeState=clean"]
    + [f"-X k8s.io/client-go/pkg/version.{var}={val}" for var, val in _VERSION_VARS]
)


class BuildError(ScalelabError):
    """A build step failed; `log` is where its output went."""

    def __init__(self, what: str, log: Path):
        self.what = what
        self.log = log
        super().__init__(f"building {what} failed, see {log}")


@dataclass(frozen=True)
class GoTarget:
    """One `go build` of one or more packages of a wrapper module into .cluster/bin."""

    name: str
    module: str
    packages: tuple[str, ...]
    outputs: tuple[str, ...]
    ldflags: str = "-s -w"


GO_TARGETS = (
    GoTarget("etcd", "etcd", (".",), ("etcd",)),
    GoTarget(
        "kubernetes",
        "kubernetes",
        tuple(
            f"k8s.io/kubernetes/cmd/{c}"
            for c in (
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kubelet",
                "kube-proxy",
                "kubectl",
            )
        ),
        (
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
            "kube-proxy",
            "kubectl",
        ),
        f"-s -w {K8S_VERSION_FLAGS}",
    ),
    GoTarget("coredns", "coredns", (".",), ("coredns",)),
    GoTarget(
        "metrics-server",
        "metrics-server",
        ("sigs.k8s.io/metrics-server/cmd/metrics-server",),
        ("metrics-server",),
    ),
)


def go_version() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise MissingDependencyError(
            "go", "install Go 1.24 or newer (https://go.dev/dl/) and put it on PATH"
        )
    return subprocess.run(
        [go, "version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def stamp_of(module_dir: Path, extra: str) -> str:
    """Hash of what a build depends on here: module files, sources, toolchain, flags."""
    h = hashlib.sha256(extra.encode())
    for path in sorted(module_dir.iterdir()):
        if path.is_file() and (path.suffix in (".go", ".mod", ".sum", ".c")):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _up_to_date(layout: Layout, name: str, outputs: tuple[str, ...], stamp: str) -> bool:
    stamp_file = layout.bin / f".{name}.stamp"
    have = stamp_file.read_text().strip() if stamp_file.exists() else ""
    return have == stamp and all(layout.binary(o).exists() for o in outputs)


def build_go(layout: Layout, target: GoTarget, say: Callable[[str], None]) -> bool:
    """Build one target unless up to date; True when it was built."""
    module_dir = CLUSTER_SRC / target.module
    stamp = stamp_of(module_dir, f"{go_version()}|{target.ldflags}|{target.packages}")
    if _up_to_date(layout, target.name, target.outputs, stamp):
        say(f"{target.name}: up to date")
        return False
    layout.bin.mkdir(parents=True, exist_ok=True)
    log = layout.logs / f"build-{target.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    out = (
        str(layout.bin) + "/" if len(target.outputs) > 1 else str(layout.binary(target.outputs[0]))
    )
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-trimpath -buildvcs=false"}
    env["PATH"] = env.get("PATH", "") + ":/usr/local/go/bin"
    say(f"{target.name}: building {', '.join(target.outputs)} (log: {log})")
    started = time.monotonic()
    with open(log, "w") as fh:
        result = subprocess.run(
            ["go", "build", f"-ldflags={target.ldflags}", "-o", out, *target.packages],
            cwd=module_dir,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise BuildError(target.name, log)
    (layout.bin / f".{target.name}.stamp").write_text(stamp + "\n")
    say(f"{target.name}: built in {time.monotonic() - started:.0f} s")
    return True


def build_pause(layout: Layout, say: Callable[[str], None]) -> Path:
    """Compile the static pause program and write its image tarball; return the tarball."""
    src = CLUSTER_SRC / "pause"
    stamp = stamp_of(src, L.PAUSE_IMAGE)
    tarball = layout.root / "images" / "pause.tar"
    if _up_to_date(layout, "pause", ("pause",), stamp) and tarball.exists():
        say("pause: up to date")
        return tarball
    if shutil.which("gcc") is None:
        raise MissingDependencyError("gcc", "apt-get install gcc libc6-dev")
    layout.bin.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["gcc", "-static", "-Os", "-s", "-o", str(layout.binary("pause")), str(src / "pause.c")],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise MissingDependencyError(
            "a static C toolchain", f"apt-get install gcc libc6-dev ({result.stderr.strip()})"
        )
    tarball.parent.mkdir(parents=True, exist_ok=True)
    tarball.write_bytes(
        docker_archive(layout.binary("pause").read_bytes(), L.PAUSE_IMAGE, ["/pause"])
    )
    (layout.bin / ".pause.stamp").write_text(stamp + "\n")
    say(f"pause: built {tarball}")
    return tarball


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def docker_archive(binary: bytes, tag: str, entrypoint: list[str]) -> bytes:
    """A one-layer docker-archive image whose only file is `entrypoint[0]` (deterministic bytes)."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.USTAR_FORMAT) as layer:
        _tar_member(layer, entrypoint[0].lstrip("/"), binary, 0o755)
    layer_bytes = layer_buf.getvalue()
    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        },
        sort_keys=True,
    ).encode()
    config_id = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [{"Config": f"{config_id}.json", "RepoTags": [tag], "Layers": [f"{diff_id}/layer.tar"]}]
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _tar_member(tar, f"{diff_id}/layer.tar", layer_bytes)
        _tar_member(tar, f"{config_id}.json", config)
        _tar_member(tar, "manifest.json", manifest)
    return out.getvalue()


def build_all(layout: Layout, say: Callable[[str], None]) -> None:
    """Every binary the cluster runs, plus the pause image.

    The Go builds run side by side: one `go build` leaves cores idle while it downloads
    modules, links, or waits on a long chain of packages, and another fills them. A failed
    build fails the whole only after the others have finished (their results are kept).
    """
    with ThreadPoolExecutor(max_workers=len(GO_TARGETS)) as pool:
        builds = [pool.submit(build_go, layout, target, say) for target in GO_TARGETS]
    failed = [error for b in builds if (error := b.exception()) is not None]
    if failed:
        raise failed[0]
    build_pause(layout, say)
