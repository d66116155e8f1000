"""Strimzi (kafka.strimzi.io/v1beta2): a KRaft `Kafka` on one `KafkaNodePool`, its topics, metrics.

Two listeners: `plain` (9092) for the pods, and `local` (9094) that
advertises `127.0.0.1:<client_port + node id>`, so scalelab's own Kafka
clients reach each broker through a Kubernetes API port-forward and nothing
is exposed outside the cluster.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import TYPE_CHECKING

from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.manifests import Manifest, monitors
from scalelab.platform.kubernetes.manifests.base import resources as resource_amounts
from scalelab.platform.kubernetes.manifests.placement import affinity

if TYPE_CHECKING:
    from scalelab.platform.kubernetes.plan import Plan

API_VERSION = "kafka.strimzi.io/v1beta2"
CLUSTER_LABEL = "strimzi.io/cluster"
PLAIN_PORT = 9092
LOCAL_PORT = 9094
METRICS_KEY = "kafka-metrics-config.yml"


def bootstrap_address(namespace: str) -> str:
    """The in-cluster bootstrap Service Strimzi creates for the `plain` listener."""
    return f"{labels.KAFKA_CLUSTER}-kafka-bootstrap.{namespace}.svc:{PLAIN_PORT}"


def node_pod(node_id: int) -> str:
    """Pod name of a Kafka node: <cluster>-<pool>-<id>."""
    return f"{labels.KAFKA_CLUSTER}-{labels.KAFKA_POOL}-{node_id}"


def metrics_configmap(plan: Plan) -> Manifest:
    """The same JMX exporter rules as the local broker, so metric names match on both."""
    rules = resources.files("scalelab.platform.local").joinpath("kafka-jmx.yaml").read_text()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": labels.metadata(labels.KAFKA_METRICS_CONFIGMAP, plan.run_id, plan.namespace),
        "data": {METRICS_KEY: rules},
    }


def _pod_template(plan: Plan) -> Manifest:
    meta = labels.metadata("unused", plan.run_id, component="kafka")
    template: Manifest = {
        "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]}
    }
    placed = affinity(plan.settings.node_roles, "kafka")
    if placed:
        template["affinity"] = placed
    return template


def _storage(plan: Plan) -> Manifest:
    volume: Manifest = {"id": 0, "type": "ephemeral", "kraftMetadata": "shared"}
    if plan.settings.storage_class:
        volume = {
            "id": 0,
            "type": "persistent-claim",
            "size": plan.settings.kafka.storage_size,
            "class": plan.settings.storage_class,
            "deleteClaim": True,
            "kraftMetadata": "shared",
        }
    return {"type": "jbod", "volumes": [volume]}


def node_pool(plan: Plan) -> Manifest:
    heap = f"{plan.spec.broker.heap_mb}m"
    container_security = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaNodePool",
        "metadata": labels.metadata(
            labels.KAFKA_POOL,
            plan.run_id,
            plan.namespace,
            "kafka",
            {CLUSTER_LABEL: labels.KAFKA_CLUSTER},
        ),
        "spec": {
            "replicas": plan.settings.kafka.replicas,
            "roles": ["controller", "broker"],
            "storage": _storage(plan),
            "resources": resource_amounts(plan.settings.resources.kafka),
            "jvmOptions": {"-Xms": heap, "-Xmx": heap},
            "template": {
                "pod": _pod_template(plan),
                "kafkaContainer": {"securityContext": container_security},
            },
        },
    }


def _listeners(plan: Plan) -> list[Manifest]:
    first = plan.settings.kafka.client_port
    brokers = [
        {"broker": node, "advertisedHost": "127.0.0.1", "advertisedPort": first + node}
        for node in range(plan.settings.kafka.replicas)
    ]
    return [
        {"name": "plain", "port": PLAIN_PORT, "type": "internal", "tls": False},
        {
            "name": "local",
            "port": LOCAL_PORT,
            "type": "internal",
            "tls": False,
            "configuration": {"brokers": brokers},
        },
    ]


def kafka(plan: Plan) -> Manifest:
    replicas = plan.settings.kafka.replicas
    factor = min(3, replicas)
    config = {
        "offsets.topic.replication.factor": factor,
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min(2, factor),
        "default.replication.factor": factor,
        "min.insync.replicas": min(2, factor),
        "message.max.bytes": 16 * 1024 * 1024,
    }
    metrics = {
        "type": "jmxPrometheusExporter",
        "valueFrom": {
            "configMapKeyRef": {"name": labels.KAFKA_METRICS_CONFIGMAP, "key": METRICS_KEY}
        },
    }
    meta = labels.metadata(labels.KAFKA_CLUSTER, plan.run_id, plan.namespace, "kafka")
    meta["annotations"] = {
        **meta["annotations"],  # type: ignore[dict-item]
        "strimzi.io/node-pools": "enabled",
        "strimzi.io/kraft": "enabled",
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Kafka",
        "metadata": meta,
        "spec": {
            "kafka": {
                "version": plan.settings.kafka.kafka_version,
                "metadataVersion": plan.settings.kafka.metadata_version,
                "listeners": _listeners(plan),
                "config": config,
                "metricsConfig": metrics,
            },
            "entityOperator": {"topicOperator": {}},
            "kafkaExporter": {
                "groupRegex": "scalelab-.*",
                "topicRegex": ".*",
                "template": {"pod": _pod_template(plan)},
            },
        },
    }


def topic_object_name(topic: str) -> str:
    """A Kubernetes name for a Kafka topic (which may hold '_' or capitals)."""
    name = re.sub(r"[^a-z0-9.-]", "-", topic.lower()).strip("-.")[:200]
    if name != topic:
        name = f"{name}-{hashlib.sha256(topic.encode()).hexdigest()[:6]}"
    return name


def topics(plan: Plan) -> list[Manifest]:
    """Input and output topics with the spec's partitions, the dead-letter topic with one."""
    broker = plan.spec.broker
    wanted = (
        (broker.input_topic, broker.partitions),
        (broker.output_topic, broker.partitions),
        (broker.dead_letter_topic, 1),
    )
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "KafkaTopic",
            "metadata": labels.metadata(
                topic_object_name(topic),
                plan.run_id,
                plan.namespace,
                "kafka",
                {CLUSTER_LABEL: labels.KAFKA_CLUSTER},
            ),
            "spec": {
                "topicName": topic,
                "partitions": partitions,
                "replicas": broker.replication,
                "config": {"retention.ms": int(broker.retention * 1000)},
            },
        }
        for topic, partitions in wanted
    ]


def pod_monitor(plan: Plan) -> Manifest:
    """Scrapes the brokers' JMX exporter and the Kafka exporter (consumer lag)."""
    interval = monitors.scrape_interval(plan.spec.monitoring.scrape_interval)
    selector = {CLUSTER_LABEL: labels.KAFKA_CLUSTER, labels.RUN_ID: plan.run_label}
    return monitors.pod_monitor(
        "kafka", plan.run_id, plan.namespace, selector, "tcp-prometheus", interval
    )


def kafka_objects(plan: Plan) -> list[Manifest]:
    """In apply order: metrics rules, node pool, cluster, topics, monitor."""
    return [metrics_configmap(plan), node_pool(plan), kafka(plan), *topics(plan), pod_monitor(plan)]
