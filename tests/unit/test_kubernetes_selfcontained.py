"""The self-contained mode's objects: the run's own Kafka and Prometheus, scoped to the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from scalelab import __version__
from scalelab.errors import ConfigError
from scalelab.platform.kubernetes import labels, teardown
from scalelab.platform.kubernetes.manifests import own_kafka, own_prometheus
from scalelab.platform.kubernetes.plan import Plan
from scalelab.spec.loader import load_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes.yaml"
RUN_ID = "20260101T000000Z-kubernetes-quickstart-abc123"


def plan(*overrides: str, operators: bool = False, port: int = 31234) -> Plan:
    spec = load_spec(EXAMPLE, list(overrides))
    return Plan.for_spec(spec, RUN_ID, lambda api_version, kind: operators, port)


def objects_of(kind: str, built: Plan) -> list[dict[str, Any]]:
    return [o for o in built.all_objects() if o["kind"] == kind]


def test_auto_mode_follows_what_the_cluster_has() -> None:
    assert (plan().kafka_mode, plan().monitoring_mode) == ("scalelab", "scalelab")
    with_operators = plan(operators=True)
    assert (with_operators.kafka_mode, with_operators.monitoring_mode) == (
        "strimzi",
        "kube-prometheus-stack",
    )
    forced = plan("platform.kubernetes.kafka.mode=scalelab", operators=True)
    assert forced.kafka_mode == "scalelab"


def test_self_contained_needs_no_operator_kinds() -> None:
    kinds = {o["apiVersion"].split("/")[0] for o in plan().all_objects()}
    assert not kinds & {"kafka.strimzi.io", "monitoring.coreos.com"}


def test_every_object_is_found_by_the_run_label_and_deleted_by_teardown() -> None:
    deleted = {kind for group in teardown.DELETE_ORDER for _, kind in group}
    for built in (plan(), plan(operators=True)):
        for obj in built.all_objects():
            assert obj["metadata"]["labels"][labels.RUN_ID] == built.run_label
            assert obj["kind"] in deleted, obj["kind"]
            scoped = obj["kind"] in teardown.CLUSTER_SCOPED
            assert ("namespace" in obj["metadata"]) != scoped, obj["kind"]


def test_broker_advertises_the_port_forward_and_the_service() -> None:
    built = plan(port=31234)
    config = objects_of("ConfigMap", built)
    properties = next(c for c in config if c["metadata"]["name"] == own_kafka.NAME)
    text = properties["data"]["server.properties"]
    assert "LOCAL://127.0.0.1:31234" in text
    assert f"PLAIN://kafka.{built.namespace}.svc:9092" in text
    assert built.client_bootstrap == "127.0.0.1:31234"
    workers = next(d for d in objects_of("Deployment", built) if d["metadata"]["name"] == "workers")
    args = workers["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--bootstrap") + 1] == f"kafka.{built.namespace}.svc:9092"


def test_images_are_the_fixed_local_tag_never_pulled_always() -> None:
    built = plan()
    pods = [
        o["spec"]["template"]["spec"]
        for o in built.all_objects()
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
    ]
    containers = [c for pod in pods for c in pod["containers"]]
    assert {c["image"] for c in containers} == {f"scalelab.local/scalelab:{__version__}"}
    assert {c["imagePullPolicy"] for c in containers} == {"IfNotPresent"}


def test_own_kafka_has_one_node() -> None:
    with pytest.raises(ConfigError, match="one node"):
        plan("platform.kubernetes.kafka.replicas=3")


def test_prometheus_reads_only_what_it_scrapes() -> None:
    built = plan()
    role = objects_of("Role", built)[0]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    cluster_role = objects_of("ClusterRole", built)[0]
    resources = {r: rule["verbs"] for rule in cluster_role["rules"] for r in rule["resources"]}
    assert resources == {"nodes": ["get", "list", "watch"], "nodes/metrics": ["get"]}
    assert built.run_label.lower() in cluster_role["metadata"]["name"]


def test_prometheus_discovers_only_the_runs_namespace() -> None:
    built = plan()
    config = YAML(typ="safe").load(own_prometheus.config(built))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"pods", "kubelet-cadvisor", "kubelet-resource"}
    pods = jobs["pods"]
    assert pods["kubernetes_sd_configs"] == [
        {"role": "pod", "namespaces": {"names": [built.namespace]}}
    ]
    keep = pods["relabel_configs"][0]
    assert keep["action"] == "keep" and keep["regex"] == built.run_label
    cadvisor = jobs["kubelet-cadvisor"]["metric_relabel_configs"]
    scoped = next(r for r in cadvisor if r["source_labels"] == ["namespace"])
    assert scoped == {
        "source_labels": ["namespace"],
        "regex": f"({built.namespace})?",
        "action": "keep",
    }
    assert config["global"]["scrape_interval"] == "1s"
