"""Errors of the Kubernetes platform; each keeps what went wrong as attributes."""

from __future__ import annotations

from scalelab.errors import ScalelabError


class KubernetesError(ScalelabError):
    """Base of the Kubernetes platform's errors."""


class ClusterUnreachableError(KubernetesError):
    """No cluster answers at the configured kubeconfig/context; nothing was applied."""

    exit_code = 4

    def __init__(self, server: str, reason: str):
        self.server = server
        self.reason = reason
        super().__init__(
            f"no Kubernetes cluster reachable at {server}: {reason}. Nothing was applied. "
            "Check platform.kubeconfig / platform.context (or KUBECONFIG) and `kubectl get nodes`."
        )


class PrerequisiteError(KubernetesError):
    """The cluster lacks something the run needs (an operator's CRDs); names how to add it."""

    exit_code = 4

    def __init__(self, missing: str, hint: str):
        self.missing = missing
        self.hint = hint
        super().__init__(f"the cluster has no {missing}: {hint}")


class NamespaceBusyError(KubernetesError):
    """Another run's objects are still in the namespace."""

    exit_code = 4

    def __init__(self, namespace: str, other_runs: list[str]):
        self.namespace = namespace
        self.other_runs = other_runs
        super().__init__(
            f"namespace {namespace} still holds objects of run(s) {', '.join(other_runs)}; wait "
            f"for them to end or remove them with `scalelab cluster clean --namespace {namespace}`"
        )


class ManifestError(KubernetesError):
    """Rendered manifests that do not validate."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid manifests:\n" + "\n".join(problems))


class ApiError(KubernetesError):
    """The API server refused or failed a request about one object."""

    def __init__(self, action: str, what: str, status: int | None, reason: str):
        self.action = action
        self.what = what
        self.status = status
        self.reason = reason
        super().__init__(f"{action} {what}: {status or ''} {reason}".replace("  ", " "))
