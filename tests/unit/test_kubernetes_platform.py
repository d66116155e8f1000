"""The platform as the core drives it, on a fake cluster (same API surface as the real client).

Port-forwards are real (PortForward over loopback) but open onto a local
fake Prometheus instead of a pod; pod exec is replaced at the PodOps level.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

pytest.importorskip("kubernetes")

from kubernetes.client import CoreV1Api  # noqa: E402
from test_kubernetes_fakes import FakeDynamic, node, pod  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from scalelab.errors import ComponentError  # noqa: E402
from scalelab.platform.base import ComponentLaunch  # noqa: E402
from scalelab.platform.kubernetes import platform as platform_module  # noqa: E402
from scalelab.platform.kubernetes import readiness  # noqa: E402
from scalelab.platform.kubernetes.client import Cluster  # noqa: E402
from scalelab.platform.kubernetes.config import KubernetesSpec  # noqa: E402
from scalelab.platform.kubernetes.errors import (  # noqa: E402
    ClusterUnreachableError,
    NamespaceBusyError,
    PrerequisiteError,
)
from scalelab.platform.kubernetes.platform import KubernetesPlatform  # noqa: E402
from scalelab.platform.ports import free_port  # noqa: E402
from scalelab.platform.registry import make_platform  # noqa: E402
from scalelab.spec.loader import load_spec  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes.yaml"
RUN_ID = "20260101T000000Z-kubernetes-quickstart-abc123"
NS = "scalelab-quickstart"


class FakePrometheus(ThreadingHTTPServer):
    """Answers /-/ready and /api/v1/targets with every component of the run up."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.components = {"kafka": 1, "tracker": 1, "worker": 2, "producer": 1}


