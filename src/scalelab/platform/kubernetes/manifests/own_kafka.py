"""The run's own Kafka (`kafka.mode: scalelab`): one KRaft node as a StatefulSet from the image.

No operator: the component image carries the Kafka jars and the JMX exporter
agent (`/opt/scalelab/kafka/lib`), and the broker runs exactly as the local
platform runs it (same server settings, same JMX rules), on emptyDir storage.

Two listeners: `PLAIN` (9092) behind the `kafka` Service for the pods, and
`LOCAL` (9094) that advertises `127.0.0.1:<client port>`, so scalelab's own
clients reach the broker through a Kubernetes API port-forward and nothing
is exposed outside the cluster.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources
from typing import TYPE_CHECKING

from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.manifests import Manifest, base

if TYPE_CHECKING:
    from scalelab.platform.kubernetes.plan import Plan

NAME = "kafka"
POD = f"{NAME}-0"
PLAIN_PORT = 9092
CONTROLLER_PORT = 9093
LOCAL_PORT = 9094
METRICS_PORT = 9404
LIB = "/opt/scalelab/kafka/lib"
CONFIG_DIR = "/etc/kafka"
DATA = "/var/lib/kafka"


def bootstrap_address(namespace: str) -> str:
    return f"{NAME}.{namespace}.svc:{PLAIN_PORT}"


def cluster_id(run_id: str) -> str:
    """16 bytes, URL-safe base64 (Kafka's format), fixed by the run id."""
    digest = hashlib.sha256(run_id.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def server_properties(plan: Plan, client_port: int) -> str:
    """KRaft combined broker+controller, sized like the local broker."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{CONTROLLER_PORT}",
        "listeners": f"PLAIN://0.0.0.0:{PLAIN_PORT},LOCAL://0.0.0.0:{LOCAL_PORT},"
        f"CONTROLLER://127.0.0.1:{CONTROLLER_PORT}",
        "advertised.listeners": f"PLAIN://{bootstrap_address(plan.namespace)},"
        f"LOCAL://127.0.0.1:{client_port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAIN:PLAINTEXT,LOCAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAIN",
        "log.dirs": DATA,
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.ms": str(int(plan.spec.broker.retention * 1000)),
        "auto.create.topics.enable": "false",
        "message.max.bytes": str(16 * 1024 * 1024),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def configmap(plan: Plan, client_port: int) -> Manifest:
    rules = resources.files("scalelab.platform.local").joinpath("kafka-jmx.yaml").read_text()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": labels.metadata(NAME, plan.run_id, plan.namespace, "kafka"),
        "data": {
            "server.properties": server_properties(plan, client_port),
            "jmx.yaml": rules,
        },
    }


def script(plan: Plan) -> str:
    """Format the storage once, then run the broker with the JMX exporter agent."""
    heap = plan.spec.broker.heap_mb
    config = f"{CONFIG_DIR}/server.properties"
    return "\n".join(
        [
            "set -e",
            f"AGENT=$(ls {LIB}/jmx_prometheus_javaagent-*.jar | tail -n 1)",
            # A short-lived tool: the C1 compiler and the serial collector start it faster.
            f"java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp '{LIB}/*' "
            "kafka.tools.StorageTool format "
            f"--cluster-id={cluster_id(plan.run_id)} -c {config} --standalone --ignore-formatted",
            f"exec java -Xms{min(256, heap)}m -Xmx{heap}m -XX:+UseG1GC "
            "-Djava.awt.headless=true -Dkafka.logs.dir=/tmp "
            f'"-javaagent:$AGENT={METRICS_PORT}:{CONFIG_DIR}/jmx.yaml" '
            f"-cp '{LIB}/*' kafka.Kafka {config}",
        ]
    )


def _container(plan: Plan) -> Manifest:
    ports = (("plain", PLAIN_PORT), ("local", LOCAL_PORT), ("metrics", METRICS_PORT))
    return {
        "name": "kafka",
        "image": plan.settings.image,
        "imagePullPolicy": plan.settings.image_pull_policy,
        "command": ["/bin/sh", "-c", script(plan)],
        "env": base.environment({}),
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports],
        "readinessProbe": {
            "tcpSocket": {"port": "plain"},
            "periodSeconds": 2,
            "failureThreshold": 3,
        },
        "resources": base.resources(plan.settings.resources.kafka),
        "securityContext": base.container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def statefulset(plan: Plan) -> Manifest:
    meta = labels.metadata(NAME, plan.run_id, plan.namespace, "kafka")
    pod_meta = {"labels": meta["labels"], "annotations": meta["annotations"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "serviceName": NAME,
            "selector": {"matchLabels": labels.selector_labels(plan.run_id, "kafka")},
            "template": {
                "metadata": pod_meta,
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": base.pod_security(),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [_container(plan)],
                    "volumes": [
                        {"name": "config", "configMap": {"name": NAME}},
                        {"name": "data", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def service(plan: Plan) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": labels.metadata(NAME, plan.run_id, plan.namespace, "kafka"),
        "spec": {
            "selector": labels.selector_labels(plan.run_id, "kafka"),
            "ports": [
                {"name": "plain", "port": PLAIN_PORT, "targetPort": "plain", "protocol": "TCP"}
            ],
        },
    }


def kafka_objects(plan: Plan, client_port: int) -> list[Manifest]:
    """In apply order: configuration, Service, the broker (waited for until ready)."""
    return [configmap(plan, client_port), service(plan), statefulset(plan)]
