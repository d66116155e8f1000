"""Structural checks of the custom resources scalelab writes (Strimzi, prometheus-operator,
Chaos Mesh).

kubernetes-validate only knows the built-in kinds. For these, the fields
come from the Strimzi v1beta2 API reference (Kafka, KafkaNodePool,
KafkaTopic), prometheus-operator's monitoring.coreos.com/v1 API
(PodMonitor, ServiceMonitor) and Chaos Mesh's chaos-mesh.org/v1alpha1 API
(PodChaos, NetworkChaos, StressChaos) and the Flink Kubernetes Operator's
flink.apache.org/v1beta1 FlinkDeployment: required fields must be there, and no
field outside the ones listed may appear (a typo fails here, not on the cluster).
"""

from __future__ import annotations

from typing import Any

# A shape: {"required": [...], "keys": {name: shape or None (any value)}, "items": shape}
Shape = dict[str, Any]

_RELABEL: Shape = {
    "keys": dict.fromkeys(
        ("sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action")
    )
}
_ENDPOINT: Shape = {
    "keys": {
        **dict.fromkeys(
            (
                "port",
                "portNumber",
                "targetPort",
                "path",
                "scheme",
                "params",
                "interval",
                "scrapeTimeout",
                "honorLabels",
                "honorTimestamps",
                "metricRelabelings",
            )
        ),
        "relabelings": {"items": _RELABEL},
    }
}
_SELECTOR: Shape = {"keys": dict.fromkeys(("matchLabels", "matchExpressions"))}
_MONITOR_COMMON = dict.fromkeys(
    (
        "jobLabel",
        "namespaceSelector",
        "sampleLimit",
        "targetLabels",
        "podTargetLabels",
        "attachMetadata",
        "scrapeProtocols",
    )
)
_LISTENER: Shape = {
    "required": ["name", "port", "type", "tls"],
    "keys": {
        **dict.fromkeys(("name", "port", "type", "tls", "authentication", "networkPolicyPeers")),
        "configuration": {
            "keys": {
                **dict.fromkeys(
                    ("bootstrap", "useServiceDnsDomain", "preferredNodePortAddressType")
                ),
                "brokers": {
                    "items": {
                        "required": ["broker"],
                        "keys": dict.fromkeys(
                            (
                                "broker",
                                "advertisedHost",
                                "advertisedPort",
                                "host",
                                "nodePort",
                                "labels",
                                "annotations",
                            )
                        ),
                    }
                },
            }
        },
    },
}
_VOLUME: Shape = {
    "required": ["id", "type"],
    "keys": dict.fromkeys(
        ("id", "type", "size", "sizeLimit", "class", "deleteClaim", "kraftMetadata", "selector")
    ),
}

CHAOS_MESH = "chaos-mesh.org/v1alpha1"
_CHAOS_SELECTOR: Shape = {
    "keys": dict.fromkeys(
        (
            "namespaces",
            "labelSelectors",
            "expressionSelectors",
            "annotationSelectors",
            "fieldSelectors",
            "podPhaseSelectors",
            "nodes",
            "nodeSelectors",
            "pods",
        )
    )
}
_CHAOS_COMMON = {
    **dict.fromkeys(("mode", "value", "containerNames", "duration")),
    "selector": _CHAOS_SELECTOR,
}
_NETWORK_CHAOS: Shape = {
    "required": ["action", "mode", "selector"],
    "keys": {
        **_CHAOS_COMMON,
        **dict.fromkeys(
            (
                "action",
                "direction",
                "externalTargets",
                "device",
                "targetDevice",
                "duplicate",
                "corrupt",
            )
        ),
        "target": {
            "required": ["mode", "selector"],
            "keys": {**dict.fromkeys(("mode", "value")), "selector": _CHAOS_SELECTOR},
        },
        "delay": {"keys": dict.fromkeys(("latency", "jitter", "correlation", "reorder"))},
        "loss": {"required": ["loss"], "keys": dict.fromkeys(("loss", "correlation"))},
        "bandwidth": {
            "required": ["rate", "limit", "buffer"],
            "keys": dict.fromkeys(("rate", "limit", "buffer", "peakrate", "minburst")),
        },
    },
}
_STRESS_CHAOS: Shape = {
    "required": ["mode", "selector"],
    "keys": {
        **_CHAOS_COMMON,
        "stressngStressors": None,
        "stressors": {
            "keys": {
                "cpu": {
                    "required": ["workers"],
                    "keys": dict.fromkeys(("workers", "load", "options")),
                },
                "memory": {
                    "required": ["workers"],
                    "keys": dict.fromkeys(("workers", "size", "options", "oomScoreAdj")),
                },
            }
        },
    },
}

