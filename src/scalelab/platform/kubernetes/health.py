"""Reading a pod's status for what the local platform learns from a process's exit code."""

from __future__ import annotations

from scalelab.platform.kubernetes.manifests import Manifest

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
