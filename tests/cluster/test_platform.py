"""The Kubernetes platform against the real cluster: objects, readiness, pods, forwards, HPA."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("kubernetes")

from scalelab.errors import ComponentError  # noqa: E402
from scalelab.platform.kubernetes import labels, status  # noqa: E402
from scalelab.platform.kubernetes.api import PodOps  # noqa: E402
from scalelab.platform.kubernetes.plan import Plan  # noqa: E402
from scalelab.platform.kubernetes.platform import KubernetesPlatform  # noqa: E402
from scalelab.platform.kubernetes.tracking import Tracker  # noqa: E402
from scalelab.spec.loader import load_spec  # noqa: E402
from scalelab.spec.models import ExperimentSpec  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes.yaml"
SMALL = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}}


def spec_for(namespace: str, *overrides: str) -> ExperimentSpec:
    return load_spec(EXAMPLE, [f"platform.namespace={namespace}", *overrides])


def until(what: str, probe: Any, timeout: float = 120.0) -> Any:
    """Poll until `probe()` gives something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1.0)
    pytest.fail(f"{what}: not within {timeout:g} s")


def workers_running(plan: Plan, command: list[str], replicas: int) -> list[dict[str, Any]]:
    """The workers' objects with a stand-in command (no Kafka needed), small requests."""
    objects = copy.deepcopy(plan.component_objects("worker"))
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        obj["spec"]["replicas"] = replicas
        container = obj["spec"]["template"]["spec"]["containers"][0]
        container.update(command=command, args=[], resources=copy.deepcopy(SMALL))
        del container["readinessProbe"]  # the stand-in serves no /metrics
    return objects


