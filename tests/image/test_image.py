"""The component image as built by `make image`: a valid docker-archive whose programs run.

The root filesystem is unpacked and every command runs in it with chroot as uid 10001,
so what passes here is what a pod gets: the venv and scalelab, ONNX Runtime and the
Kafka client, the demo model, a Java runtime that starts the broker's jars, and a
Prometheus that accepts Kubernetes discovery."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request

import scalelab
from needs_cluster import missing

from .imagefs import Image, Rootfs

TAG = f"scalelab.local/scalelab:{scalelab.__version__}"


def test_archive_is_tagged_and_its_layers_match_the_config(image: Image) -> None:
    (entry,) = image.manifest
    assert entry["RepoTags"] == [TAG]
    diff_ids = image.config["rootfs"]["diff_ids"]
    assert len(diff_ids) == len(entry["Layers"]) == 4
    for name, diff_id in zip(entry["Layers"], diff_ids, strict=True):
        assert "sha256:" + hashlib.sha256(image.layer_bytes(name)).hexdigest() == diff_id


def test_config_runs_as_scalelab_with_the_venv_first_on_path(image: Image) -> None:
    config = image.config["config"]
    assert image.config["os"] == "linux"
    assert image.config["architecture"] == "amd64"
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["scalelab", "--help"]
    assert not config.get("Entrypoint")
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].split(":")[:2] == ["/opt/scalelab/venv/bin", "/opt/scalelab/bin"]
    assert env["HOME"] == "/tmp"
    assert env["SCALELAB_KAFKA_LIB"] == "/opt/scalelab/kafka/lib"
    assert env["SCALELAB_MODELS"] == "/opt/scalelab/models"


def test_skopeo_finds_the_tag_and_layers(image: Image) -> None:
    if not shutil.which("skopeo"):
        missing("skopeo is not installed (make cluster-deps)")
    # Naming the tag makes skopeo look it up in the archive's manifest.
    out = subprocess.run(
        ["skopeo", "inspect", f"docker-archive:{image.path}:{TAG}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    inspected = json.loads(out.stdout)
    assert inspected["Name"] == TAG.rsplit(":", 1)[0]
    assert inspected["Layers"] == image.config["rootfs"]["diff_ids"]
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")
    assert "HOME=/tmp" in inspected["Env"]


def test_user_10001_imports_scalelab_onnxruntime_and_kafka(rootfs: Rootfs) -> None:
    code = (
        "import os, scalelab, onnxruntime, confluent_kafka; "
        "print(os.getuid(), os.getgid(), scalelab.__version__, scalelab.__file__)"
    )
    result = rootfs.run(["python", "-c", code])
    assert result.returncode == 0, result.stderr
    uid, gid, version, path = result.stdout.split()
    assert (uid, gid, version) == ("10001", "10001", scalelab.__version__)
    assert path.startswith("/opt/scalelab/venv/lib/python3.11/site-packages/scalelab/")


def test_the_base_install_has_no_kubernetes_client_torch_or_dev_tools(rootfs: Rootfs) -> None:
    code = (
        "import importlib.util as u; "
        "print([m for m in ('kubernetes', 'torch', 'pytest', 'ruff', 'mypy') if u.find_spec(m)])"
    )
    result = rootfs.run(["python", "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_scalelab_cli_and_a_component_module_start(rootfs: Rootfs) -> None:
    cli = rootfs.run(["scalelab", "--help"])
    assert cli.returncode == 0, cli.stderr
    assert "run" in cli.stdout
    worker = rootfs.run(["python", "-m", "scalelab.components.worker", "--help"])
    assert worker.returncode == 0, worker.stderr


def test_the_demo_model_loads_in_onnxruntime(rootfs: Rootfs) -> None:
    assert (rootfs.root / "opt/scalelab/models/yolov8n.onnx").stat().st_size > 1_000_000
    code = (
        "import onnxruntime as o; "
        "s = o.InferenceSession('/opt/scalelab/models/yolov8n.onnx', "
        "providers=['CPUExecutionProvider']); print(s.get_inputs()[0].shape)"
    )
    result = rootfs.run(["python", "-c", code])
    assert result.returncode == 0, result.stderr
    assert "3" in result.stdout


def test_java_runs_the_kafka_tools_from_the_image_jars(rootfs: Rootfs) -> None:
    jars = {p.name for p in (rootfs.root / "opt/scalelab/kafka/lib").iterdir()}
    assert any(n.startswith("kafka_2.13-") for n in jars), sorted(jars)[:5]
    assert any(n.startswith("jmx_prometheus_javaagent-") for n in jars)
    version = rootfs.run(["java", "-version"])
    assert version.returncode == 0, version.stderr
    assert 'version "17.' in version.stderr
    # The broker role's jars on the image's JVM: kafka-storage's random-uuid, as the
    # KRaft StatefulSet formats its storage with it.
    uuid = rootfs.run(
        ["java", "-cp", "/opt/scalelab/kafka/lib/*", "kafka.tools.StorageTool", "random-uuid"]
    )
    assert uuid.returncode == 0, uuid.stderr[-2000:]
    assert len(uuid.stdout.strip()) == 22  # a base64 Kafka UUID


def test_prometheus_is_the_pinned_release(rootfs: Rootfs) -> None:
    result = rootfs.run(["/opt/scalelab/bin/prometheus", "--version"])
    assert result.returncode == 0, result.stderr
    assert "prometheus, version 3.9.1" in result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_prometheus(rootfs: Rootfs, name: str, config: str) -> tuple[subprocess.Popen[str], int]:
    (rootfs.root / "tmp" / name).write_text(config)
    port = free_port()
    argv = [
        "/opt/scalelab/bin/prometheus",
        f"--config.file=/tmp/{name}",
        f"--storage.tsdb.path=/tmp/{name}.data",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return rootfs.popen(argv), port


KUBERNETES_CONFIG = """
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        api_server: https://127.0.0.1:1
        namespaces: {names: [scalelab-test]}
"""


def test_prometheus_loads_kubernetes_discovery(rootfs: Rootfs) -> None:
    process, port = start_prometheus(rootfs, "k8s.yml", KUBERNETES_CONFIG)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[0][-3000:]
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/status/config", timeout=5
                ) as response:
                    loaded = json.load(response)["data"]["yaml"]
                break
            except OSError:
                assert time.monotonic() < deadline, "prometheus never answered"
                time.sleep(0.5)
        assert "kubernetes_sd_configs" in loaded
        assert "scalelab-test" in loaded
    finally:
        rootfs.stop(process)


def test_prometheus_has_no_other_cloud_discovery(rootfs: Rootfs) -> None:
    consul = "scrape_configs:\n  - job_name: c\n    consul_sd_configs: [{server: '127.0.0.1:1'}]\n"
    process, _ = start_prometheus(rootfs, "consul.yml", consul)
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        rootfs.stop(process)
    assert process.returncode != 0
    assert "consul_sd_configs" in output
