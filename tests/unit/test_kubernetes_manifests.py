"""The content of the objects a run applies: labels, resources, placement, topics, HPA, security."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scalelab.errors import ConfigError
from scalelab.platform.base import ComponentLaunch
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.config import KubernetesSpec, kubernetes_settings
from scalelab.platform.kubernetes.plan import Plan, role_args
from scalelab.spec.loader import load_spec
from scalelab.spec.models import ExperimentSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_ID = "20260101T000000Z-kubernetes-quickstart-abc123"


def spec(*overrides: str) -> ExperimentSpec:
    return load_spec(EXAMPLES / "kubernetes.yaml", list(overrides))


def plan(settings: dict[str, Any] | None = None, *overrides: str) -> Plan:
    """A plan for a cluster with Strimzi and kube-prometheus-stack (the operators' mode)."""
    chosen = KubernetesSpec.model_validate(settings or {})
    built = Plan(spec(*overrides), RUN_ID, chosen, "strimzi", "kube-prometheus-stack")
    built.check()
    return built


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o["spec"]["template"]["spec"] for o in objects if o["kind"] in ("Deployment", "Job")]


def container(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    workload = next(
        o
        for o in objects
        if o["kind"] in ("Deployment", "Job") and o["metadata"]["labels"][labels.COMPONENT] == name
    )
    return dict(workload["spec"]["template"]["spec"]["containers"][0])


def test_every_object_and_pod_carries_the_run_label() -> None:
    objects = plan().all_objects()
    assert {o["kind"] for o in objects} >= {
        "Namespace",
        "ConfigMap",
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "PodMonitor",
        "ServiceMonitor",
        "Service",
        "Deployment",
        "Job",
    }
    for obj in objects:
        assert obj["metadata"]["labels"][labels.RUN_ID] == RUN_ID, obj["kind"]
        assert obj["metadata"]["annotations"][labels.RUN_ID_ANNOTATION] == RUN_ID
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            assert obj["spec"]["template"]["metadata"]["labels"][labels.RUN_ID] == RUN_ID
    pool = by_kind(objects, "KafkaNodePool")[0]
    assert pool["spec"]["template"]["pod"]["metadata"]["labels"][labels.RUN_ID] == RUN_ID


def test_long_run_ids_become_valid_stable_label_values() -> None:
    long_id = "20260101T000000Z-" + "a" * 63 + "-abcdef"
    value = labels.run_label_value(long_id)
    assert len(value) <= 63 and value[-1].isalnum()
    assert value == labels.run_label_value(long_id) != labels.run_label_value(long_id + "x")
    assert labels.run_label_value(RUN_ID) == RUN_ID


def test_resources_come_from_the_settings() -> None:
    settings = {
        "resources": {
            "worker": {"requests": {"cpu": "2", "memory": "3Gi"}, "limits": {"cpu": "2500m"}},
            "producer": {"requests": {"cpu": "250m"}, "limits": {}},
        }
    }
    objects = plan(settings).all_objects()
    assert container(objects, "worker")["resources"] == {
        "requests": {"cpu": "2", "memory": "3Gi"},
        "limits": {"cpu": "2500m"},
    }
    assert container(objects, "producer")["resources"] == {"requests": {"cpu": "250m"}}
    assert container(objects, "tracker")["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}


def test_bad_quantities_are_spec_errors() -> None:
    with pytest.raises(ValueError, match="quantity"):
        KubernetesSpec.model_validate({"resources": {"worker": {"limits": {"cpu": "two"}}}})
    with pytest.raises(ValueError, match="extra"):
        KubernetesSpec.model_validate({"resources": {"worker": {"limit": {}}}})


def test_no_node_roles_means_no_affinity() -> None:
    assert all("affinity" not in p for p in pod_specs(plan().all_objects()))


def test_node_roles_keep_load_generation_off_the_system_under_test() -> None:
    objects = plan({"node_roles": {"producer_nodes": ["n1"]}}).all_objects()

    def rule(component: str) -> tuple[str, list[str]]:
        affinity = container_pod(objects, component)["affinity"]["nodeAffinity"]
        terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        expression = terms[0]["matchExpressions"][0]
        assert expression["key"] == "scalelab.io/role"
        return expression["operator"], expression["values"]

    assert rule("producer") == ("In", ["producer"])
    assert rule("worker") == ("In", ["consumer"])
    assert rule("tracker") == ("NotIn", ["producer"])
    pool = by_kind(objects, "KafkaNodePool")[0]["spec"]["template"]["pod"]
    kafka_rule = pool["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert kafka_rule["nodeSelectorTerms"][0]["matchExpressions"][0]["operator"] == "NotIn"


def container_pod(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    workload = next(
        o
        for o in objects
        if o["kind"] in ("Deployment", "Job")
        and o["metadata"]["labels"][labels.COMPONENT] == component
    )
    return dict(workload["spec"]["template"]["spec"])


def test_node_roles_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="not both"):
        KubernetesSpec.model_validate(
            {"node_roles": {"producer_nodes": ["a"], "producer_fraction": 0.5}}
        )
    with pytest.raises(ValueError, match="both producer and consumer"):
        KubernetesSpec.model_validate(
            {"node_roles": {"producer_nodes": ["a"], "consumer_nodes": ["a"]}}
        )


def test_topics_have_the_partitions_the_spec_asks_for() -> None:
    objects = plan(
        None, "broker.partitions=12", "broker.replication=1", "broker.input_topic=frames_in"
    ).all_objects()
    topics = {t["spec"]["topicName"]: t for t in by_kind(objects, "KafkaTopic")}
    assert topics["frames_in"]["spec"]["partitions"] == 12
    assert topics["scalelab.output"]["spec"]["partitions"] == 12
    assert topics["scalelab.dead-letter"]["spec"]["partitions"] == 1
    assert all(t["spec"]["replicas"] == 1 for t in topics.values())
    assert all(t["metadata"]["labels"]["strimzi.io/cluster"] == "scalelab" for t in topics.values())
    name = topics["frames_in"]["metadata"]["name"]
    assert name.startswith("frames-in-") and "_" not in name


def test_kafka_is_kraft_on_a_node_pool_with_a_local_listener() -> None:
    objects = plan({"kafka": {"replicas": 3, "client_port": 40000}}).all_objects()
    kafka = by_kind(objects, "Kafka")[0]
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    local = next(lst for lst in kafka["spec"]["kafka"]["listeners"] if lst["name"] == "local")
    brokers = local["configuration"]["brokers"]
    assert [(b["broker"], b["advertisedHost"], b["advertisedPort"]) for b in brokers] == [
        (0, "127.0.0.1", 40000),
        (1, "127.0.0.1", 40001),
        (2, "127.0.0.1", 40002),
    ]
    pool = by_kind(objects, "KafkaNodePool")[0]
    assert pool["spec"]["roles"] == ["controller", "broker"]
    assert pool["spec"]["replicas"] == 3
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2


def test_an_existing_kafka_replaces_strimzi() -> None:
    built = plan(
        {"kafka": {"client_bootstrap": "10.0.0.5:9092"}}, "broker.bootstrap=kafka.data.svc:9092"
    )
    objects = built.all_objects()
    assert not by_kind(objects, "Kafka") and not by_kind(objects, "KafkaTopic")
    assert built.client_bootstrap == "10.0.0.5:9092"
    args = container(objects, "worker")["args"]
    assert args[args.index("--bootstrap") + 1] == "kafka.data.svc:9092"


def test_hpa_settings() -> None:
    settings = {
        "autoscaling": {
            "enabled": True,
            "min_replicas": 2,
            "max_replicas": 6,
            "cpu_utilization": 80,
            "scale_up_window": 15,
            "scale_down_window": 120,
        }
    }
    objects = plan(settings).all_objects()
    hpa = by_kind(objects, "HorizontalPodAutoscaler")[0]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "workers",
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    target = hpa["metrics"][0]["resource"]
    assert target == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}
    assert hpa["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 15
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 120
    assert not by_kind(plan().all_objects(), "HorizontalPodAutoscaler")


def test_hpa_needs_cpu_requests_and_room() -> None:
    with pytest.raises(ConfigError, match="requests.cpu"):
        plan(
            {
                "autoscaling": {"enabled": True},
                "resources": {"worker": {"requests": {"memory": "1Gi"}}},
            }
        )
    with pytest.raises(ConfigError, match="max_replicas"):
        plan({"autoscaling": {"enabled": True, "max_replicas": 1}})


def test_no_container_runs_as_root() -> None:
    objects = plan({"model_pvc": "models"}).all_objects()
    for pod_spec in pod_specs(objects):
        assert pod_spec["securityContext"]["runAsNonRoot"] is True
        assert pod_spec["securityContext"]["runAsUser"] != 0
        assert pod_spec["automountServiceAccountToken"] is False
        for box in pod_spec["containers"]:
            security = box["securityContext"]
            assert security["runAsNonRoot"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            writable = {m["mountPath"] for m in box["volumeMounts"] if not m.get("readOnly")}
            assert writable == {"/data", "/tmp"}
    kafka_box = by_kind(objects, "KafkaNodePool")[0]["spec"]["template"]["kafkaContainer"]
    assert kafka_box["securityContext"]["runAsNonRoot"] is True
    assert kafka_box["securityContext"]["allowPrivilegeEscalation"] is False


def test_services_stay_inside_the_cluster_unless_asked() -> None:
    assert {s["spec"]["type"] for s in by_kind(plan().all_objects(), "Service")} == {"ClusterIP"}
    exposed = by_kind(plan({"service_type": "NodePort"}).all_objects(), "Service")
    assert {s["spec"]["type"] for s in exposed} == {"NodePort"}


def test_monitors_add_the_architecture_labels() -> None:
    objects = plan(None, "monitoring.scrape_interval=500ms").all_objects()
    monitors = by_kind(objects, "PodMonitor") + by_kind(objects, "ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {"kafka", "tracker", "workers", "producer"}
    for monitor in monitors:
        endpoints = monitor["spec"].get("podMetricsEndpoints") or monitor["spec"]["endpoints"]
        assert endpoints[0]["interval"] == "500ms"
        targets = {r["targetLabel"]: r["sourceLabels"][0] for r in endpoints[0]["relabelings"]}
        assert targets["run_id"] == "__meta_kubernetes_pod_annotation_scalelab_io_run_id_full"
        assert targets["component"] == "__meta_kubernetes_pod_label_scalelab_io_component"
        assert targets["instance"] == "__meta_kubernetes_pod_name"


def test_workers_are_one_deployment_named_after_their_pods() -> None:
    objects = plan(None, "workload.workers=5", "broker.partitions=5").all_objects()
    workers = next(d for d in by_kind(objects, "Deployment") if d["metadata"]["name"] == "workers")
    assert workers["spec"]["replicas"] == 5
    box = workers["spec"]["template"]["spec"]["containers"][0]
    assert box["command"][:3] == ["python", "-m", "scalelab.platform.kubernetes.podwrap"]
    args = box["args"]
    assert args[args.index("--name") + 1] == "$(POD_NAME)"
    assert args[args.index("--model") + 1] == "/opt/scalelab/models/yolov8n.onnx"
    assert args[args.index("--run-dir") + 1] == "/data"
    env = {e["name"]: e for e in box["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["SCALELAB_METRICS_ADDR"]["value"] == "0.0.0.0"


def test_producer_is_a_job_that_never_retries() -> None:
    job = by_kind(plan().all_objects(), "Job")[0]
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_a_local_model_file_needs_a_path_in_the_pods() -> None:
    with pytest.raises(ConfigError, match="model_path"):
        plan(None, "workload.model=/home/me/best.onnx")
    mounted = plan({"model_pvc": "my-models"}, "workload.model=/home/me/best.onnx")
    assert mounted.model_path == "/models/best.onnx"
    volumes = container_pod(mounted.all_objects(), "worker")["volumes"]
    assert {
        "name": "models",
        "persistentVolumeClaim": {"claimName": "my-models", "readOnly": True},
    } in volumes


def test_core_launch_arguments_become_the_pods() -> None:
    built = plan()
    launch = ComponentLaunch(
        "worker-1",
        "worker",
        "scalelab.components.worker",
        [
            "--spec",
            "/home/me/runs/x/spec.yaml",
            "--bootstrap",
            "127.0.0.1:29092",
            "--run-id",
            RUN_ID,
            "--run-dir",
            "/home/me/runs/x",
            "--base-dir",
            "/home/me",
            "--name",
            "worker-1",
            "--model",
            "/home/me/.scalelab/models/yolov8n.onnx",
            "--dry",
        ],
    )
    assert role_args(built, launch) == [
        "--name",
        "$(POD_NAME)",
        "--model",
        "/opt/scalelab/models/yolov8n.onnx",
        "--dry",
    ]


def test_spec_configmap_holds_the_resolved_spec() -> None:
    config = by_kind(plan().all_objects(), "ConfigMap")[0]
    assert config["metadata"]["name"] == "scalelab-spec"
    assert "name: kubernetes-quickstart" in config["data"]["spec.yaml"]


def test_settings_default_when_the_spec_has_none() -> None:
    bare = load_spec(EXAMPLES / "quickstart.yaml", ["platform.kind=kubernetes"])
    assert kubernetes_settings(bare) == KubernetesSpec()
    assert kubernetes_settings(spec()).resources.worker.requests.cpu == "250m"
    assert KubernetesSpec().monitoring.kepler_chart_version != "latest"
