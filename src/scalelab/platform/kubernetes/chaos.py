"""The spec's chaos faults on a cluster: Chaos Mesh objects where it is installed, else what
the Kubernetes API does itself (exec in a pod).

| fault             | with Chaos Mesh                          | without                       |
|-------------------|------------------------------------------|-------------------------------|
| pause-worker      | exec SIGSTOP / SIGCONT (no Chaos Mesh    | the same                      |
|                   | action pauses a process)                 |                               |
| restart-broker    | PodChaos container-kill (broker)         | exec SIGTERM to the broker    |
| cpu-stress        | StressChaos in the worker pods           | refused, named                |
| network-*         | NetworkChaos clients <-> broker          | refused, named                |
| fail-output       | the topic's max.message.bytes (admin API), as locally                    |

The broker restarts in place (its container, not its pod): the run's own Kafka keeps
its log on an emptyDir, which a new pod would not have. Its pod is then no longer judged
by its restart count (the restart was asked for); the exec'd restart returns once the
broker answers again (broker_restart.py), and one not back within 180 s fails the run.
Every Chaos Mesh object carries the run's labels, is created when its fault begins and
deleted when it ends, and the run's teardown deletes any left (teardown.py).
`check_chaos` runs in the preflight: a fault the cluster cannot take fails before
anything is applied, named.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from scalelab.chaos import chaosmesh
from scalelab.chaos.injectors import ChaosError, FailOutput, Injector, Target
from scalelab.chaos.output import output_limit_setter
from scalelab.chaos.spec import ChaosFault
from scalelab.errors import ScalelabError
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.api import Cluster, PodOps
from scalelab.platform.kubernetes.broker_restart import BrokerRestartWatch
from scalelab.platform.kubernetes.config import KubernetesSpec
from scalelab.platform.kubernetes.errors import PrerequisiteError
from scalelab.platform.kubernetes.manifests import Manifest, kafka, own_kafka
from scalelab.platform.kubernetes.plan import Plan

if TYPE_CHECKING:
    from scalelab.platform.base import Platform
    from scalelab.platform.kubernetes.tracking import Tracker

INSTALL = "https://chaos-mesh.org/docs/production-installation-using-helm/"
WORKER_CONTAINER = "worker"
BROKER_CONTAINER = "kafka"
RESTART_BROKER = ["sh", "-c", "kill -TERM 1"]  # the broker is the container's PID 1 (exec java)
# The worker's PID 1 is podwrap: signal the component, every descendant of PID 1 (or of
# the pid given after the signal's name).
SIGNAL_DESCENDANTS = """import os,signal,sys
root = int(sys.argv[2]) if len(sys.argv) > 2 else 1
kids = {}
for p in os.listdir('/proc'):
    if p.isdigit():
        try:
            stat = open(f'/proc/{p}/stat').read()
        except OSError:
            continue
        kids.setdefault(int(stat.rsplit(')', 1)[1].split()[1]), []).append(int(p))
todo, done = list(kids.get(root, [])), []
while todo:
    pid = todo.pop(0)
    done.append(pid)
    todo += kids.get(pid, [])
for pid in done:
    os.kill(pid, getattr(signal, sys.argv[1]))
print(' '.join(map(str, done)))
"""


# -- what the cluster can do -----------------------------------------------------------------
def chaos_mesh_installed(cluster: Cluster) -> bool:
    """API discovery: the chaos-mesh.org group serves every kind scalelab renders."""
    return all(cluster.has_kind(chaosmesh.API_VERSION, kind) for kind in chaosmesh.KINDS)


def uses_chaos_mesh(cluster: Cluster, settings: KubernetesSpec) -> bool:
    """`platform.kubernetes.chaos` resolved: auto asks the cluster; chaos-mesh requires it."""
    if settings.chaos == "kubernetes":
        return False
    found = chaos_mesh_installed(cluster)
    if settings.chaos == "chaos-mesh" and not found:
        raise PrerequisiteError(
            f"Chaos Mesh custom resources ({chaosmesh.API_VERSION} {', '.join(chaosmesh.KINDS)})",
            f"install Chaos Mesh ({INSTALL}), or set platform.kubernetes.chaos to auto",
        )
    return found


def refusal(fault: ChaosFault, plan: Plan, mesh: bool) -> str | None:
    """Why this cluster cannot inject a fault, or None when it can."""
    if fault.kind == "restart-broker" and not plan.managed_kafka:
        return "the broker is not the run's (broker.bootstrap): scalelab cannot restart it"
    if fault.kind in ("pause-worker", "restart-broker", "fail-output") or mesh:
        return None
    kind = chaosmesh.KIND_OF[fault.kind]
    why = (
        "platform.kubernetes.chaos is 'kubernetes'"
        if plan.settings.chaos == "kubernetes"
        else "this cluster does not have it"
    )
    return (
        f"needs Chaos Mesh ({chaosmesh.API_VERSION} {kind}) and {why}; the Kubernetes API "
        f"alone can only pause a worker, restart the broker and fail the output. Install "
        f"Chaos Mesh ({INSTALL}) or remove the fault"
    )


def check_faults(plan: Plan, mesh: bool) -> None:
    for fault in plan.spec.chaos:
        why = refusal(fault, plan, mesh)
        if why is not None:
            raise ChaosError(fault, why)


def check_chaos(cluster: Cluster, plan: Plan) -> None:
    """The preflight's check: every fault of the spec can be injected on this cluster."""
    if plan.spec.chaos:
        check_faults(plan, uses_chaos_mesh(cluster, plan.settings))


