"""Objects every run has (namespace, the resolved spec) and pieces shared by the pod builders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.config import Resources
from scalelab.platform.kubernetes.manifests import Manifest

if TYPE_CHECKING:
    from scalelab.platform.kubernetes.plan import Plan

RUN_AS = 10001
SPEC_DIR = "/etc/scalelab"
DATA_DIR = "/data"
MODELS_DIR = "/models"
METRICS_PORT = 9400
IMAGE_PATH = ":".join(
    ["/opt/scalelab/venv/bin", "/opt/scalelab/bin", "/usr/local/sbin", "/usr/local/bin"]
    + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
)


def namespace(plan: Plan) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": labels.metadata(plan.namespace, plan.run_id),
    }


def spec_configmap(plan: Plan) -> Manifest:
    """The resolved spec the components read (`--spec`), as the core writes it to spec.yaml."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": labels.metadata(labels.SPEC_CONFIGMAP, plan.run_id, plan.namespace),
        "data": {"spec.yaml": plan.resolved_spec},
    }


def pod_security() -> Manifest:
    """Pod-level: never root, the runtime's default seccomp profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> Manifest:
    """Container-level: no privilege escalation, no capabilities, read-only root filesystem."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def resources(spec: Resources) -> Manifest:
    """Requests and limits with unset amounts left out."""
    out: Manifest = {}
    for part in ("requests", "limits"):
        amounts = getattr(spec, part)
        chosen = {k: v for k, v in (("cpu", amounts.cpu), ("memory", amounts.memory)) if v}
        if chosen:
            out[part] = chosen
    return out


def volumes(plan: Plan) -> tuple[list[Manifest], list[Manifest]]:
    """(volumes, mounts): the spec read-only, /data and /tmp writable, the model PVC if any."""
    vols: list[Manifest] = [
        {"name": "spec", "configMap": {"name": labels.SPEC_CONFIGMAP}},
        {"name": "data", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[Manifest] = [
        {"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if plan.settings.model_pvc:
        claim = {"claimName": plan.settings.model_pvc, "readOnly": True}
        vols.append({"name": "models", "persistentVolumeClaim": claim})
        mounts.append({"name": "models", "mountPath": MODELS_DIR, "readOnly": True})
    return vols, mounts


def environment(extra: dict[str, str]) -> list[Manifest]:
    env: list[Manifest] = [
        {"name": "PATH", "value": IMAGE_PATH},  # the image's venv first (`python`, `scalelab`)
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SCALELAB_METRICS_ADDR", "value": "0.0.0.0"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "MPLCONFIGDIR", "value": "/tmp/matplotlib"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    return env + [{"name": k, "value": v} for k, v in sorted(extra.items())]
