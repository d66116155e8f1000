"""The spec's faults as Chaos Mesh objects (chaos-mesh.org/v1alpha1), as plain dicts.

Pure rendering: the platform says which pods are which (`Scope`: the run's namespace,
the labels its objects carry, the selectors of the workers, of the broker and of the
broker's clients) and creates or deletes what this returns. Field names follow Chaos
Mesh's v1alpha1 API (PodChaos, NetworkChaos, StressChaos; selector `namespaces`,
`labelSelectors`, `expressionSelectors`; `mode`; `duration` as a Go duration).

Which fault becomes what:

- restart-broker: PodChaos `container-kill` of the broker's container: the kubelet
  restarts it in the same pod, so an emptyDir log survives (`pod-kill` would give the
  StatefulSet a new pod with an empty volume: every topic gone).
- cpu-stress: StressChaos in every worker pod, `cpus` CPU stressors at full load.
- network-delay / -loss / -bandwidth: NetworkChaos `delay` / `loss` / `bandwidth` on the
  clients' (workers, producer, tracker) traffic to and from the broker pods, both ways
  (as the local TCP proxy delays both directions); an external broker is an
  `externalTargets` host, outbound only (what Chaos Mesh allows for those).
- pause-worker: Chaos Mesh has no SIGSTOP (`pod-failure` replaces the container, which
  kills the worker and restarts it: another fault); the platform pauses by exec.
- fail-output: a Kafka topic setting, no Chaos Mesh object (the admin API, as locally).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scalelab.chaos.spec import ChaosFault

API_VERSION = "chaos-mesh.org/v1alpha1"
KIND_OF = {
    "restart-broker": "PodChaos",
    "cpu-stress": "StressChaos",
    "network-delay": "NetworkChaos",
    "network-loss": "NetworkChaos",
    "network-bandwidth": "NetworkChaos",
}
KINDS = ("PodChaos", "NetworkChaos", "StressChaos")
CPU_LOAD = 100  # percent per stressor: a busy loop
MIN_BUFFER = 10_000  # bytes a token bucket sends at once (tc-tbf wants >= rate / HZ)
MIN_LIMIT = 64 * 1024  # bytes queued behind the bucket
UINT32_MAX = 2**32 - 1  # limit and buffer are uint32

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Scope:
    """Where the run's pods are and how to select them (label maps)."""

    namespace: str
    metadata_labels: dict[str, str]  # every object of the run carries these
    annotations: dict[str, str] = field(default_factory=dict)
    workers: dict[str, str] = field(default_factory=dict)
    worker_container: str = "worker"
    broker: dict[str, str] | None = None  # None: the broker is not a pod of the run
    broker_container: str = "kafka"
    broker_hosts: tuple[str, ...] = ()  # an external broker's hosts (externalTargets)
    run_labels: dict[str, str] = field(default_factory=dict)
    component_key: str = "scalelab.io/component"
    clients: tuple[str, ...] = ("worker", "producer", "tracker")


def renders(fault: ChaosFault) -> bool:
    """Whether Chaos Mesh has an object for this fault kind."""
    return fault.kind in KIND_OF


def render(fault: ChaosFault, name: str, scope: Scope) -> Manifest:
    """The Chaos Mesh object for a fault; ValueError for a kind it has none for."""
    kind = KIND_OF.get(fault.kind)
    if kind is None:
        raise ValueError(f"Chaos Mesh has no object for {fault.kind}")
    spec = _SPECS[fault.kind](fault, scope)
    spec["duration"] = go_duration(fault.duration)
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": scope.namespace,
            "labels": dict(scope.metadata_labels),
            "annotations": dict(scope.annotations),
        },
        "spec": spec,
    }


def go_duration(seconds: float) -> str:
    """A Go duration string ("15s", "1500ms") for Chaos Mesh's `duration` and `latency`."""
    us = round(seconds * 1e6)
    if us % 1_000_000 == 0:
        return f"{us // 1_000_000}s"
    if us % 1000 == 0:
        return f"{us // 1000}ms"
    return f"{us}us"


def _selector(scope: Scope, labels: dict[str, str]) -> Manifest:
    return {"namespaces": [scope.namespace], "labelSelectors": dict(labels)}


def _clients(scope: Scope) -> Manifest:
    selector = _selector(scope, scope.run_labels)
    selector["expressionSelectors"] = [
        {"key": scope.component_key, "operator": "In", "values": list(scope.clients)}
    ]
    return selector


def _broker(fault: ChaosFault, scope: Scope) -> dict[str, str]:
    if scope.broker is None:
        raise ValueError(f"{fault.kind}: the broker is not a pod of this run")
    return scope.broker


def _restart_broker(fault: ChaosFault, scope: Scope) -> Manifest:
    return {
        "action": "container-kill",
        "mode": "all",
        "selector": _selector(scope, _broker(fault, scope)),
        "containerNames": [scope.broker_container],
    }


def _cpu_stress(fault: ChaosFault, scope: Scope) -> Manifest:
    return {
        "mode": "all",
        "selector": _selector(scope, scope.workers),
        "containerNames": [scope.worker_container],
        "stressors": {"cpu": {"workers": fault.cpus, "load": CPU_LOAD}},
    }


def _network(fault: ChaosFault, scope: Scope) -> Manifest:
    spec: Manifest = {"mode": "all", "selector": _clients(scope)}
    if scope.broker is not None:
        spec["direction"] = "both"
        spec["target"] = {"mode": "all", "selector": _selector(scope, scope.broker)}
    elif scope.broker_hosts:
        spec["direction"] = "to"
        spec["externalTargets"] = list(scope.broker_hosts)
    else:
        raise ValueError(f"{fault.kind}: no broker to reach")
    if fault.kind == "network-delay":
        spec["action"] = "delay"
        spec["delay"] = {"latency": go_duration(fault.delay_ms / 1000), "jitter": "0ms"}
    elif fault.kind == "network-loss":
        spec["action"] = "loss"
        spec["loss"] = {"loss": f"{fault.loss * 100:g}"}  # percent, as a string
    else:
        rate = max(1, round(fault.bandwidth_kbps * 1000))  # bytes/s ("bps" is bytes)
        limit = min(UINT32_MAX, max(MIN_LIMIT, rate))  # one second of traffic
        buffer = min(UINT32_MAX, max(MIN_BUFFER, rate // 100))  # 10 ms of it
        spec["action"] = "bandwidth"
        spec["bandwidth"] = {"rate": f"{rate}bps", "limit": limit, "buffer": buffer}
    return spec


_SPECS = {
    "restart-broker": _restart_broker,
    "cpu-stress": _cpu_stress,
    "network-delay": _network,
    "network-loss": _network,
    "network-bandwidth": _network,
}
