"""prometheus-operator `PodMonitor` and `ServiceMonitor` objects (monitoring.coreos.com/v1).

Every target gets the labels ARCHITECTURE.md names: `run_id` (the full id,
from a pod annotation), `component` and `instance` (the pod's name), plus
`node` for joining with node-level and Kepler metrics.
"""

from __future__ import annotations

from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.manifests import Manifest

API_VERSION = "monitoring.coreos.com/v1"


def scrape_interval(seconds: float) -> str:
    """Prometheus duration for the spec's scrape interval ('1s', '500ms')."""
    millis = max(1, round(seconds * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _meta_label(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def relabelings() -> list[Manifest]:
    pairs = (
        (f"__meta_kubernetes_pod_annotation_{_meta_label(labels.RUN_ID_ANNOTATION)}", "run_id"),
        (f"__meta_kubernetes_pod_label_{_meta_label(labels.COMPONENT)}", "component"),
        ("__meta_kubernetes_pod_name", "instance"),
        ("__meta_kubernetes_pod_node_name", "node"),
    )
    return [
        {"sourceLabels": [source], "targetLabel": target, "action": "replace"}
        for source, target in pairs
    ]


def _endpoint(port: str, interval: str) -> Manifest:
    return {
        "port": port,
        "path": "/metrics",
        "interval": interval,
        "scrapeTimeout": interval,
        "relabelings": relabelings(),
    }


def pod_monitor(
    name: str, run_id: str, namespace: str, selector: dict[str, str], port: str, interval: str
) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "PodMonitor",
        "metadata": labels.metadata(name, run_id, namespace),
        "spec": {
            "selector": {"matchLabels": selector},
            "podMetricsEndpoints": [_endpoint(port, interval)],
        },
    }


def service_monitor(
    name: str, run_id: str, namespace: str, selector: dict[str, str], port: str, interval: str
) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": labels.metadata(name, run_id, namespace),
        "spec": {
            "selector": {"matchLabels": selector},
            "endpoints": [_endpoint(port, interval)],
        },
    }
