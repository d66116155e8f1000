"""`autoscaler: {policy: hpa}` on a cluster: Kubernetes' own HorizontalPodAutoscaler on CPU.

The section's fields become the HPA that `platform.kubernetes.autoscaling` renders: min and
max replicas, the CPU target (`target_utilisation` 0.7 → averageUtilization 70 % of the
workers' request) and the two stabilisation windows. The fields with no counterpart on an HPA
object are refused when the spec is checked (`spec.autoscale.check_autoscaler_on_kubernetes`).
The run then starts the workers clamped to [min, max], as locally, and the HPA decides.
"""

from __future__ import annotations

from scalelab.platform.kubernetes.config import Autoscaling, KubernetesSpec
from scalelab.spec.models import ExperimentSpec, YoloWorkload


def hpa_autoscaling(spec: ExperimentSpec) -> Autoscaling | None:
    """The HPA settings an `hpa` autoscaler section means (None: the section asks for none)."""
    scaler = spec.autoscaler
    if scaler is None or scaler.policy != "hpa" or not isinstance(spec.workload, YoloWorkload):
        return None
    return Autoscaling(
        enabled=True,
        min_replicas=max(1, scaler.min),
        max_replicas=scaler.max,
        cpu_utilization=max(1, round(scaler.target_utilisation * 100)),
        scale_up_window=min(scaler.stabilisation_up, 3600),
        scale_down_window=min(scaler.stabilisation_down, 3600),
    )


def with_autoscaler(settings: KubernetesSpec, spec: ExperimentSpec) -> KubernetesSpec:
    """The cluster settings with the autoscaler section's HPA in `autoscaling`."""
    found = hpa_autoscaling(spec)
    return settings if found is None else settings.model_copy(update={"autoscaling": found})


def starting_workers(spec: ExperimentSpec, workers: int) -> int | None:
    """With an autoscaler section the run starts `workload.workers` clamped to [min, max]
    (as locally); None without one."""
    scaler = spec.autoscaler
    return None if scaler is None else min(max(workers, scaler.min), scaler.max)