def apply_and_wait(cluster: Any, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        cluster.apply(obj)
    for obj in objects:
        if status.waits_for(obj["kind"]):
            cluster.wait_for(obj, status.predicate(obj["kind"]), 180)


def prometheus_has(url: str, query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=10)
    return list(response.json()["data"]["result"])


def test_own_kafka_and_prometheus_come_up_are_reached_and_go(
    cluster: Any, image: str, namespace: str, run_id: str, tmp_path: Path
) -> None:
    """Self-contained mode: the broker and Prometheus pods ready, reached through real
    port-forwards, Prometheus scraping the broker and the kubelet, everything gone after."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    platform = KubernetesPlatform(spec_for(namespace), run_id, tmp_path, tmp_path, False)
    assert (platform.plan.kafka_mode, platform.plan.monitoring_mode) == ("scalelab", "scalelab")
    try:
        endpoints = platform.start_infrastructure()
        admin = AdminClient({"bootstrap.servers": endpoints.bootstrap})
        admin.create_topics([NewTopic("probe", 1, 1)])["probe"].result(60)
        producer = Producer({"bootstrap.servers": endpoints.bootstrap})
        for index in range(200):
            producer.produce("probe", key=str(index), value=b"x" * 100)
        assert producer.flush(60) == 0
        consumer = Consumer({
            "bootstrap.servers": endpoints.bootstrap,
            "group.id": "probe",
            "auto.offset.reset": "earliest",
        })  # fmt: skip
        consumer.subscribe(["probe"])
        keys: set[str] = set()
        deadline = time.monotonic() + 60
        while len(keys) < 200 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                keys.add(bytes(message.key() or b"").decode())
        consumer.close()
        assert len(keys) == 200
        url = endpoints.prometheus_url
        up = prometheus_has(url, f'up{{run_id="{run_id}",component="kafka"}} == 1')
        assert len(up) == 1
        assert until(
            "broker JMX metrics",
            lambda: prometheus_has(url, "kafka_server_brokertopicmetrics_messagesin_total"),
        )
        cpu = f'container_cpu_usage_seconds_total{{namespace="{namespace}",component="kafka"}}'
        assert until("cAdvisor CPU of the broker pod", lambda: prometheus_has(url, cpu))
        assert until("the node's CPU", lambda: prometheus_has(url, "node_cpu_usage_seconds_total"))
        assert not prometheus_has(url, 'container_cpu_usage_seconds_total{namespace="kube-system"}')
        assert platform.versions()["kafka"][0].isdigit()
    finally:
        platform.teardown()
    assert cluster.get("v1", "Namespace", namespace) is None
    selector = labels.run_selector(run_id)
    assert cluster.list("rbac.authorization.k8s.io/v1", "ClusterRole", None, selector) == []


def test_a_failing_job_is_never_ready_and_the_error_names_it(
    cluster: Any, image: str, namespace: str, run_id: str
) -> None:
    plan = Plan.for_spec(spec_for(namespace), run_id, cluster.has_kind)
    apply_and_wait(cluster, plan.base_objects())
    producer = next(o for o in plan.component_objects("producer") if o["kind"] == "Job")
    jobs = {}
    for name, code in (("fails", 3), ("succeeds", 0)):
        job = copy.deepcopy(producer)
        job["metadata"]["name"] = name
        container = job["spec"]["template"]["spec"]["containers"][0]
        container.update(command=["/bin/sh", "-c", f"exit {code}"], args=[])
        container["resources"] = copy.deepcopy(SMALL)
        # The producer's own readiness probe stays: without one, the failing container
        # counts as ready for the moment it runs, and the Job's `ready` can show it.
        job["spec"]["template"]["metadata"]["labels"][labels.COMPONENT] = name
        cluster.apply(job)
        jobs[name] = job
    done = cluster.wait_for(jobs["succeeds"], status.predicate("Job"), 120)
    assert done["status"].get("ready") or done["status"].get("succeeded")  # running or done
    with pytest.raises(ComponentError) as failed:
        cluster.wait_for(jobs["fails"], status.predicate("Job"), 120)
    assert failed.value.component == f"Job {namespace}/fails"
    assert "BackoffLimitExceeded" in failed.value.reason


def test_a_pod_deleted_by_the_cluster_is_remapped_a_killed_one_is_not_replaced(
    cluster: Any, image: str, namespace: str, run_id: str, tmp_path: Path
) -> None:
    """kill-worker means what it means locally: the worker dies and nothing takes its place
    (its pod deleted at once, the Deployment one replica smaller). A pod that someone else
    deletes is replaced by its Deployment, and the worker's name follows the new pod."""
    plan = Plan.for_spec(spec_for(namespace), run_id, cluster.has_kind)
    apply_and_wait(cluster, plan.base_objects())
    apply_and_wait(cluster, workers_running(plan, ["sleep", "600"], 2))
    tracker = Tracker(cluster, PodOps(cluster.core, namespace), plan, tmp_path)
    for name in ("worker-0", "worker-1"):
        tracker.add_name(name, "worker")
    tracker.started("worker")
    first, second = tracker.pod_for("worker-0"), tracker.pod_for("worker-1")
    assert first and second and first != second
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": first, "namespace": namespace}}
    cluster.delete(pod, grace_seconds=0)
    replaced = until(
        "worker-0 mapped to its replacement",
        lambda: (p := tracker.pod_for("worker-0")) not in (None, first) and p,
    )
    assert replaced != second and tracker.pod_for("worker-1") == second
    assert tracker.is_running("worker-0")
    (swap,) = tracker.events
    assert (swap.kind, swap.component) == ("pod-replaced", "worker-0")
    assert first in swap.detail and replaced in swap.detail

    # as in a run, the survivor is up when the kill comes: the ReplicaSet's scale-down then
    # removes the replacement it may have started for the killed pod, never a ready worker
    until(
        f"{replaced} ready",
        lambda: any(
            status.pod_ready(p)
            for p in tracker.pods_of("worker")
            if p["metadata"]["name"] == replaced
        ),
    )
    tracker.kill("worker-1")
    deployment = cluster.get("apps/v1", "Deployment", labels.WORKERS, namespace)
    assert deployment["spec"]["replicas"] == 1
    left: list[list[str]] = []

    def only_the_survivor() -> bool:
        left.append([p["metadata"]["name"] for p in tracker.pods_of("worker")])
        return left[-1] == [replaced]

    try:
        until(f"only {replaced} left (killed {second})", only_the_survivor)
    except pytest.fail.Exception as error:
        raise AssertionError(f"{error}; pods seen last: {left[-3:]}") from error
    time.sleep(5)  # a replacement, were one started, would show by now
    assert [p["metadata"]["name"] for p in tracker.pods_of("worker")] == [replaced]
    assert not tracker.is_running("worker-1") and tracker.is_running("worker-0")
    assert (tmp_path / "logs" / f"{second}.log").exists()
    assert [(e.kind, e.component) for e in tracker.events[1:]] == [("pod-killed", "worker-1")]


def test_a_teardown_whose_output_copy_fails_still_saves_the_pod_logs(
    cluster: Any, image: str, namespace: str, run_id: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """The logs say why a run failed: a failure copying outputs must not cost them."""
    platform = KubernetesPlatform(spec_for(namespace), run_id, tmp_path, tmp_path, False)
    plan = platform.plan
    apply_and_wait(cluster, plan.base_objects())
    talking = ["sh", "-c", "echo worker says why; sleep 600"]
    apply_and_wait(cluster, workers_running(plan, talking, 1))

    def refused(timeout: float = 60.0) -> None:
        raise ComponentError("tracker", "its pod is gone")

    monkeypatch.setattr(platform.tracker, "collect_outputs", refused)
    with pytest.raises(ComponentError) as failed:
        platform.teardown()
    assert "collecting outputs" in failed.value.reason and "its pod is gone" in failed.value.reason
    logs = [path.read_text() for path in (tmp_path / "logs").glob("*.log")]
    assert any("worker says why" in text for text in logs), logs
    assert not cluster.list("v1", "Pod", namespace, labels.run_selector(run_id))


def test_an_image_that_is_not_there_fails_the_start_at_once_naming_it(
    cluster: Any, namespace: str, run_id: str, tmp_path: Path
) -> None:
    """No registry is ever asked (the node's pulls fail at once): the error names the pod."""
    spec = spec_for(namespace, "platform.kubernetes.image=scalelab.local/missing:0")
    platform = KubernetesPlatform(spec, run_id, tmp_path, tmp_path, False)
    try:
        with pytest.raises(ComponentError) as failed:
            platform.start_infrastructure()
    finally:
        platform.teardown()
    assert failed.value.component == "prometheus"
    assert "ErrImagePull" in failed.value.reason or "ImagePullBackOff" in failed.value.reason
    assert "not ready after" not in failed.value.reason  # the pod's state, not a timeout
