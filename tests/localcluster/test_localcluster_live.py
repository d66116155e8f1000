"""The running local cluster (`make cluster`): node Ready, DNS, metrics API, pods, no registry.

Skipped when `.cluster/kubeconfig` does not exist (the cluster is not up).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from needs_cluster import missing
from scalelab.localcluster import clean, probes
from scalelab.localcluster import layout as L
from scalelab.localcluster.layout import Layout

LAYOUT = Layout.default()


@pytest.fixture(autouse=True)
def cluster_up() -> None:
    if not LAYOUT.kubeconfig.exists():
        missing("local cluster not up (make cluster)")


def kubectl(*args: str, check: bool = True, stdin: str | None = None) -> str:
    argv = [str(LAYOUT.kubectl), f"--kubeconfig={LAYOUT.kubeconfig}", *args]
    result = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result.stdout


def test_node_is_ready_with_its_address() -> None:
    node = json.loads(kubectl("get", "node", L.NODE_NAME, "-o", "json"))
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == L.NODE_IP
    assert node["status"]["nodeInfo"]["kubeletVersion"] == L.KUBERNETES_VERSION


def test_dns_answers_cluster_names_through_the_service_and_nothing_else() -> None:
    rcode, addresses = probes.resolve(L.DNS_SERVICE_IP, "kubernetes.default.svc.cluster.local")
    assert rcode == 0 and addresses == [L.KUBERNETES_SERVICE_IP]
    rcode, addresses = probes.resolve(L.DNS_SERVICE_IP, "kube-dns.kube-system.svc.cluster.local")
    assert addresses == [L.DNS_SERVICE_IP]
    rcode, addresses = probes.resolve(L.DNS_SERVICE_IP, "deb.debian.org")
    assert addresses == [] and rcode != 0  # no `forward`: names outside are never looked up


def test_metrics_api_reports_the_node() -> None:
    doc = json.loads(kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{L.NODE_NAME}"))
    assert doc["metadata"]["name"] == L.NODE_NAME
    assert doc["usage"]["cpu"] and doc["usage"]["memory"]


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"lc-test-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _pod(name: str, image: str, policy: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "containers": [{"name": "c", "image": image, "imagePullPolicy": policy}],
                "terminationGracePeriodSeconds": 0,
            },
        }
    )


def _wait_pod(namespace: str, name: str, done: object, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    pod: dict[str, object] = {}
    while time.monotonic() < deadline:
        pod = json.loads(kubectl("-n", namespace, "get", "pod", name, "-o", "json"))
        if done(pod):  # type: ignore[operator]
            return pod
        time.sleep(1)
    raise AssertionError(f"pod {name} did not get there: {json.dumps(pod.get('status'))}")


def _waiting_reason(pod: dict) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return statuses[0].get("state", {}).get("waiting", {}).get("reason", "")


def test_pods_run_from_imported_images_and_a_missing_image_never_reaches_a_registry(
    namespace: str,
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=_pod("local", L.PAUSE_IMAGE, "Never"))
    kubectl(
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        stdin=_pod("missing", "docker.io/library/nope:1", "Always"),
    )
    running = _wait_pod(namespace, "local", lambda p: p["status"].get("phase") == "Running")
    assert running["status"]["podIP"].startswith("10.244.0.")  # type: ignore[index]
    failed = _wait_pod(
        namespace, "missing", lambda p: _waiting_reason(p) in ("ErrImagePull", "ImagePullBackOff")
    )
    events = kubectl("-n", namespace, "get", "events", "-o", "json")
    messages = [e["message"] for e in json.loads(events)["items"]]
    assert _waiting_reason(failed) in ("ErrImagePull", "ImagePullBackOff")
    assert any("127.0.0.1:10" in m for m in messages), messages


def test_check_clean_names_the_running_cluster() -> None:
    left = clean.leftovers(LAYOUT)
    assert any(f"{LAYOUT.bin}/kube-apiserver" in item for item in left)
    assert f"kubeconfig {LAYOUT.kubeconfig}" in left