class Handler(BaseHTTPRequestHandler):
    server: FakePrometheus

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        targets = [
            {"labels": {"run_id": RUN_ID, "component": c}, "health": "up"}
            for c, n in self.server.components.items()
            for _ in range(n)
        ]
        body = json.dumps({"data": {"activeTargets": targets}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def core() -> Any:
    """CoreV1Api autospec'd once (it has hundreds of methods)."""
    api = mock.create_autospec(CoreV1Api, instance=True)
    api.read_namespaced_pod_log.return_value = "last words\n"
    return api


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, prometheus: FakePrometheus, core: Any) -> FakeDynamic:
    dynamic = FakeDynamic()
    dynamic.put(pod("prometheus-stack-0", "monitoring", {"app.kubernetes.io/name": "prometheus"}))
    for name in ("cp", "n1", "n2", "n3"):
        dynamic.put(node(name, control_plane=name == "cp"))
    monkeypatch.setattr(platform_module, "connect", lambda *a: Cluster(dynamic, core, "fake"))

    def opener(core: Any, namespace: str, pod_name: str, port: int) -> Any:
        target = prometheus.server_address[1] if namespace == "monitoring" else free_port()
        return lambda: socket.create_connection(("127.0.0.1", target))

    monkeypatch.setattr(platform_module, "pod_opener", opener)
    settings = KubernetesSpec.model_validate(
        {"kafka": {"client_port": free_port()}, "node_roles": {"producer_nodes": ["n1"]}}
    )
    monkeypatch.setattr(
        "scalelab.platform.kubernetes.plan.kubernetes_settings", lambda spec: settings
    )
    return dynamic


@pytest.fixture
def platform(fake: FakeDynamic, tmp_path: Path) -> Iterator[KubernetesPlatform]:
    spec = load_spec(EXAMPLE)
    made = make_platform(spec, RUN_ID, tmp_path, tmp_path / "state", False)
    assert isinstance(made, KubernetesPlatform)
    made.pods = made.tracker.pods = mock.Mock(wraps=made.pods)
    made.pods.copy_file = mock.Mock(return_value=False)  # nothing written in the pods yet
    made.pods.exit_code = mock.Mock(return_value=None)
    made.pods.signal = mock.Mock()
    yield made
    for forward in made.forwards:
        forward.close()


def launch(name: str, role: str, *extra: str) -> ComponentLaunch:
    return ComponentLaunch(
        name,
        role,
        f"scalelab.components.{role}",
        [
            "--spec",
            "/x/spec.yaml",
            "--bootstrap",
            "127.0.0.1:1",
            "--run-id",
            RUN_ID,
            "--run-dir",
            "/x",
            *extra,
        ],
    )


def start_all(platform: KubernetesPlatform) -> None:
    platform.start_infrastructure()
    platform.start_component(launch("tracker", "tracker"))
    for index in range(2):
        platform.start_component(
            launch(f"worker-{index}", "worker", "--name", f"worker-{index}", "--model", "/x/m.onnx")
        )
    platform.start_component(launch("producer", "producer"))
    platform.mark_may_finish("producer")


def test_infrastructure_is_kafka_and_the_clusters_prometheus(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    endpoints = platform.start_infrastructure()
    assert endpoints.bootstrap == f"127.0.0.1:{platform.plan.settings.kafka.client_port}"
    assert endpoints.prometheus_url.startswith("http://127.0.0.1:")
    assert endpoints.extra["cluster_bootstrap"] == f"scalelab-kafka-bootstrap.{NS}.svc:9092"
    applied = [kind for verb, kind, _ in fake.calls if verb == "apply"]
    assert applied[:4] == ["Namespace", "ConfigMap", "ConfigMap", "KafkaNodePool"]
    assert applied.count("KafkaTopic") == 3
    roles = {
        n["metadata"]["name"]: n["metadata"]["labels"].get("scalelab.io/role")
        for n in fake.find("Node")
    }
    assert roles == {"cp": None, "n1": "producer", "n2": "consumer", "n3": "consumer"}


def test_components_become_one_object_set_each(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    start_all(platform)
    deployments = [
        name for verb, kind, name in fake.calls if verb == "apply" and kind in ("Deployment", "Job")
    ]
    assert deployments == ["tracker", "workers", "producer"]
    workers = fake.find("Deployment", "workers")[0]["spec"]["template"]["spec"]["containers"][0]
    assert workers["args"][-4:] == [
        "--name",
        "$(POD_NAME)",
        "--model",
        "/opt/scalelab/models/yolov8n.onnx",
    ]
    platform.check_health()
    platform.wait_scraped(5)
    assert platform.component_pids() == {}
    assert platform.is_running("producer")


def test_a_crashed_pod_fails_the_run_with_its_log(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    start_all(platform)
    worker = [p for p in fake.find("Pod") if p["metadata"]["name"].startswith("workers-")][1]
    worker["status"]["containerStatuses"][0].update(
        restartCount=1, lastState={"terminated": {"exitCode": 1, "reason": "Error"}}
    )
    platform.tracker.last_check = 0
    with pytest.raises(ComponentError, match="exited with code 1 Error") as caught:
        platform.check_health()
    assert caught.value.log_tail == "last words\n"


def test_the_producer_finishing_copies_its_files(
    platform: KubernetesPlatform, fake: FakeDynamic, tmp_path: Path
) -> None:
    start_all(platform)
    producer = next(p for p in fake.find("Pod") if p["metadata"]["name"].startswith("producer"))
    producer["status"]["conditions"][0]["status"] = "False"
    platform.pods.exit_code = mock.Mock(return_value=0)
    platform.pods.copy_file = mock.Mock(return_value=True)
    platform.pods.signal = mock.Mock()
    assert not platform.is_running("producer")
    copied = [c.args[2] for c in platform.pods.copy_file.call_args_list]
    assert copied == ["/data/producer-start.json", "/data/producer.json"]
    platform.pods.signal.assert_called_once_with(
        producer["metadata"]["name"], "producer", "SIGUSR2"
    )


def test_a_producer_exiting_badly_fails_the_run(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    start_all(platform)
    producer = next(p for p in fake.find("Pod") if p["metadata"]["name"].startswith("producer"))
    producer["status"]["conditions"][0]["status"] = "False"
    platform.pods.exit_code = mock.Mock(return_value=None)
    assert platform.is_running("producer")  # not ready, no exit yet: a flaky probe
    platform.pods.exit_code = mock.Mock(return_value=2)
    with pytest.raises(ComponentError, match="exited with code 2"):
        platform.is_running("producer")


def test_stopping_the_tracker_drains_and_copies_qos(platform: KubernetesPlatform) -> None:
    start_all(platform)
    platform.pods.signal = mock.Mock()
    platform.pods.exit_code = mock.Mock(side_effect=[None, 0])
    platform.pods.copy_file = mock.Mock(return_value=True)
    assert platform.stop_component("tracker", timeout=5) == 0
    tracker_pod = platform.tracker.pod_for("tracker")
    platform.pods.signal.assert_called_once_with(tracker_pod, "tracker", "SIGUSR1")
    assert platform.pods.copy_file.call_args.args[2] == "/data/qos.parquet"
    platform.check_health()  # a stopped tracker is no failure


def test_kill_deletes_that_workers_pod_at_once(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    start_all(platform)
    victim = platform.tracker.pod_for("worker-1")
    platform.kill_component("worker-1")
    assert ("delete", "Pod", victim) in fake.calls
    assert victim not in {p["metadata"]["name"] for p in fake.find("Pod")}
    assert platform.tracker.pod_for("worker-0") != victim


def test_teardown_saves_logs_and_leaves_nothing(
    platform: KubernetesPlatform, fake: FakeDynamic, tmp_path: Path
) -> None:
    start_all(platform)
    platform.pods.exit_code = mock.Mock(return_value=0)
    platform.pods.copy_file = mock.Mock(return_value=True)
    platform.pods.signal = mock.Mock()
    platform.teardown()
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert any(name.startswith("tracker-") for name in logs) and len(logs) == 5
    left = [
        o["kind"]
        for o in fake.store.values()
        if o["metadata"].get("labels", {}).get("scalelab.io/run-id") == RUN_ID
        and o["kind"] != "Pod"
    ]
    assert left == []
    assert all("scalelab.io/role" not in n["metadata"]["labels"] for n in fake.find("Node"))
    deleted = [kind for verb, kind, _ in fake.calls if verb == "delete"]
    assert deleted.index("KafkaTopic") < deleted.index("Kafka") < deleted.index("Namespace")


def test_missing_operators_fail_before_anything_is_applied(
    fake: FakeDynamic, tmp_path: Path
) -> None:
    fake.resources.kinds = {k for k in fake.resources.kinds if k[1] != "KafkaNodePool"}
    with pytest.raises(PrerequisiteError, match="strimzi install"):
        make_platform(load_spec(EXAMPLE), RUN_ID, tmp_path, tmp_path, False)
    assert not [c for c in fake.calls if c[0] == "apply"]


def test_another_runs_objects_make_the_namespace_busy(fake: FakeDynamic, tmp_path: Path) -> None:
    fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    fake.put(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "workers",
                "namespace": NS,
                "labels": {"scalelab.io/run-id": "older-run"},
            },
        }
    )
    with pytest.raises(NamespaceBusyError, match="older-run"):
        make_platform(load_spec(EXAMPLE), RUN_ID, tmp_path, tmp_path, False)


def test_an_unreachable_cluster_fails_the_run_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALELAB_RUNS", str(tmp_path / "runs"))
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    spec = load_spec(EXAMPLE, [f"platform.kubeconfig={config}"])
    with pytest.raises(ClusterUnreachableError, match="127.0.0.1:9"):
        KubernetesPlatform(spec, RUN_ID, tmp_path, tmp_path, False)

    from scalelab.cli.main import app

    result = CliRunner().invoke(
        app, ["run", str(EXAMPLE), "--set", f"platform.kubeconfig={config}"]
    )
    assert result.exit_code == ClusterUnreachableError.exit_code
    assert "no Kubernetes cluster reachable" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_existing_namespace_is_used_but_never_owned(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    fake.put(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NS, "labels": {}},
            "status": {"phase": "Active"},
        }
    )
    platform.start_infrastructure()
    assert ("apply", "Namespace", NS) not in fake.calls
    platform.teardown()
    assert fake.find("Namespace", NS)


def stall_deployments(fake: FakeDynamic, pod_status: dict[str, Any]) -> None:
    """Deployments get pods in the given status and never become available."""
    reconcile = fake._reconcile

    def stalled(obj: dict[str, Any]) -> None:
        reconcile(obj)
        if obj["kind"] == "Deployment":
            obj["status"] = {}
            for found in fake.find("Pod"):
                if found["metadata"]["labels"].get("owner") == obj["metadata"]["name"]:
                    found["status"] = pod_status

    fake._reconcile = stalled  # type: ignore[method-assign]


def test_a_pod_that_cannot_be_scheduled_times_out_with_the_reason(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    platform.start_infrastructure()
    platform.plan.settings.ready_timeout = 1
    stall_deployments(
        fake,
        {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient cpu.",
                }
            ],
        },
    )
    with pytest.raises(ComponentError, match="not scheduled: 0/3 nodes are available"):
        platform.start_component(launch("tracker", "tracker"))


def test_an_image_that_cannot_be_pulled_fails_at_once(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    platform.start_infrastructure()
    stall_deployments(
        fake,
        {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "tracker",
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}},
                }
            ],
        },
    )
    with pytest.raises(ComponentError, match="ImagePullBackOff: not found"):
        platform.start_component(launch("tracker", "tracker"))


