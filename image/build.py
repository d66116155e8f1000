"""Build the scalelab component image as a docker-archive, without Docker or a registry.

    sudo python3 image/build.py [--output build/image/scalelab-image.tar]

Reads image/image.toml (the one definition of the image), builds each layer only when the
hash of its inputs changed (cached under build/image/cache/), and writes a docker-archive
(manifest.json, the config, gzip-compressed layer tars) that `ctr images import`,
`k3s ctr images import`, `kind load image-archive` and `skopeo copy docker-archive:...`
read.  Needs root (debootstrap, chroot), debootstrap, and Go for Prometheus; only the
standard library of Python 3.11.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import glob
import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFINITION = HERE / "image.toml"
BUILD = REPO / "build" / "image"
CACHE = BUILD / "cache"
OUTPUT = BUILD / "scalelab-image.tar"
# Bumped when this script changes how a layer is made, so that old caches are not reused.
RECIPE = "3"
GZIP_LEVEL = 6


class ImageError(Exception):
    """A build step failed; the message says which and why."""


def log(message: str) -> None:
    print(f"image: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], **kwargs: object) -> None:
    """Run a command, failing the build with its output when it fails."""
    result = subprocess.run(argv, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise ImageError(f"{' '.join(argv[:6])} ... exited {result.returncode}")


KEPT: set[str] = set()
CACHED = re.compile(r"^(rootfs|deps|scalelab|prometheus|layer-\w+)-([0-9a-f]{16})\b")


def keep(key: str) -> str:
    """Mark a cache key as used by this build (prune_cache keeps it)."""
    KEPT.add(key)
    return key


def prune_cache() -> None:
    """Remove cached layers and trees that this build did not use (an older definition,
    older sources), so the cache does not grow with every change."""
    for path in CACHE.iterdir():
        match = CACHED.match(path.name)
        if match and match.group(2) not in KEPT:
            remove(path)


def digest(*parts: object) -> str:
    """A short stable hash of JSON-able parts, to key cached layers."""
    text = json.dumps([RECIPE, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tree_digest(root: Path, pattern: str = "**/*") -> list[tuple[str, str]]:
    """Content hashes of the files under root (relative name, sha256), sorted."""
    files = sorted(p for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts)
    return [(str(p.relative_to(root)), file_sha256(p)) for p in files]


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def version() -> str:
    text = (REPO / "src" / "scalelab" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not match:
        raise ImageError("no __version__ in src/scalelab/__init__.py")
    return match.group(1)


# --- the apt mirror -----------------------------------------------------------------------


def apt_mirror(suite: str) -> str:
    """The Debian mirror this machine's apt uses for `suite` ($SCALELAB_IMAGE_MIRROR wins)."""
    if os.environ.get("SCALELAB_IMAGE_MIRROR"):
        return os.environ["SCALELAB_IMAGE_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        entries = deb822_entries(text) if path.suffix == ".sources" else one_line_entries(text)
        for uri, suites in entries:
            if suite in suites and uri.rstrip("/").endswith("/debian"):
                return uri
    return "http://deb.debian.org/debian"


def deb822_entries(text: str) -> Iterable[tuple[str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
        if "deb" in fields.get("Types", "").split():
            for uri in fields.get("URIs", "").split():
                yield uri, fields.get("Suites", "").split()


def one_line_entries(text: str) -> Iterable[tuple[str, list[str]]]:
    for line in text.splitlines():
        match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
        if match:
            yield match.group(1), [match.group(2)]


# --- chroot --------------------------------------------------------------------------------


def chroot(
    root: Path,
    script: str,
    env: dict[str, str] | None = None,
    overlay: tuple[Path, Path, Path] | None = None,
) -> None:
    """Run a shell script as root inside root, with /proc and /dev mounted in a private
    mount namespace (nothing stays mounted when it ends).  With overlay (lower, upper,
    work), root is first mounted as that overlay, so every change lands in upper."""
    mounts = [f"mount -t proc proc {root}/proc", f"mount --rbind /dev {root}/dev"]
    if overlay:
        lower, upper, work = overlay
        options = f"lowerdir={lower},upperdir={upper},workdir={work}"
        mounts.insert(0, f"mount -t overlay overlay -o {options} {root}")
    inner = " && ".join([*mounts, f'exec chroot {root} /bin/sh -ec "$0"'])
    base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    run(["unshare", "--mount", "--fork", "sh", "-ec", inner, script], env={**base, **(env or {})})


# --- layer 1: the Debian root filesystem ---------------------------------------------------


def base_layer(spec: dict) -> Path:
    """The cached rootfs directory of layer 1 (built when missing)."""
    base, image = spec["base"], spec["image"]
    mirror = apt_mirror(base["suite"])
    key = digest("base", base, image["user"], image["uid"], image["gid"], mirror)
    rootfs = CACHE / f"rootfs-{keep(key)}"
    if (rootfs / ".complete").exists():
        log(f"layer base: up to date ({rootfs.name})")
        return rootfs
    for tool in ("debootstrap", "unshare", "chroot"):
        if not shutil.which(tool):
            raise ImageError(f"{tool} is missing: apt-get install debootstrap util-linux")
    work = rootfs.with_name(rootfs.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    log(f"layer base: debootstrap {base['suite']} from {mirror} (about a minute)")
    run(
        [
            "debootstrap",
            f"--variant={base['variant']}",
            f"--include={','.join(base['packages'])}",
            base["suite"],
            str(work),
            mirror,
        ],
        stdout=subprocess.DEVNULL,
    )
    add_user(work, image)
    slim(work)
    (work / ".complete").touch()
    shutil.rmtree(rootfs, ignore_errors=True)
    work.rename(rootfs)
    return rootfs


def add_user(root: Path, image: dict) -> None:
    name, uid, gid = image["user"], image["uid"], image["gid"]
    chroot(
        root,
        f"groupadd --gid {gid} {name} && useradd --uid {uid} --gid {gid} --no-create-home "
        f"--home-dir /tmp --shell /usr/sbin/nologin {name}",
    )


def slim(root: Path) -> None:
    """Remove what a container never reads: apt lists and caches, logs, documentation
    (copyright files stay), and the build machine's resolv.conf and hostname."""
    chroot(root, "apt-get clean")
    for pattern in (
        "var/lib/apt/lists/*",
        "var/cache/apt/*",
        "var/cache/debconf/*-old",
        "var/log/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "tmp/*",
        "root/.cache",
    ):
        for name in glob.glob(str(root / pattern)):
            remove(Path(name))
    for path in (root / "usr/share/doc").rglob("*"):
        if path.is_file() and path.name != "copyright":
            path.unlink()
    for name in ("etc/resolv.conf", "etc/hostname"):
        if (root / name).exists() or (root / name).is_symlink():
            (root / name).unlink()
            (root / name).write_text("")


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


# --- layers 2 and 3: the venv, scalelab and the models ------------------------------------


def python_deps(spec: dict, rootfs: Path, base_key: str) -> tuple[Path, str]:
    """Layer 2's tree: a copy of the rootfs with the venv and scalelab's runtime
    dependencies from PyPI (no extras), test directories pruned; and its key."""
    py = spec["python"]
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    key = digest("deps", base_key, py["venv"], py["prune"], deps)
    work = CACHE / f"deps-{keep(key)}"
    if (work / ".complete").exists():
        log(f"layer deps: up to date ({work.name})")
        return work, key
    shutil.rmtree(work, ignore_errors=True)
    log("layer deps: copying the rootfs")
    run(["cp", "-a", str(rootfs), str(work)])
    venv = py["venv"]
    log(f"layer deps: venv {venv} with scalelab's dependencies from PyPI (minutes)")
    (work / "tmp" / "build").mkdir()
    env = pip_env(work / "tmp" / "build")
    resolv = work / "etc" / "resolv.conf"
    shutil.copy("/etc/resolv.conf", resolv)
    try:
        chroot(
            work,
            f"python3 -m venv {venv} && {venv}/bin/pip install --no-input --quiet "
            + " ".join(shlex.quote(d) for d in deps),
            env=env,
        )
    finally:
        resolv.write_text("")
        clean_tmp(work)
    site = next((work / venv.strip("/") / "lib").glob("python3*/site-packages"))
    for pattern in py["prune"]:
        for path in list(site.glob(pattern)):
            if path.is_dir():
                shutil.rmtree(path)
    (work / ".complete").touch()
    return work, key


def python_app(spec: dict, deps_root: Path, deps_key: str) -> tuple[Path, str]:
    """Layer 3's tree: what installing scalelab's wheel (no deps) and building the demo
    models add on top of layer 2, captured as the upper directory of an overlay mount;
    and its key."""
    py = spec["python"]
    sources = [tree_digest(REPO / "src"), file_sha256(REPO / "pyproject.toml")]
    key = digest("scalelab", deps_key, py, sources)
    upper = CACHE / f"scalelab-{keep(key)}"
    if (upper / ".complete").exists():
        log(f"layer scalelab: up to date ({upper.name})")
        return upper, key
    shutil.rmtree(upper, ignore_errors=True)
    scratch = CACHE / f"scalelab-{key}.scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    (upper / "tmp" / "build").mkdir(parents=True)
    (scratch / "work").mkdir(parents=True)
    (scratch / "merged").mkdir()
    wheel = build_wheel(upper / "tmp" / "build")
    venv, models = py["venv"], py["models_dir"]
    log(f"layer scalelab: {wheel.name} and models {', '.join(py['models'])}")
    steps = [f"{venv}/bin/pip install --no-deps --no-input --quiet /tmp/build/{wheel.name}"]
    steps.append(f"mkdir -p {models}")
    steps += [f"{venv}/bin/scalelab model build {m} -o {models}/{m}.onnx" for m in py["models"]]
    overlay = (deps_root, upper, scratch / "work")
    try:
        chroot(scratch / "merged", " && ".join(steps), overlay=overlay)
    finally:
        clean_tmp(upper)
        shutil.rmtree(scratch, ignore_errors=True)
    (upper / ".complete").touch()
    return upper, key


def clean_tmp(root: Path) -> None:
    for path in glob.glob(str(root / "tmp" / "*")) + [str(root / "root" / ".cache")]:
        if os.path.lexists(path):
            remove(Path(path))


def build_wheel(into: Path) -> Path:
    """A wheel of this checkout, built by the running Python's pip (build isolation)."""
    into.mkdir(parents=True, exist_ok=True)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-cache-dir",
            "--wheel-dir",
            str(into),
            str(REPO),
        ],
        stdout=subprocess.DEVNULL,
    )
    wheels = sorted(into.glob("scalelab-*.whl"))
    if not wheels:
        raise ImageError("pip wheel wrote no scalelab wheel")
    return wheels[-1]


def pip_env(scratch: Path) -> dict[str, str]:
    """pip's settings inside the chroot: the host's index, proxy and CA bundle (an
    intercepting proxy's CA is in the host's bundle, not in pip's certifi); scratch is
    the chroot's /tmp/build."""
    env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1", "HOME": "/root"}
    for name, value in os.environ.items():
        if name.lower().endswith("_proxy") or name in (
            "PIP_INDEX_URL",
            "PIP_EXTRA_INDEX_URL",
            "PIP_DEFAULT_TIMEOUT",
            "PIP_TRUSTED_HOST",
        ):
            env[name] = value
    bundle = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(bundle).is_file():
        shutil.copy(bundle, scratch / "ca.crt")
        env["PIP_CERT"] = "/tmp/build/ca.crt"
    return env


# --- layer 4: files from the checkout ---------------------------------------------------------


def file_sources(spec: dict, prometheus: Path) -> list[tuple[Path, str]]:
    """(source file, path in the image) for layer 4; missing sources are left out."""
    files = spec["files"]
    pairs = [(prometheus, files["prometheus"])]
    for entry in files["copy"]:
        source = REPO / entry["from"]
        if not source.is_dir():
            log(f"layer files: {entry['from']} does not exist, left out")
            continue
        for path in sorted(source.glob(entry["glob"])):
            if path.is_file() and not path.name.startswith("original-"):
                pairs.append((path, f"{entry['to']}/{path.name}"))
    return pairs


def build_prometheus() -> Path:
    """The pinned Prometheus with only Kubernetes (and file, HTTP) discovery, rebuilt when
    its pin or plugin list changed."""
    recipe = HERE / "prometheus"
    key = digest("prometheus", tree_digest(recipe))
    binary = CACHE / f"prometheus-{keep(key)}"
    if binary.exists():
        log(f"prometheus: up to date ({binary.name})")
        return binary
    log("prometheus: building from its Go module (several minutes the first time)")
    source = CACHE / "prometheus-src"
    run([str(recipe / "build.sh"), str(binary), str(source)])
    shutil.rmtree(source, ignore_errors=True)
    return binary


# --- layer tars and the archive ---------------------------------------------------------------


class Layer:
    """A gzip-compressed layer tar in the cache, with the digests the archive needs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        meta = json.loads(path.with_suffix(".json").read_text())
        self.diff_id: str = meta["diff_id"]
        self.blob: str = meta["blob"]
        self.comment: str = meta["comment"]


class _HashingWriter:
    """Forwards writes to a file while hashing them (the uncompressed diff_id)."""

    def __init__(self, sink: gzip.GzipFile) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.sink.write(data)


def write_layer(
    name: str, key: str, comment: str, fill: Callable[[tarfile.TarFile], None]
) -> Layer:
    """The cached layer `name-key.tar.gz`, written by fill(tar) when missing."""
    path = CACHE / f"layer-{name}-{keep(key)}.tar.gz"
    if path.exists() and path.with_suffix(".json").exists():
        return Layer(path)
    log(f"layer {name}: writing {path.name}")
    tmp = path.with_name(path.name + ".tmp")
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz,
    ):
        writer = _HashingWriter(gz)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            fill(tar)
    meta = {
        "diff_id": "sha256:" + writer.sha.hexdigest(),
        "blob": file_sha256(tmp),
        "comment": comment,
    }
    path.with_suffix(".json").write_text(json.dumps(meta))
    tmp.rename(path)
    return Layer(path)


def normalize(owner_root: bool) -> Callable[[tarfile.TarInfo], tarfile.TarInfo | None]:
    """A tar filter: no host user names, no device nodes or /proc, /sys, /dev contents;
    with owner_root, files owned by root and world-readable."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        top = info.name.split("/", 1)
        if top[0] in ("dev", "proc", "sys") and len(top) > 1:
            return None
        if info.name == ".complete" or info.isdev():
            return None
        info.uname = info.gname = ""
        if owner_root:
            info.uid = info.gid = 0
            info.mode |= 0o444 | (0o111 if info.isdir() or info.mode & 0o100 else 0)
        return info

    return keep


def add_tree(tar: tarfile.TarFile, root: Path, names: Iterable[str] | None = None) -> None:
    """Add root's entries (or the given relative paths, with their parent directories)."""
    keep = normalize(owner_root=False)
    if names is None:
        for name in sorted(os.listdir(root)):
            tar.add(root / name, arcname=name, filter=keep)
        return
    parents: set[str] = set()
    for name in names:
        parts = Path(name).parts
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in parents:
                parents.add(parent)
                tar.add(root / parent, arcname=parent, recursive=False, filter=keep)
        tar.add(root / name, arcname=name, filter=keep)


def add_files(tar: tarfile.TarFile, pairs: list[tuple[Path, str]]) -> None:
    keep = normalize(owner_root=True)
    dirs: set[str] = set()
    for source, target in pairs:
        parts = target.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in dirs:
                dirs.add(parent)
                info = tarfile.TarInfo(parent)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                tar.addfile(info)
        tar.add(source, arcname="/".join(parts), recursive=False, filter=keep)


def write_archive(spec: dict, layers: list[Layer], tag: str, output: Path) -> bool:
    """Write the docker-archive unless the one there already holds these layers and
    config; return whether it was written."""
    image = spec["image"]
    created = datetime.datetime.fromtimestamp(
        int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or time.time(), datetime.UTC
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{image['uid']}:{image['gid']}",
            "Env": image["env"],
            "Entrypoint": image["entrypoint"] or None,
            "Cmd": image["cmd"],
            "WorkingDir": image["workdir"],
            "Labels": {
                "org.opencontainers.image.title": "scalelab",
                "org.opencontainers.image.version": tag.rsplit(":", 1)[1],
                "io.scalelab.definition": digest(spec),
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": created, "created_by": layer.comment} for layer in layers],
    }
    stamp = output.with_suffix(".key")
    key = digest(tag, [layer.blob for layer in layers], {**config, "created": None})
    if output.exists() and stamp.exists() and stamp.read_text() == key:
        log(f"{output.relative_to(REPO)}: up to date")
        return False
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [
        {
            "Config": config_name,
            "RepoTags": [tag],
            "Layers": [f"{layer.blob}/layer.tar" for layer in layers],
        }
    ]
    tmp = output.with_name(output.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, config_name, config_bytes)
        for layer in layers:
            tar.add(
                layer.path, arcname=f"{layer.blob}/layer.tar", filter=normalize(owner_root=True)
            )
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        add_bytes(
            tar,
            "repositories",
            json.dumps({tag.rsplit(":", 1)[0]: {tag.rsplit(":", 1)[1]: layers[-1].blob}}).encode(),
        )
    tmp.rename(output)
    stamp.write_text(key)
    return True


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


# --- the build -----------------------------------------------------------------------------


def python_layers(spec: dict) -> list[Layer]:
    """Layers 1 to 3: the Debian rootfs, the venv with the dependencies, scalelab."""
    rootfs = base_layer(spec)
    base_key = rootfs.name.removeprefix("rootfs-")
    base = write_layer(
        "base",
        base_key,
        f"debootstrap {spec['base']['suite']} "
        f"{' '.join(spec['base']['packages'])}; user {spec['image']['uid']}",
        lambda tar: add_tree(tar, rootfs),
    )
    py = spec["python"]
    paths = [py["venv"].strip("/"), py["models_dir"].strip("/")]
    deps_root, deps_key = python_deps(spec, rootfs, base_key)
    deps = write_layer(
        "deps",
        deps_key,
        f"venv {py['venv']} with scalelab's dependencies",
        lambda tar: add_tree(tar, deps_root, paths[:1]),
    )
    app_root, app_key = python_app(spec, deps_root, deps_key)
    app = write_layer(
        "scalelab",
        app_key,
        f"scalelab {version()} into the venv; models {', '.join(py['models'])}",
        lambda tar: add_tree(tar, app_root, [p for p in paths if (app_root / p).exists()]),
    )
    return [base, deps, app]


def build(output: Path) -> Path:
    if os.geteuid() != 0:
        raise ImageError("building the image needs root (debootstrap, chroot): run it with sudo")
    spec = tomllib.loads(DEFINITION.read_text())
    tag = f"{spec['image']['repository']}:{version()}"
    started = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    # Go compiles while debootstrap and pip mostly wait on the network.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        prometheus_job = pool.submit(build_prometheus)
        layers = python_layers(spec)
        prometheus = prometheus_job.result()
    pairs = file_sources(spec, prometheus)
    files_key = digest(
        "files", [(str(s), t, s.stat().st_size, s.stat().st_mtime_ns) for s, t in pairs]
    )
    files = write_layer(
        "files", files_key, "prometheus, kafka/lib, flink jars", lambda tar: add_files(tar, pairs)
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    written = write_archive(spec, [*layers, files], tag, output)
    prune_cache()
    took = time.monotonic() - started
    size = output.stat().st_size / 1e6
    log(f"{'wrote' if written else 'kept'} {output} ({tag}, {size:.0f} MB) in {took:.0f} s")
    return output


def set_cache(path: Path) -> None:
    global CACHE
    CACHE = path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--cache", type=Path, help=f"where layers are cached (default: {CACHE})")
    args = parser.parse_args()
    if args.cache:
        set_cache(args.cache.resolve())
    try:
        build(args.output.resolve())
    except ImageError as error:
        log(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