# The Flink Kubernetes Operator's flink.apache.org/v1beta1 FlinkDeployment (operator 1.13).
_FLINK_ROLE: Shape = {
    "keys": {
        "replicas": None,
        "resource": {"keys": dict.fromkeys(("cpu", "memory", "ephemeralStorage"))},
        "podTemplate": None,
    }
}
_FLINK_DEPLOYMENT: Shape = {
    "required": ["image", "flinkVersion", "jobManager", "taskManager"],
    "keys": {
        **dict.fromkeys(
            (
                "image",
                "imagePullPolicy",
                "serviceAccount",
                "flinkVersion",
                "ingress",
                "podTemplate",
                "job",
                "restartNonce",
                "flinkConfiguration",
                "logConfiguration",
                "mode",
            )
        ),
        "jobManager": _FLINK_ROLE,
        "taskManager": _FLINK_ROLE,
    },
}

SHAPES: dict[tuple[str, str], Shape] = {
    ("kafka.strimzi.io/v1beta2", "Kafka"): {"required": ["kafka"], "keys": {
        "kafka": {"required": ["listeners"], "keys": {
            **dict.fromkeys(("version", "metadataVersion", "config", "metricsConfig",
                             "authorization", "logging", "rack", "template", "resources",
                             "jvmOptions")),
            "listeners": {"items": _LISTENER},
        }},
        **dict.fromkeys(("entityOperator", "kafkaExporter", "cruiseControl", "clusterCa",
                         "clientsCa", "maintenanceTimeWindows")),
    }},
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): {"required": ["replicas", "roles", "storage"],
        "keys": {
            **dict.fromkeys(("replicas", "roles", "resources", "jvmOptions", "template")),
            "storage": {"required": ["type"], "keys": {"type": None,
                                                       "volumes": {"items": _VOLUME}}},
        }},
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): {"required": ["partitions", "replicas"],
        "keys": dict.fromkeys(("topicName", "partitions", "replicas", "config"))},
    ("monitoring.coreos.com/v1", "PodMonitor"): {"required": ["selector"], "keys": {
        **_MONITOR_COMMON, "selector": _SELECTOR,
        "podMetricsEndpoints": {"items": _ENDPOINT}}},
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {"required": ["selector", "endpoints"],
        "keys": {**_MONITOR_COMMON, "selector": _SELECTOR, "endpoints": {"items": _ENDPOINT}}},
    (CHAOS_MESH, "PodChaos"): {"required": ["action", "mode", "selector"],
        "keys": {**_CHAOS_COMMON, "action": None, "gracePeriod": None}},
    (CHAOS_MESH, "NetworkChaos"): _NETWORK_CHAOS,
    (CHAOS_MESH, "StressChaos"): _STRESS_CHAOS,
    ("flink.apache.org/v1beta1", "FlinkDeployment"): _FLINK_DEPLOYMENT,
}  # fmt: skip

CLUSTER_LABEL_KINDS = ("KafkaNodePool", "KafkaTopic")


def is_custom(obj: dict[str, Any]) -> bool:
    return (obj.get("apiVersion"), obj.get("kind")) in SHAPES


def check_custom(obj: dict[str, Any]) -> list[str]:
    """Problems of one custom resource, as 'Kind/name: path: what'."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if key not in SHAPES:
        return [f"{where}: unknown custom resource {key[0]} {key[1]}"]
    problems = _check(obj.get("spec"), SHAPES[key], "spec")
    if not obj.get("metadata", {}).get("name"):
        problems.append("metadata.name: missing")
    if obj["kind"] in CLUSTER_LABEL_KINDS and "strimzi.io/cluster" not in obj["metadata"].get(
        "labels", {}
    ):
        problems.append("metadata.labels: strimzi.io/cluster is required")
    return [f"{where}: {p}" for p in problems]


def _check(value: Any, shape: Shape, path: str) -> list[str]:
    if "items" in shape:
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [
            p for i, item in enumerate(value) for p in _check(item, shape["items"], f"{path}[{i}]")
        ]
    if not isinstance(value, dict):
        return [f"{path}: expected an object"]
    problems = [
        f"{path}.{name}: required" for name in shape.get("required", ()) if name not in value
    ]
    keys: dict[str, Shape | None] = shape.get("keys", {})
    for name, item in value.items():
        if name not in keys:
            problems.append(f"{path}.{name}: unknown field")
        elif keys[name] is not None:
            problems += _check(item, keys[name], f"{path}.{name}")  # type: ignore[arg-type]
    return problems
