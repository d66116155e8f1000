"""Apply, wait, delete and exec against the client's real API surface (autospec'd mocks, fakes)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

pytest.importorskip("kubernetes")

from kubernetes.client import CoreV1Api  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from kubernetes.dynamic import DynamicClient  # noqa: E402
from kubernetes.dynamic.exceptions import NotFoundError  # noqa: E402
from kubernetes.stream.ws_client import WSClient  # noqa: E402
from test_kubernetes_fakes import FakeDynamic, FakeInstance, pod  # noqa: E402

from scalelab.errors import ComponentError  # noqa: E402
from scalelab.platform.kubernetes import readiness, teardown  # noqa: E402
from scalelab.platform.kubernetes.client import Cluster, connect  # noqa: E402
from scalelab.platform.kubernetes.errors import ApiError, ClusterUnreachableError  # noqa: E402
from scalelab.platform.kubernetes.pods import PodOps  # noqa: E402

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "workers", "namespace": "ns", "generation": 2},
    "spec": {"replicas": 2},
}


def autospec_cluster() -> tuple[Cluster, Any]:
    dynamic = mock.create_autospec(DynamicClient, instance=True)
    return Cluster(dynamic, None), dynamic


def with_status(obj: dict[str, Any], **status: Any) -> FakeInstance:
    return FakeInstance({**obj, "status": status})


def test_apply_is_server_side_apply_owned_by_scalelab() -> None:
    cluster, dynamic = autospec_cluster()
    dynamic.server_side_apply.return_value = FakeInstance(DEPLOYMENT)
    assert cluster.apply(DEPLOYMENT) == DEPLOYMENT
    dynamic.resources.get.assert_called_with(api_version="apps/v1", kind="Deployment")
    dynamic.server_side_apply.assert_called_once_with(
        dynamic.resources.get.return_value,
        body=DEPLOYMENT,
        namespace="ns",
        field_manager="scalelab",
        force_conflicts=True,
    )


def test_apply_errors_name_the_object() -> None:
    cluster, dynamic = autospec_cluster()
    dynamic.server_side_apply.side_effect = ApiException(status=422, reason="Unprocessable")
    with pytest.raises(ApiError, match="apply Deployment ns/workers: 422"):
        cluster.apply(DEPLOYMENT)


def test_wait_reads_then_watches_until_ready() -> None:
    cluster, dynamic = autospec_cluster()
    dynamic.get.return_value = with_status(DEPLOYMENT, observedGeneration=1)
    ready = {
        **DEPLOYMENT,
        "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2},
    }
    dynamic.watch.return_value = iter(
        [
            {"type": "MODIFIED", "raw_object": {**DEPLOYMENT, "status": {"observedGeneration": 2}}},
            {"type": "MODIFIED", "raw_object": ready},
        ]
    )
    assert cluster.wait_for(DEPLOYMENT, readiness.deployment_ready, 5) == ready
    resource = dynamic.resources.get.return_value
    dynamic.watch.assert_called_once_with(resource, namespace="ns", name="workers", timeout=5)


def test_wait_times_out_with_the_status() -> None:
    cluster, dynamic = autospec_cluster()
    kafka = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "Kafka",
        "metadata": {"name": "scalelab", "namespace": "ns", "generation": 1},
    }
    dynamic.get.return_value = with_status(
        kafka, conditions=[{"type": "NotReady", "status": "True", "message": "pods pending"}]
    )
    dynamic.watch.return_value = iter([])
    with pytest.raises(ComponentError, match="NotReady=True pods pending"):
        cluster.wait_for(kafka, readiness.strimzi_ready, 0.01)


def test_wait_stops_when_the_health_check_fails() -> None:
    cluster, dynamic = autospec_cluster()
    dynamic.get.side_effect = NotFoundError(ApiException(status=404))
    check = mock.Mock(side_effect=ComponentError("worker", "ImagePullBackOff"))
    with pytest.raises(ComponentError, match="ImagePullBackOff"):
        cluster.wait_for(DEPLOYMENT, readiness.deployment_ready, 60, check=check)


def test_delete_by_label_deletes_each_object_in_the_background() -> None:
    cluster, dynamic = autospec_cluster()
    items = [{"metadata": {"name": n, "namespace": "ns"}} for n in ("a", "b")]
    dynamic.get.return_value = FakeInstance({"items": items})
    dynamic.delete.side_effect = [FakeInstance({}), NotFoundError(ApiException(status=404))]
    assert cluster.delete_labelled("v1", "ConfigMap", "ns", "scalelab.io/run-id=r") == 2
    dynamic.get.assert_called_once_with(
        dynamic.resources.get.return_value, namespace="ns", label_selector="scalelab.io/run-id=r"
    )
    for call, name in zip(dynamic.delete.call_args_list, ("a", "b"), strict=True):
        assert call.kwargs == {
            "name": name,
            "namespace": "ns",
            "body": {"propagationPolicy": "Background"},
        }


def test_teardown_deletes_in_order_and_waits() -> None:
    fake = FakeDynamic(controller=False)
    run = {"scalelab.io/run-id": "r"}
    for api, kind, ns in (
        ("v1", "Namespace", None),
        ("apps/v1", "Deployment", "ns"),
        ("kafka.strimzi.io/v1beta2", "Kafka", "ns"),
        ("kafka.strimzi.io/v1beta2", "KafkaTopic", "ns"),
        ("v1", "ConfigMap", "ns"),
        ("v1", "ConfigMap", "other"),
    ):
        meta = {"name": f"{kind.lower()}-x", "labels": dict(run)}
        fake.put(
            {
                "apiVersion": api,
                "kind": kind,
                "metadata": {**meta, **({"namespace": ns} if ns else {})},
            }
        )
    fake.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "users", "namespace": "ns", "labels": {}},
        }
    )
    errors = teardown.delete_run(Cluster(fake, None), "ns", "r", timeout=1)
    assert errors == []
    order = [kind for verb, kind, _ in fake.calls if verb == "delete"]
    assert order == ["Deployment", "KafkaTopic", "Kafka", "ConfigMap", "Namespace"]
    assert [o["metadata"]["name"] for o in fake.find("ConfigMap")] == ["configmap-x", "users"]


def test_connect_without_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnreachableError, match="Nothing was applied"):
        connect(str(tmp_path / "missing"), None)


def test_connect_to_a_cluster_that_does_not_answer(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG.replace("{server}", "https://127.0.0.1:9"))
    with pytest.raises(ClusterUnreachableError) as caught:
        connect(str(config), "dead", timeout=2)
    assert caught.value.server == "https://127.0.0.1:9"


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: dead, cluster: {server: "{server}", insecure-skip-tls-verify: true}}]
users: [{name: me, user: {token: x}}]
contexts: [{name: dead, context: {cluster: dead, user: me}}]
current-context: dead
"""


