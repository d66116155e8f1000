"""`autoscaler:` on a cluster: `hpa` renders Kubernetes' HPA from the section, the fields
without a meaning there are refused naming their path, one owner of the replicas; the other
policies' rescales wait for the Deployment's pods before the group is asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scalelab.autoscale.controller import Controller
from scalelab.autoscale.policy import make_policy
from scalelab.autoscale.signals import Signals
from scalelab.errors import SpecError
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.plan import Plan
from scalelab.platform.kubernetes.scaling import NEW_SIZE
from scalelab.spec.autoscale import AutoscalerSpec, cpu_cores
from scalelab.spec.loader import dump_spec, load_spec
from scalelab.spec.models import ExperimentSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_ID = "20260101T000000Z-kubernetes-quickstart-abc123"
HPA = "autoscaler={policy: hpa, min: 1, max: 3, target_utilisation: 0.5, stabilisation_down: 30}"


def spec(*overrides: str) -> ExperimentSpec:
    return load_spec(EXAMPLES / "kubernetes.yaml", ["broker.partitions=4", *overrides])


def problems(*overrides: str) -> str:
    with pytest.raises(SpecError) as raised:
        spec(*overrides)
    return str(raised.value)


def objects(built: ExperimentSpec) -> dict[str, dict[str, Any]]:
    plan = Plan.for_spec(built, RUN_ID)
    return {o["kind"]: o for o in plan.component_objects("worker")}


def test_hpa_on_a_cluster_renders_the_hpa_from_the_section() -> None:
    found = objects(spec(HPA, "workload.workers=2"))
    hpa = found["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == labels.WORKERS
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)
    target = hpa["metrics"][0]["resource"]
    assert (target["name"], target["target"]["averageUtilization"]) == ("cpu", 50)
    assert hpa["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 30
    # the run starts at workload.workers clamped to [min, max], as locally
    assert found["Deployment"]["spec"]["replicas"] == 2


def test_the_starting_scale_is_clamped_to_the_autoscalers_bounds() -> None:
    clamped = "autoscaler={policy: threshold, lag_high: 50, min: 2, max: 3}"
    deployment = objects(spec(clamped, "workload.workers=1"))["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert "HorizontalPodAutoscaler" not in objects(spec(clamped))  # only hpa renders one


@pytest.mark.parametrize(
    ("field", "why"),
    [
        ("interval: 10s", "sync period"),
        ("window: 30s", "metrics-server"),
        ("cooldown: 20s", "no cooldown"),
        ("tolerance: 0.2", "controller-manager's tolerance"),
        ("cpu_per_worker: 2", "platform.kubernetes.resources.worker.requests.cpu"),
        ("min: 0", "at least 1"),
        ("stabilisation_down: 2h", "at most 3600"),
    ],
)
def test_hpa_fields_without_a_meaning_on_a_cluster_are_refused_by_path(
    field: str, why: str
) -> None:
    name = field.split(":")[0]
    found = problems(f"autoscaler={{policy: hpa, {field}}}")
    assert f"autoscaler.{name}" in found and why in found


def test_hpa_fields_that_mean_what_the_cluster_does_are_accepted() -> None:
    same = "autoscaler={policy: hpa, tolerance: 0.1, cpu_per_worker: 0.25, cooldown: 0}"
    assert spec(same).autoscaler is not None  # the example's worker request is 250m


def test_a_runs_resolved_spec_with_every_default_written_out_runs_again(tmp_path: Path) -> None:
    resolved = tmp_path / "spec.yaml"
    resolved.write_text(dump_spec(spec(HPA)))
    again = load_spec(resolved)
    assert again.autoscaler is not None and again.autoscaler.policy == "hpa"


def test_hpa_needs_the_workers_cpu_request() -> None:
    found = problems(HPA, "platform.kubernetes.resources.worker.requests.cpu=null")
    assert "platform.kubernetes.resources.worker.requests.cpu" in found


def test_two_owners_of_the_replicas_are_refused() -> None:
    for policy in ("hpa", "ds2"):
        found = problems(
            f"autoscaler={{policy: {policy}}}", "platform.kubernetes.autoscaling.enabled=true"
        )
        assert "platform.kubernetes.autoscaling.enabled" in found and "fight" in found


def test_locally_the_hpa_keeps_its_emulation_fields() -> None:
    local = load_spec(
        EXAMPLES / "autoscale-yolo.yaml", ["autoscaler.policy=hpa", "autoscaler.cooldown=20"]
    )
    assert local.autoscaler is not None and local.autoscaler.cooldown == 20


def test_a_flink_schedule_and_an_autoscaler_are_refused_when_the_spec_is_checked() -> None:
    with pytest.raises(SpecError) as raised:
        load_spec(
            EXAMPLES / "flink-frames.yaml",
            ["autoscaler={policy: threshold, lag_high: 10}"],
        )
    assert "workload.schedule" in str(raised.value) or "workload.strategy" in str(raised.value)


def test_cpu_quantities_in_cores() -> None:
    assert (cpu_cores("250m"), cpu_cores("2"), cpu_cores("1.5")) == (0.25, 2.0, 1.5)


def test_the_hpa_rescale_message_is_read_for_size_and_reason() -> None:
    found = NEW_SIZE.match(
        "New size: 3; reason: cpu resource utilization (percentage of request) above target"
    )
    assert found is not None and found.group(1) == "3" and "above target" in found.group(2)


class Deployment:
    """An actuator whose new pods take a while to be ready (`settled`), as a Deployment's."""

    def __init__(self) -> None:
        self.n = 1
        self.ready_at: int | None = None

    def scale_to(self, n: int) -> None:
        self.n, self.ready_at = n, None

    def current(self) -> int:
        return self.n

    def settled(self, target: int) -> int | None:
        return self.ready_at


def test_a_rescale_waits_for_the_pods_then_the_group_and_keeps_both_times() -> None:
    sp = AutoscalerSpec(policy="threshold", lag_high=10, cooldown=0)
    pods = Deployment()
    members = [1]
    ctl = Controller(sp, make_policy(sp), pods, lambda: (members[0], 4), partitions=4)
    assert ctl.decide(Signals(0, 1, lag=100)).action == "scale-up"
    members[0] = 2  # the group would say yes, but the pods are not all ready
    assert ctl.follow(1) is None
    pods.ready_at = 123
    closed = ctl.follow(2)
    assert closed is not None and closed.effective_ns == 123
    assert closed.completed_ns is not None and closed.completed_ns > 123
