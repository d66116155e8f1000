"""When an object is ready, read from its status (never from a sleep)."""

from __future__ import annotations

from collections.abc import Callable

from scalelab.platform.kubernetes.manifests import Manifest


def condition(obj: Manifest, kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions", [])
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


def job_running(obj: Manifest) -> bool:
    """A Job's pod is up and ready, or the Job already ended."""
    status = obj.get("status") or {}
    return bool(status.get("ready") or status.get("succeeded") or status.get("failed"))


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
