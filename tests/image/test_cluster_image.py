"""The image imported into the local cluster (make cluster; make image) runs as a pod.

Skips, saying why, when the archive is not built or the local cluster is not up."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

import scalelab
from needs_cluster import missing

from .imagefs import Image

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / ".cluster"
KUBECTL = CLUSTER / "bin" / "kubectl"
SOCKET = CLUSTER / "run" / "containerd.sock"
TAG = f"scalelab.local/scalelab:{scalelab.__version__}"


def kubectl(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    result = subprocess.run(
        [str(KUBECTL), f"--kubeconfig={CLUSTER / 'kubeconfig'}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def ctr(*args: str) -> str:
    binary = shutil.which("ctr") or str(CLUSTER / "bin" / "ctr")
    result = subprocess.run(
        [binary, "--address", str(SOCKET), "-n", "k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"ctr {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def cluster_with_image(image: Image) -> None:
    """The local cluster, with the built archive imported as `make image` does."""
    if not (CLUSTER / "kubeconfig").exists() or not KUBECTL.exists() or not SOCKET.exists():
        missing("the local cluster is not up (make cluster)")
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    ready = [c["status"] for n in nodes for c in n["status"]["conditions"] if c["type"] == "Ready"]
    if ready != ["True"]:
        missing(f"the local cluster's node is not Ready ({ready})")
    if TAG not in ctr("images", "ls", "-q").split():
        ctr("images", "import", str(image.path))
    assert TAG in ctr("images", "ls", "-q").split()


def test_a_pod_from_the_imported_image_runs_scalelab(cluster_with_image: None) -> None:
    namespace = f"scalelab-image-{uuid.uuid4().hex[:8]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "scalelab-help", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True},
            "containers": [
                {
                    "name": "scalelab",
                    "image": TAG,
                    "imagePullPolicy": "Never",
                    # No command: the image's own (scalelab --help), as its config says.
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }
    kubectl("create", "namespace", namespace)
    try:
        kubectl("apply", "-f", "-", stdin=json.dumps(pod))
        kubectl(
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            "pod/scalelab-help",
            "-n",
            namespace,
            "--timeout=300s",
            timeout=330,
        )
        status = json.loads(kubectl("get", "pod", "scalelab-help", "-n", namespace, "-o", "json"))
        terminated = status["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == 0
        assert "Usage" in kubectl("logs", "scalelab-help", "-n", namespace)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")