# -- Jobs: failed is failed, retrying is not ready ---------------------------------------------
JOB_FAILED_CONDITIONS = [
    {"type": kind, "status": "True", "reason": "BackoffLimitExceeded",
     "message": "Job has reached the specified backoff limit"}
    for kind in ("FailureTarget", "Failed")
]  # fmt: skip


def job(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "producer", "namespace": NS, "generation": 1},
        "spec": {"backoffLimit": 0},
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "ready"),
    [
        ({"active": 1, "ready": 0, "terminating": 0}, False),  # pod starting
        ({"active": 1, "ready": 1, "terminating": 0}, True),  # running
        ({"active": 1, "failed": 1, "ready": 0, "terminating": 0}, False),  # retrying
        ({"active": 1, "failed": 1, "ready": 1, "terminating": 0}, False),  # a second attempt
        (
            {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
            True,
        ),
    ],
)
def test_a_job_is_ready_while_its_first_attempt_runs_or_once_it_completed(
    status: dict[str, Any], ready: bool
) -> None:
    assert readiness.predicate("Job")(job(status)) is ready


def test_a_failed_job_is_a_failure_never_ready() -> None:
    status = {"failed": 1, "ready": 0, "terminating": 0, "conditions": JOB_FAILED_CONDITIONS}
    with pytest.raises(ComponentError) as caught:
        readiness.predicate("Job")(job(status))
    assert caught.value.component == f"Job {NS}/producer"
    assert "BackoffLimitExceeded" in caught.value.reason