def fake_ws(stdout: str, code: int) -> Any:
    ws = mock.create_autospec(WSClient, instance=True)
    ws.read_stdout.return_value = stdout
    type(ws).returncode = mock.PropertyMock(return_value=code)
    return ws


@pytest.fixture(scope="module")
def shared_core() -> Any:
    """CoreV1Api autospec'd once (it has hundreds of methods); reset for every test."""
    return mock.create_autospec(CoreV1Api, instance=True)


@pytest.fixture
def core(shared_core: Any) -> Any:
    shared_core.reset_mock(return_value=True, side_effect=True)
    return shared_core


def test_read_file_goes_through_exec_base64(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, core: Any
) -> None:
    payload = bytes(range(256)) * 10
    stream = mock.Mock(return_value=fake_ws(base64.b64encode(payload).decode(), 0))
    monkeypatch.setattr("kubernetes.stream.stream", stream)
    ops = PodOps(core, "ns")
    assert ops.copy_file("tracker-1", "tracker", "/data/qos.parquet", tmp_path / "qos.parquet")
    assert (tmp_path / "qos.parquet").read_bytes() == payload
    args, kwargs = stream.call_args
    assert args[:3] == (core.connect_get_namespaced_pod_exec, "tracker-1", "ns")
    assert kwargs["container"] == "tracker" and kwargs["command"][-1] == "/data/qos.parquet"


def test_missing_files_and_exit_codes(monkeypatch: pytest.MonkeyPatch, core: Any) -> None:
    results = iter([fake_ws("", 1), fake_ws(base64.b64encode(b"0\n").decode(), 0)])
    monkeypatch.setattr(
        "kubernetes.stream.stream", mock.Mock(side_effect=lambda *a, **k: next(results))
    )
    ops = PodOps(core, "ns")
    assert ops.exit_code("p", "producer", "/data") is None
    assert ops.exit_code("p", "producer", "/data") == 0


def test_logs_use_the_core_api(core: Any) -> None:
    core.read_namespaced_pod_log.return_value = "line\n"
    assert PodOps(core, "ns").logs("p", "worker", previous=True, tail=5) == "line\n"
    core.read_namespaced_pod_log.assert_called_once_with(
        "p", "ns", container="worker", previous=True, tail_lines=5
    )


def test_pod_readiness_and_problems() -> None:
    from scalelab.platform.kubernetes.health import pending_reason, pod_problem

    healthy = pod("w", "ns", {})
    assert readiness.pod_ready(healthy) and pod_problem(healthy) is None
    crashed = pod("w", "ns", {})
    crashed["status"]["containerStatuses"][0].update(
        restartCount=1, lastState={"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    )
    assert pod_problem(crashed) == "exited with code 137 OOMKilled"
    pulling = pod("w", "ns", {}, ready=False)
    pulling["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "ImagePullBackOff", "message": "no such image"}
    }
    assert pod_problem(pulling) == "ImagePullBackOff: no such image"
    assert pending_reason(pulling) == "waiting: ImagePullBackOff no such image"
