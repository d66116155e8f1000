"""When an object is ready, read from its status (never from a sleep)."""

from __future__ import annotations

from collections.abc import Callable

from scalelab.errors import ComponentError
from scalelab.platform.kubernetes.client import describe
from scalelab.platform.kubernetes.manifests import Manifest

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