# -- Chaos Mesh objects ------------------------------------------------------------------------
def broker_labels(plan: Plan) -> dict[str, str] | None:
    """The broker pods' labels (None: an external broker, not a pod of the run)."""
    if not plan.managed_kafka:
        return None
    if plan.own_kafka:
        return labels.selector_labels(plan.run_id, "kafka")
    return {
        labels.RUN_ID: plan.run_label,
        kafka.CLUSTER_LABEL: labels.KAFKA_CLUSTER,
        "strimzi.io/pool-name": labels.KAFKA_POOL,
    }


def broker_pods(plan: Plan) -> list[str]:
    if plan.own_kafka:
        return [own_kafka.POD]
    return [kafka.node_pod(node) for node in range(plan.settings.kafka.replicas)]


def scope(plan: Plan) -> chaosmesh.Scope:
    hosts = tuple(
        address.rsplit(":", 1)[0] for address in plan.cluster_bootstrap.split(",") if address
    )
    return chaosmesh.Scope(
        namespace=plan.namespace,
        metadata_labels=labels.run_labels(plan.run_id, "chaos"),
        annotations={labels.RUN_ID_ANNOTATION: plan.run_id},
        workers=labels.selector_labels(plan.run_id, "worker"),
        worker_container=WORKER_CONTAINER,
        broker=broker_labels(plan),
        broker_container=BROKER_CONTAINER,
        broker_hosts=() if plan.managed_kafka else hosts,
        run_labels={labels.RUN_ID: plan.run_label},
        component_key=labels.COMPONENT,
    )


def render(plan: Plan) -> list[Manifest]:
    """Every Chaos Mesh object the spec's faults would create, in order (for review)."""
    where = scope(plan)
    return [
        chaosmesh.render(fault, object_name(fault, i), where)
        for i, fault in enumerate(plan.spec.chaos)
        if chaosmesh.renders(fault)
    ]


def object_name(fault: ChaosFault, index: int) -> str:
    return f"scalelab-{fault.kind}-{index}"


class MeshObject:
    """A Chaos Mesh object: applied when the fault begins, deleted (Chaos Mesh recovers the
    pods) when it ends. Its `duration` ends it as well should scalelab stop first."""

    def __init__(self, cluster: Cluster, obj: Manifest, before: Callable[[], None] | None = None):
        self.cluster, self.obj, self.before = cluster, obj, before

    def begin(self) -> str:
        if self.before is not None:
            self.before()
        self.cluster.apply(self.obj)
        spec = self.obj["spec"]
        return f"{self.obj['kind']} {self.obj['metadata']['name']} ({spec.get('action', 'cpu')})"

    def end(self) -> str:
        self.cluster.delete(self.obj)
        return f"{self.obj['kind']} {self.obj['metadata']['name']} deleted"


# -- what the API does itself --------------------------------------------------------------
class PauseWorker:
    """SIGSTOP the worker's component (podwrap's descendants) by exec; SIGCONT at the end."""

    def __init__(self, fault: ChaosFault, pods: PodOps, tracker: Tracker, live: LiveWorkers):
        self.fault, self.pods, self.tracker, self.live = fault, pods, tracker, live
        self.victim: tuple[str, str] | None = None

    def begin(self) -> str:
        live = self.live()
        if self.fault.worker >= len(live):
            raise ChaosError(self.fault, f"no worker {self.fault.worker} ({len(live)} live)")
        name = live[self.fault.worker]
        pod = self.tracker.pod_for(name)
        if pod is None:
            raise ChaosError(self.fault, f"{name} has no pod")
        self.victim = (name, pod)
        return f"SIGSTOP {name} (pod {pod}, pids {self._signal('SIGSTOP')})"

    def end(self) -> str:
        assert self.victim is not None
        try:
            self._signal("SIGCONT")
        except ScalelabError:
            return f"{self.victim[0]} (pod {self.victim[1]}) was gone before SIGCONT"
        return f"SIGCONT {self.victim[0]}"

    def _signal(self, name: str) -> str:
        assert self.victim is not None
        command = ["python", "-c", SIGNAL_DESCENDANTS, name]
        code, out = self.pods.exec(self.victim[1], WORKER_CONTAINER, command)
        if code != 0:
            raise ChaosError(self.fault, f"{name} in pod {self.victim[1]} failed ({code}): {out}")
        return out.strip() or "none"


