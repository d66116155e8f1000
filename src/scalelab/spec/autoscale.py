"""The `autoscaler:` spec section: which policy scales the workers, within which bounds, how often.

One flat section: the policy picks the knobs it reads (HPA's utilisation target and
stabilisation windows, DS2's catch-up time, the thresholds, the schedule's steps);
the others keep their defaults. Kept beside the section base, not in `models.py`,
so the autoscaler package and the spec share it without importing the whole spec.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from scalelab.errors import SpecProblem
from scalelab.spec.section import Section
from scalelab.spec.types import Duration

if TYPE_CHECKING:  # models.py imports this module for the section
    from scalelab.spec.models import ExperimentSpec

POLICIES = ("hpa", "ds2", "transscale", "threshold", "schedule")
DAY = 86_400.0
Span = Annotated[float, Duration(maximum=DAY)]  # seconds or "15s"
SpanOrZero = Annotated[float, Duration(maximum=DAY, allow_zero=True)]


class ScaleStep(Section):
    """A fixed change of the schedule policy: `replicas` from `at` seconds into the load."""

    at: SpanOrZero = Field(description="Seconds after the autoscaler starts.")
    replicas: int = Field(ge=0, le=256, description="Replicas from then on.")


class AutoscalerSpec(Section):
    """Scale the workers during the run with a named policy; every decision is recorded."""

    policy: Literal["hpa", "ds2", "transscale", "threshold", "schedule"] = Field(
        description="'hpa': desired = ceil(current × utilisation ÷ target) on worker CPU, with "
        "stabilisation windows; 'ds2': true rate per worker from busy time, target = arrival + "
        "lag ÷ catch-up; 'transscale': back-pressure twice above its threshold scales up by "
        "one, at or below it scales down to the least replicas its fitted model says suffice; "
        "'threshold': lag/latency thresholds; 'schedule': fixed changes at given times."
    )
    min: int = Field(1, ge=0, le=256, description="Fewest replicas.")
    max: int = Field(4, ge=1, le=256, description="Most replicas.")
    interval: Span = Field(5.0, description="Seconds between decisions.")
    cooldown: SpanOrZero = Field(
        10.0, description="Seconds after a rescale completes before the next."
    )
    window: Span = Field(15.0, description="Range of the Prometheus rate() the inputs use.")
    target_utilisation: float = Field(
        0.7, gt=0, le=1, description="CPU (hpa) or busy-time (ds2, transscale) target."
    )
    tolerance: float = Field(
        0.1, ge=0, lt=1, description="hpa: a usage ratio within 1 ± tolerance changes nothing."
    )
    stabilisation_up: SpanOrZero = Field(
        0.0, description="hpa/ds2: scale up to the least wanted in this window."
    )
    stabilisation_down: SpanOrZero = Field(
        60.0, description="Scale down only to the most wanted in this window."
    )
    cpu_per_worker: float = Field(
        1.0, gt=0, le=256, description="hpa: the CPU request a worker's usage is measured against."
    )
    catch_up: Span = Field(30.0, description="ds2: seconds in which the lag must be worked off.")
    backpressure: float = Field(
        0.5, gt=0, le=1, description="transscale: busy fraction counted as back-pressure."
    )
    lag_high: int | None = Field(
        None, ge=0, le=10**12, description="threshold: scale up above this lag."
    )
    lag_low: int | None = Field(
        None, ge=0, le=10**12, description="threshold: scale down below this lag."
    )
    latency_high: float | None = Field(
        None, gt=0, le=DAY, description="threshold: scale up above this p95 latency (s)."
    )
    latency_low: float | None = Field(
        None, gt=0, le=DAY, description="threshold: scale down below this p95 latency (s)."
    )
    step: int = Field(1, ge=1, le=64, description="threshold: replicas added or removed at once.")
    steps: list[ScaleStep] = Field(
        default_factory=list, description="schedule: the fixed changes, in time order."
    )

    @model_validator(mode="after")
    def _coherent(self) -> AutoscalerSpec:
        if self.min > self.max:
            raise ValueError(f"autoscaler.min ({self.min}) is above max ({self.max})")
        if self.policy == "schedule" and not self.steps:
            raise ValueError("policy 'schedule' needs steps: [{at, replicas}, ...]")
        if self.policy == "threshold" and self.lag_high is None and self.latency_high is None:
            raise ValueError("policy 'threshold' needs lag_high or latency_high")
        return self


PolicyName = Literal["hpa", "ds2", "transscale", "threshold", "schedule"]


# -- named checks on the whole spec (registered in spec/checks.py) ----------------------------
# On a cluster `policy: hpa` is Kubernetes' own HorizontalPodAutoscaler on CPU: min, max,
# target_utilisation and the two stabilisation windows become its fields. The fields below
# change what the local emulation does but have no counterpart on one HPA object (the HPA
# decides every 15 s, the controller-manager's sync period; it reads metrics-server's window;
# its tolerance is a controller-manager flag; it measures CPU against the pod's request):
# given a value of their own, they are refused rather than silently ignored (their defaults
# pass, so a run's resolved spec.yaml, every default written out, runs again).
HPA_UNMAPPED = {
    "interval": "the cluster's HPA decides at the controller-manager's sync period (15 s), "
    "not per object",
    "window": "the cluster's HPA reads metrics-server's CPU window, not a Prometheus rate()",
    "cooldown": "the cluster's HPA has no cooldown; its stabilisation windows "
    "(stabilisation_up, stabilisation_down) are the delay it keeps",
}
HPA_TOLERANCE = 0.1  # the controller-manager's --horizontal-pod-autoscaler-tolerance default
HPA_MAX_WINDOW_S = 3600  # autoscaling/v2 stabilizationWindowSeconds' upper bound


def check_autoscaler_on_kubernetes(spec: ExperimentSpec) -> list[SpecProblem]:
    """An autoscaler on a cluster: one owner of the workers' replicas, and `hpa` fields the
    cluster's HPA can honour."""
    scaler = spec.autoscaler
    if scaler is None or spec.platform.kind != "kubernetes":
        return []
    problems = []
    settings = spec.platform.kubernetes
    if settings.autoscaling.enabled:
        problems.append(
            SpecProblem(
                "platform.kubernetes.autoscaling.enabled",
                f"the autoscaler section (policy {scaler.policy}) already scales the workers; "
                "two autoscalers would fight over the Deployment's replicas: give one "
                "(autoscaler: {policy: hpa} renders the same HPA)",
                value=True,
            )
        )
    if scaler.policy == "hpa":
        problems += _hpa_problems(scaler, settings.resources.worker.requests.cpu)
    return problems


