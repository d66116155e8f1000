"""Chaos faults on Kubernetes: the Chaos Mesh objects each fault renders as, the refusals
without Chaos Mesh, and the injectors' calls (no cluster: tests/cluster has the real run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scalelab.chaos import chaosmesh
from scalelab.chaos.injectors import ChaosError, Target
from scalelab.chaos.schedule import ChaosSchedule
from scalelab.platform.kubernetes import chaos, crds, labels, teardown
from scalelab.platform.kubernetes.errors import PrerequisiteError
from scalelab.platform.kubernetes.plan import Plan
from scalelab.spec.loader import load_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes.yaml"
RUN_ID = "20260101T000000Z-kubernetes-quickstart-abc123"
FAULTS = (
    "chaos=[{kind: restart-broker, at: 5, duration: 7}, {kind: cpu-stress, at: 6, cpus: 3},"
    " {kind: network-delay, at: 7, delay_ms: 200}, {kind: network-loss, at: 8, loss: 0.05},"
    " {kind: network-bandwidth, at: 9, bandwidth_kbps: 500}, {kind: pause-worker, at: 10,"
    " worker: 1}, {kind: fail-output, at: 11}]"
)


def plan(*overrides: str, operators: bool = False) -> Plan:
    spec = load_spec(EXAMPLE, [FAULTS, *overrides])
    return Plan.for_spec(spec, RUN_ID, lambda api_version, kind: operators, 31234)


def rendered(built: Plan) -> dict[str, dict[str, Any]]:
    objects = chaos.render(built)
    return {obj["metadata"]["name"].split("-", 1)[1].rsplit("-", 1)[0]: obj for obj in objects}


def test_every_chaos_mesh_object_is_valid_scoped_to_the_run_and_deleted_by_teardown() -> None:
    built = plan()
    objects = chaos.render(built)
    assert [o["kind"] for o in objects] == [
        "PodChaos",
        "StressChaos",
        "NetworkChaos",
        "NetworkChaos",
        "NetworkChaos",
    ]
    deleted = {(v, k) for group in teardown.DELETE_ORDER for v, k in group}
    for obj in objects:
        assert crds.check_custom(obj) == [], obj
        assert obj["apiVersion"] == "chaos-mesh.org/v1alpha1"
        assert (obj["apiVersion"], obj["kind"]) in deleted
        assert obj["metadata"]["namespace"] == "scalelab-quickstart"
        assert obj["metadata"]["labels"][labels.RUN_ID] == built.run_label
        assert obj["spec"]["mode"] == "all"
        assert obj["spec"]["selector"]["namespaces"] == ["scalelab-quickstart"]
        assert obj["spec"]["selector"]["labelSelectors"][labels.RUN_ID] == built.run_label
    assert teardown.DELETE_ORDER[0] == tuple((chaosmesh.API_VERSION, k) for k in chaosmesh.KINDS)


def test_restart_broker_kills_the_broker_container_in_place() -> None:
    obj = rendered(plan())["restart-broker"]
    spec = obj["spec"]
    assert spec["action"] == "container-kill"  # not pod-kill: the emptyDir log must survive
    assert spec["containerNames"] == ["kafka"]
    assert spec["selector"]["labelSelectors"] == {
        labels.RUN_ID: plan().run_label,
        labels.COMPONENT: "kafka",
    }
    assert spec["duration"] == "7s"


def test_restart_broker_on_strimzi_selects_the_node_pool_pods() -> None:
    spec = rendered(plan(operators=True))["restart-broker"]["spec"]
    assert spec["selector"]["labelSelectors"]["strimzi.io/pool-name"] == labels.KAFKA_POOL
    assert spec["selector"]["labelSelectors"]["strimzi.io/cluster"] == labels.KAFKA_CLUSTER


def test_cpu_stress_runs_its_stressors_in_the_worker_pods() -> None:
    spec = rendered(plan())["cpu-stress"]["spec"]
    assert spec["stressors"] == {"cpu": {"workers": 3, "load": 100}}
    assert spec["containerNames"] == ["worker"]
    assert spec["selector"]["labelSelectors"][labels.COMPONENT] == "worker"
    assert spec["duration"] == "10s"  # the fault's default


def test_network_faults_sit_between_the_clients_and_the_broker_both_ways() -> None:
    built = plan()
    objects = rendered(built)
    delay, loss, bandwidth = (objects[k]["spec"] for k in ("network-delay", "network-loss",
                                                          "network-bandwidth"))  # fmt: skip
    assert delay["action"] == "delay"
    assert delay["delay"] == {"latency": "200ms", "jitter": "0ms"}
    assert loss["action"] == "loss" and loss["loss"] == {"loss": "5"}  # percent
    assert bandwidth["action"] == "bandwidth"
    assert bandwidth["bandwidth"]["rate"] == "500000bps"  # bytes/s: Chaos Mesh's bps
    assert bandwidth["bandwidth"]["limit"] >= 500_000 and bandwidth["bandwidth"]["buffer"] > 0
    for spec in (delay, loss, bandwidth):
        assert spec["direction"] == "both"
        assert spec["selector"]["expressionSelectors"] == [
            {"key": labels.COMPONENT, "operator": "In", "values": ["worker", "producer", "tracker"]}
        ]
        assert spec["target"]["mode"] == "all"
        assert spec["target"]["selector"]["labelSelectors"][labels.COMPONENT] == "kafka"


def test_an_external_broker_is_an_outbound_external_target() -> None:
    built = plan("broker.bootstrap=kafka-a.example:9092,kafka-b.example:9092")
    spec = chaosmesh.render(built.spec.chaos[2], "d", chaos.scope(built))["spec"]
    assert spec["direction"] == "to"
    assert spec["externalTargets"] == ["kafka-a.example", "kafka-b.example"]
    assert "target" not in spec


def test_go_durations() -> None:
    assert [chaosmesh.go_duration(s) for s in (15, 0.2, 1.5, 0, 0.0004)] == [
        "15s",
        "200ms",
        "1500ms",
        "0s",
        "400us",
    ]


def test_chaos_mesh_has_no_object_for_a_pause_or_failing_output() -> None:
    for fault in plan().spec.chaos:
        if fault.kind in ("pause-worker", "fail-output"):
            assert not chaosmesh.renders(fault)
            with pytest.raises(ValueError, match=fault.kind):
                chaosmesh.render(fault, "x", chaos.scope(plan()))


# -- without Chaos Mesh --------------------------------------------------------------------------
class FakeCluster:
    """has_kind answers from a set; apply and delete are recorded (API calls, not a server)."""

    def __init__(self, kinds: set[tuple[str, str]] = frozenset()):  # type: ignore[assignment]
        self.kinds = set(kinds)
        self.calls: list[tuple[str, str]] = []

    def has_kind(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.kinds

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("apply", obj["metadata"]["name"]))
        return obj

    def delete(self, obj: dict[str, Any], grace_seconds: int | None = None) -> None:
        self.calls.append(("delete", obj["metadata"]["name"]))


MESH = {(chaosmesh.API_VERSION, kind) for kind in chaosmesh.KINDS}


def test_without_chaos_mesh_every_fault_it_needs_is_refused_at_preflight_named() -> None:
    built = plan("chaos=[{kind: network-delay, at: 20, delay_ms: 200}]")
    with pytest.raises(ChaosError) as caught:
        chaos.check_chaos(FakeCluster(), built)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("fault network-delay at 20 s: needs Chaos Mesh")
    assert "NetworkChaos" in message and "this cluster does not have it" in message
    chaos.check_chaos(FakeCluster(MESH), built)  # type: ignore[arg-type]


def test_what_the_api_does_itself_passes_without_chaos_mesh() -> None:
    built = plan(
        "chaos=[{kind: pause-worker, at: 5}, {kind: restart-broker, at: 9}, "
        "{kind: fail-output, at: 12}]"
    )
    chaos.check_chaos(FakeCluster(), built)  # type: ignore[arg-type]


def test_the_setting_forces_or_forbids_chaos_mesh() -> None:
    forced = plan("platform.kubernetes.chaos=chaos-mesh")
    with pytest.raises(PrerequisiteError, match="Chaos Mesh custom resources"):
        chaos.check_chaos(FakeCluster(), forced)  # type: ignore[arg-type]
    off = plan("platform.kubernetes.chaos=kubernetes", "chaos=[{kind: cpu-stress, at: 3}]")
    with pytest.raises(ChaosError, match="platform.kubernetes.chaos is 'kubernetes'"):
        chaos.check_chaos(FakeCluster(MESH), off)  # type: ignore[arg-type]


def test_an_external_broker_cannot_be_restarted() -> None:
    built = plan("broker.bootstrap=kafka.example:9092", "chaos=[{kind: restart-broker, at: 3}]")
    with pytest.raises(ChaosError, match="the broker is not the run's"):
        chaos.check_chaos(FakeCluster(MESH), built)  # type: ignore[arg-type]


# -- the injectors -------------------------------------------------------------------------------
class FakePods:
    def __init__(self, code: int = 0):
        self.code = code
        self.execs: list[tuple[str, str, list[str]]] = []

    def exec(self, pod: str, container: str, command: list[str]) -> tuple[int, str]:
        self.execs.append((pod, container, command))
        return self.code, "42\n"


class FakeTracker:
    def __init__(self) -> None:
        from scalelab.platform.kubernetes.tracking import Component

        self.components = {"kafka": Component("kafka")}

    def pod_for(self, name: str) -> str:
        return f"workers-abc-{name[-1]}"


def kube_chaos(mesh: bool, built: Plan, pods: FakePods | None = None) -> Any:
    return chaos.KubernetesChaos(
        FakeCluster(MESH if mesh else set()),  # type: ignore[arg-type]
        pods or FakePods(),  # type: ignore[arg-type]
        FakeTracker(),  # type: ignore[arg-type]
        built,
        lambda: ["worker-0", "worker-1"],
        lambda limit: None,
        mesh,
    )


def test_a_chaos_mesh_fault_is_created_at_its_start_and_deleted_at_its_end() -> None:
    built = plan("chaos=[{kind: network-delay, at: 1, duration: 2}]")
    made = kube_chaos(True, built)
    events: list[tuple[str, str]] = []
    schedule = ChaosSchedule(
        built.spec.chaos, Target(factory=made.injector), lambda k, d: events.append((k, d))
    )
    schedule.tick(0.5)
    assert made.cluster.calls == []
    schedule.tick(1.0)
    assert made.cluster.calls == [("apply", "scalelab-network-delay-0")]
    schedule.tick(3.0)
    assert made.cluster.calls[-1] == ("delete", "scalelab-network-delay-0")
    assert [k for k, _ in events] == ["chaos-network-delay"] * 2
    (window,) = schedule.to_list()
    assert window["start_ns"] and window["end_ns"] and "NetworkChaos" in str(window["begin"])


def test_the_broker_restart_is_expected_by_the_health_checks() -> None:
    built = plan("chaos=[{kind: restart-broker, at: 1}]")
    for mesh in (True, False):
        made = kube_chaos(mesh, built)
        injector = made.injector(built.spec.chaos[0])
        injector.begin()
        assert made.tracker.components["kafka"].expected == {"kafka-0"}
        if not mesh:
            assert made.pods.execs == [("kafka-0", "kafka", ["sh", "-c", "kill -TERM 1"])]


def test_pause_worker_signals_the_component_in_the_worker_container() -> None:
    built = plan("chaos=[{kind: pause-worker, at: 1, worker: 1}]")
    made = kube_chaos(True, built)
    injector = made.injector(built.spec.chaos[0])
    assert injector.begin() == "SIGSTOP worker-1 (pod workers-abc-1, pids 42)"
    assert injector.end() == "SIGCONT worker-1"
    (stop_pod, container, stop), (_, _, cont) = made.pods.execs
    assert (stop_pod, container) == ("workers-abc-1", "worker")
    assert stop[-1] == "SIGSTOP" and cont[-1] == "SIGCONT"


def test_a_refused_fault_fails_the_schedule_before_the_load() -> None:
    built = plan("chaos=[{kind: cpu-stress, at: 30}]")
    with pytest.raises(ChaosError, match="fault cpu-stress at 30 s: needs Chaos Mesh"):
        ChaosSchedule(
            built.spec.chaos, Target(factory=kube_chaos(False, built).injector), lambda k, d: None
        )


def test_the_signal_script_stops_and_continues_the_descendants_only() -> None:
    """The exec'd script, run here on a process tree of its own (never on PID 1)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '30'])"]
    )
    child = None
    try:
        child = _child_of(parent.pid)
        run = [sys.executable, "-c", chaos.SIGNAL_DESCENDANTS]
        out = subprocess.run([*run, "SIGSTOP", str(parent.pid)], capture_output=True, text=True)
        assert out.stdout.split() == [str(child)]
        assert _state(child) == "T" and _state(parent.pid) != "T"
        subprocess.run([*run, "SIGCONT", str(parent.pid)], check=True, capture_output=True)
        assert _state(child) != "T"
    finally:
        if child is not None:
            os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()


def _child_of(pid: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("no child")


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
