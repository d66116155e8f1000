"""The cluster's Prometheus (kube-prometheus-stack), reached through a port-forward."""

from __future__ import annotations

from collections import Counter

import httpx

from scalelab.platform.kubernetes.client import Cluster
from scalelab.platform.kubernetes.errors import PrerequisiteError
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.readiness import pod_ready

PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
PROMETHEUS_PODS = "app.kubernetes.io/name=prometheus"
GRAFANA_PODS = "app.kubernetes.io/name=grafana"


def find_pod(cluster: Cluster, namespace: str, selector: str, what: str) -> str:
    """The name of a ready pod matching the selector, or a PrerequisiteError naming the fix."""
    pods: list[Manifest] = cluster.list("v1", "Pod", namespace, selector)
    ready = sorted(p["metadata"]["name"] for p in pods if pod_ready(p))
    if not ready:
        raise PrerequisiteError(
            f"ready {what} in namespace {namespace}",
            "run `scalelab cluster monitoring install` and wait for it",
        )
    return ready[0]


def is_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def scraped_roles(url: str, run_id: str) -> Counter[str]:
    """How many of the run's targets per component Prometheus has scraped successfully."""
    try:
        response = httpx.get(f"{url}/api/v1/targets", params={"state": "active"}, timeout=5.0)
        active = response.json()["data"]["activeTargets"]
    except (httpx.HTTPError, ValueError, KeyError):
        return Counter()
    return Counter(
        t["labels"].get("component", "")
        for t in active
        if t["labels"].get("run_id") == run_id and t.get("health") == "up"
    )


def missing_targets(url: str, run_id: str, expected: dict[str, int]) -> dict[str, int]:
    """component -> targets still missing (expected minus scraped and up)."""
    seen = scraped_roles(url, run_id)
    return {role: count - seen[role] for role, count in expected.items() if seen[role] < count}