def _hpa_problems(scaler: AutoscalerSpec, cpu_request: str | None) -> list[SpecProblem]:
    problems = [
        SpecProblem(f"autoscaler.{name}", f"means nothing on a cluster: {why}", value=value)
        for name, why in HPA_UNMAPPED.items()
        if (value := getattr(scaler, name)) != _default(name)
        and not (name == "cooldown" and value == 0)
    ]
    if scaler.tolerance != HPA_TOLERANCE:
        problems.append(
            SpecProblem(
                "autoscaler.tolerance",
                f"the cluster's HPA uses the controller-manager's tolerance ({HPA_TOLERANCE}); "
                "it is no field of the HPA object",
                value=scaler.tolerance,
            )
        )
    if scaler.min < 1:
        problems.append(
            SpecProblem("autoscaler.min", "the cluster's HPA keeps at least 1 replica", value=0)
        )
    for name in ("stabilisation_up", "stabilisation_down"):
        if getattr(scaler, name) > HPA_MAX_WINDOW_S:
            problems.append(
                SpecProblem(
                    f"autoscaler.{name}",
                    f"the HPA's stabilisation window is at most {HPA_MAX_WINDOW_S} s",
                    value=getattr(scaler, name),
                )
            )
    problems += _cpu_problems(scaler, cpu_request)
    return problems


def _cpu_problems(scaler: AutoscalerSpec, cpu_request: str | None) -> list[SpecProblem]:
    """The HPA measures a pod's CPU against its request: there must be one, and
    `cpu_per_worker` (the local emulation's request), if given, must be that request."""
    path = "platform.kubernetes.resources.worker.requests.cpu"
    if not cpu_request:
        return [SpecProblem(path, "the cluster's HPA on CPU needs the workers' CPU request")]
    given = scaler.cpu_per_worker
    if given != _default("cpu_per_worker") and not math.isclose(given, cpu_cores(cpu_request)):
        return [
            SpecProblem(
                "autoscaler.cpu_per_worker",
                f"on a cluster the HPA measures CPU against {path} ({cpu_request}); "
                "set that, or make both the same",
                value=scaler.cpu_per_worker,
            )
        ]
    return []


def _default(name: str) -> object:
    return AutoscalerSpec.model_fields[name].default


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity in cores: '500m' → 0.5, '2' → 2.0."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def check_autoscaler_flink_schedule(spec: ExperimentSpec) -> list[SpecProblem]:
    """A Flink job's parallelism has one owner: the schedule (or strategy), or the autoscaler."""
    workload = spec.workload
    if spec.autoscaler is None or getattr(workload, "kind", None) != "flink":
        return []
    for path in ("schedule", "strategy"):
        if getattr(workload, path, None):
            return [
                SpecProblem(
                    f"workload.{path}",
                    "the workload's parallelism "
                    f"{path} and the autoscaler would both rescale the job: give one",
                )
            ]
    return []
