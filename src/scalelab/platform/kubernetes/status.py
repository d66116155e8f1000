"""What the cluster says about the run: objects ready (from their status, never a sleep),
pods failed or stuck (what the local platform learns from an exit code), and
Prometheus ready and scraping the run's targets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx

from scalelab.errors import ComponentError
from scalelab.platform.kubernetes.api import Cluster, describe
from scalelab.platform.kubernetes.errors import PrerequisiteError
from scalelab.platform.kubernetes.manifests import Manifest

# -- readiness --------------------------------------------------------------
# A Job's terminal failure: `Failed`, announced first as `FailureTarget` since Kubernetes 1.31.
JOB_FAILED = ("Failed", "FailureTarget")


def condition(obj: Manifest, kind: str) -> bool:
    return true_condition(obj, kind) is not None


def true_condition(obj: Manifest, kind: str) -> Manifest | None:
    """The object's condition of that type when its status is True."""
    return next(
        (
            c
            for c in (obj.get("status") or {}).get("conditions", [])
            if c.get("type") == kind and c.get("status") == "True"
        ),
        None,
    )


def deployment_ready(obj: Manifest) -> bool:
    """The latest generation rolled out and every replica available."""
    status = obj.get("status") or {}
    wanted = (obj.get("spec") or {}).get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("availableReplicas", 0) >= wanted
    )


def statefulset_ready(obj: Manifest) -> bool:
    """The latest generation observed and every replica ready (the broker accepts clients)."""
    status = obj.get("status") or {}
    wanted = (obj.get("spec") or {}).get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
        and status.get("readyReplicas", 0) >= wanted
    )


def job_running(obj: Manifest) -> bool:
    """A Job's pod is up and ready, or the Job completed.

    A Job that failed for good (backoffLimit exhausted, deadline passed) raises
    ComponentError naming it and the controller's reason; waiting on would only
    time out. A Job with failed pods that is still retrying is not ready: a retried
    producer would send its load a second time, so it is never taken as running.
    """
    failed = next(filter(None, (true_condition(obj, kind) for kind in JOB_FAILED)), None)
    if failed is not None:
        why = ": ".join(filter(None, (failed.get("reason"), failed.get("message"))))
        raise ComponentError(describe(obj), f"failed ({why or 'no reason given'})")
    status = obj.get("status") or {}
    if condition(obj, "Complete") or status.get("succeeded"):
        return True
    if status.get("failed"):
        return False
    return bool(status.get("ready"))


def strimzi_ready(obj: Manifest) -> bool:
    """Kafka and KafkaTopic report a Ready condition for their current generation."""
    status = obj.get("status") or {}
    observed = status.get("observedGeneration", 0)
    return condition(obj, "Ready") and observed >= obj["metadata"].get("generation", 0)


def namespace_active(obj: Manifest) -> bool:
    return (obj.get("status") or {}).get("phase") == "Active"


def pod_ready(pod: Manifest) -> bool:
    return condition(pod, "Ready")


def exists(obj: Manifest) -> bool:
    return True


READY = {
    "Deployment": deployment_ready,
    "StatefulSet": statefulset_ready,
    "Job": job_running,
    "Kafka": strimzi_ready,
    "KafkaTopic": strimzi_ready,
    "Namespace": namespace_active,
}


def predicate(kind: str) -> Callable[[Manifest], bool]:
    return READY.get(kind, exists)


def waits_for(kind: str) -> bool:
    """Kinds whose readiness a run waits for after applying them."""
    return kind in READY


# -- health -----------------------------------------------------------------
# Waiting reasons that never resolve by themselves.
STUCK = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)


def pod_problem(pod: Manifest) -> str | None:
    """Why a pod has failed, or None while it is fine (running, starting, or held by podwrap)."""
    status = pod.get("status") or {}
    containers = (_container_problem(c) for c in status.get("containerStatuses", []))
    problem = next(filter(None, containers), None)
    if status.get("phase") == "Failed":
        why = " ".join(filter(None, (status.get("reason"), status.get("message"))))
        return f"pod failed: {why or problem or 'no reason given'}"
    return problem


def pending_reason(pod: Manifest) -> str | None:
    """Why a pod is not running yet (unschedulable, pulling), for timeout messages."""
    status = pod.get("status") or {}
    for condition in status.get("conditions", []):
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"not scheduled: {condition.get('message', '')}"
    for container in status.get("containerStatuses", []):
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            return f"waiting: {waiting.get('reason', '')} {waiting.get('message', '')}".strip()
    return None


def _container_problem(container: Manifest) -> str | None:
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in STUCK:
        return f"{waiting['reason']}: {waiting.get('message', '')}".strip()
    terminated = state.get("terminated") or (container.get("lastState") or {}).get("terminated")
    if terminated and terminated.get("exitCode", 0) != 0:
        reason = terminated.get("reason", "")
        return f"exited with code {terminated['exitCode']} {reason}".strip()
    if container.get("restartCount", 0) > 0:
        return f"restarted {container['restartCount']} time(s)"
    return None


def restarted(pod: Manifest) -> bool:
    return any(
        c.get("restartCount", 0) > 0 for c in (pod.get("status") or {}).get("containerStatuses", [])
    )


def started_at(pod: Manifest) -> tuple[str, str]:
    """Sort key: creation time, then name."""
    meta = pod["metadata"]
    return str(meta.get("creationTimestamp", "")), meta["name"]


# -- prometheus -------------------------------------------------------------
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