def test_a_producer_job_that_fails_fails_the_start_with_its_pods_reason(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    """The Job controller's view (Failed) and the pod's (exit 1) both reach the user."""
    platform.start_infrastructure()
    platform.start_component(launch("tracker", "tracker"))
    reconcile = fake._reconcile

    def failing(obj: dict[str, Any]) -> None:
        reconcile(obj)
        if obj["kind"] == "Job":
            obj["status"] = {"failed": 1, "ready": 0, "conditions": JOB_FAILED_CONDITIONS}
            for found in fake.owned_pods(obj["metadata"]["name"]):
                found["status"] = {
                    "phase": "Failed",
                    "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [
                        {"name": "producer", "ready": False, "restartCount": 0,
                         "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
                    ],
                }  # fmt: skip

    fake._reconcile = failing  # type: ignore[method-assign]
    with pytest.raises(ComponentError) as caught:
        platform.start_component(launch("producer", "producer"))
    assert caught.value.component == f"Job {NS}/producer"
    assert "BackoffLimitExceeded" in caught.value.reason
    assert "pod failed: exited with code 1 Error" in caught.value.reason


# -- kill-worker means what it means locally -----------------------------------------------------
def worker_pods(fake: FakeDynamic) -> list[str]:
    return sorted(p["metadata"]["name"] for p in fake.owned_pods("workers"))


def test_a_killed_worker_is_not_replaced_as_locally(
    platform: KubernetesPlatform, fake: FakeDynamic, tmp_path: Path
) -> None:
    """Locally a killed worker stays dead and the others take over; the Deployment must not
    bring it back, or the cluster run measures a different failure."""
    start_all(platform)
    survivor, victim = platform.tracker.pod_for("worker-0"), platform.tracker.pod_for("worker-1")
    assert survivor and victim and survivor != victim
    platform.kill_component("worker-1")
    assert fake.delete_bodies[victim].get("gracePeriodSeconds") == 0  # SIGKILL, no drain
    assert worker_pods(fake) == [survivor]  # no replacement
    assert fake.find("Deployment", "workers")[0]["spec"]["replicas"] == 1
    platform.tracker.last_check = 0
    platform.check_health()
    assert not platform.is_running("worker-1") and platform.is_running("worker-0")
    assert platform.stop_component("worker-1") == -9  # as Popen reports a SIGKILLed worker
    assert (tmp_path / "logs" / f"{victim}.log").read_text() == "last words\n"


def test_a_worker_pod_replaced_by_the_cluster_keeps_its_name(
    platform: KubernetesPlatform, fake: FakeDynamic
) -> None:
    """A pod evicted or deleted by someone else: its Deployment starts another, and the
    name follows, so health checks, stops and kills reach the pod that runs now."""
    start_all(platform)
    first, gone = platform.tracker.pod_for("worker-0"), platform.tracker.pod_for("worker-1")
    platform.tracker.cluster.delete({"apiVersion": "v1", "kind": "Pod",
                                     "metadata": {"name": gone, "namespace": NS}})  # fmt: skip
    [replacement] = [p for p in worker_pods(fake) if p != first]
    assert replacement != gone
    assert platform.tracker.pod_for("worker-1") == replacement
    assert platform.tracker.pod_for("worker-0") == first
    platform.kill_component("worker-1")
    assert ("delete", "Pod", replacement) in fake.calls
    assert worker_pods(fake) == [first]


def test_workers_map_in_start_order_past_ten(fake: FakeDynamic, tmp_path: Path) -> None:
    """worker-10 is the eleventh worker, not the third (names sort as strings)."""
    spec = load_spec(EXAMPLE, ["workload.workers=11", "broker.partitions=11"])
    made = make_platform(spec, RUN_ID, tmp_path, tmp_path / "state", False)
    assert isinstance(made, KubernetesPlatform)
    try:
        made.start_infrastructure()
        for index in range(11):
            made.start_component(launch(f"worker-{index}", "worker", "--name", f"worker-{index}"))
        by_start = [p["metadata"]["name"] for p in made.tracker.pods_of("worker")]
        assert [made.tracker.pod_for(f"worker-{i}") for i in range(11)] == by_start
    finally:
        for forward in made.forwards:
            forward.close()