class RestartBroker:
    """SIGTERM to the broker (its container's PID 1): it shuts down cleanly and the kubelet
    starts the container again in the same pod, with the same volumes. With a `watch`,
    `begin` returns once the broker is back (broker_restart.py says why)."""

    def __init__(
        self,
        fault: ChaosFault,
        pods: PodOps,
        plan: Plan,
        expect: Callable[[], None],
        watch: BrokerRestartWatch | None = None,
    ):
        self.fault, self.pods, self.plan, self.expect = fault, pods, plan, expect
        self.watch = watch

    def begin(self) -> str:
        self.expect()
        names = broker_pods(self.plan)
        before = {pod: self.watch.restarts(pod)[0] for pod in names} if self.watch else {}
        for pod in names:
            code, out = self.pods.exec(pod, BROKER_CONTAINER, RESTART_BROKER)
            if code != 0:
                raise ChaosError(self.fault, f"SIGTERM in pod {pod} failed ({code}): {out}")
        done = f"SIGTERM to the broker in {', '.join(names)}: restarts in place"
        if self.watch is None:
            return done
        return f"{done}, answering again after {self.watch.wait_back(self.fault, before):.1f} s"

    def end(self) -> str:
        return "broker restarted by the kubelet (same pod, same volumes)"


LiveWorkers = Callable[[], list[str]]


class KubernetesChaos:
    """One injector per fault (the `Target.factory` of a Kubernetes run)."""

    def __init__(
        self,
        cluster: Cluster,
        pods: PodOps,
        tracker: Tracker,
        plan: Plan,
        live_workers: LiveWorkers,
        set_output_limit: Callable[[int | None], None],
        mesh: bool,
        watch: BrokerRestartWatch | None = None,
    ):
        self.cluster, self.pods, self.tracker, self.plan = cluster, pods, tracker, plan
        self.live_workers, self.set_output_limit, self.mesh = live_workers, set_output_limit, mesh
        self.watch = watch
        self.scope = scope(plan)
        self.made = 0

    def injector(self, fault: ChaosFault) -> Injector:
        why = refusal(fault, self.plan, self.mesh)
        if why is not None:
            raise ChaosError(fault, why)
        if fault.kind == "pause-worker":
            return PauseWorker(fault, self.pods, self.tracker, self.live_workers)
        if fault.kind == "fail-output":
            return FailOutput(fault, Target(set_output_limit=self.set_output_limit))
        if not self.mesh:  # refusal() left only the broker restart
            return RestartBroker(
                fault, self.pods, self.plan, self._expect_broker_restart, self.watch
            )
        index = next((i for i, f in enumerate(self.plan.spec.chaos) if f is fault), None)
        if index is None:  # a fault not of the plan's spec: numbered after those
            index = len(self.plan.spec.chaos) + self.made
        self.made += 1
        obj = chaosmesh.render(fault, object_name(fault, index), self.scope)
        before = self._expect_broker_restart if fault.kind == "restart-broker" else None
        return MeshObject(self.cluster, obj, before)

    def _expect_broker_restart(self) -> None:
        """The run's own broker is watched like a component: its restart is asked for."""
        component = self.tracker.components.get("kafka")
        if component is not None:
            component.expected.update(broker_pods(self.plan))


def kubernetes_target(
    platform: Platform, live_workers: LiveWorkers, output_topic: str, bootstrap: str
) -> Target:
    """The chaos `Target` of a Kubernetes run: its injectors come from `KubernetesChaos`."""
    from scalelab.platform.kubernetes.platform import KubernetesPlatform

    if not isinstance(platform, KubernetesPlatform):
        raise TypeError(f"not a Kubernetes platform: {platform.name}")
    mesh = uses_chaos_mesh(platform.cluster, platform.plan.settings)
    chaos = KubernetesChaos(
        platform.cluster,
        platform.pods,
        platform.tracker,
        platform.plan,
        live_workers,
        output_limit_setter(bootstrap, output_topic),
        mesh,
        BrokerRestartWatch(
            platform.cluster.core, platform.pods.namespace, BROKER_CONTAINER, bootstrap
        ),
    )
    return Target(factory=chaos.injector)
