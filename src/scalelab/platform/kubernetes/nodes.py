"""Node roles: which nodes generate load (producer) and which run the system (consumer).

Roles are node labels (`scalelab.io/role` by default). scalelab sets them at
the start of a run and removes the ones it set at the end; nodes themselves
are never created or deleted.
"""

from __future__ import annotations

import math

from scalelab.errors import ConfigError
from scalelab.platform.kubernetes.api import Cluster
from scalelab.platform.kubernetes.config import NodeRoles
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.manifests.placement import CONSUMER, PRODUCER

CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


def schedulable(node: Manifest) -> bool:
    """Ready, not cordoned, and not a tainted control-plane node."""
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    taints = {t.get("key") for t in spec.get("taints", []) if t.get("effect") == "NoSchedule"}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions", [])
    )
    return ready and not taints & set(CONTROL_PLANE_TAINTS)


def assign_roles(roles: NodeRoles, nodes: list[Manifest]) -> dict[str, str]:
    """node name -> role, by names or by a fraction of the schedulable nodes."""
    names = sorted(n["metadata"]["name"] for n in nodes if schedulable(n))
    if roles.producer_fraction is not None:
        if len(names) < 2:
            raise ConfigError(
                f"node_roles.producer_fraction needs two schedulable nodes or more, "
                f"the cluster has {len(names)}"
            )
        count = min(len(names) - 1, max(1, math.floor(roles.producer_fraction * len(names))))
        return {name: PRODUCER if i < count else CONSUMER for i, name in enumerate(names)}
    every = {n["metadata"]["name"] for n in nodes}
    unknown = sorted(set(roles.producer_nodes + roles.consumer_nodes) - every)
    if unknown:
        raise ConfigError(f"node_roles names nodes the cluster does not have: {', '.join(unknown)}")
    consumers = roles.consumer_nodes or [n for n in names if n not in roles.producer_nodes]
    if not consumers:
        raise ConfigError("node_roles leaves no consumer node for the workers")
    return {**dict.fromkeys(roles.producer_nodes, PRODUCER), **dict.fromkeys(consumers, CONSUMER)}


def label_patch(key: str, value: str | None) -> Manifest:
    return {"metadata": {"labels": {key: value}}}


def apply_roles(cluster: Cluster, roles: NodeRoles) -> dict[str, str]:
    """Label the nodes; returns what was set, for `remove_roles` at the end."""
    nodes = cluster.list("v1", "Node", None, "")
    plan = assign_roles(roles, nodes)
    resource = cluster.resource("v1", "Node")
    for name, role in plan.items():
        cluster.dynamic.patch(resource, body=label_patch(roles.label, role), name=name)
    return plan


def remove_roles(cluster: Cluster, roles: NodeRoles, assigned: dict[str, str]) -> None:
    """Remove the role labels this run set (a label someone changed since is left alone)."""
    resource = cluster.resource("v1", "Node")
    for name, role in assigned.items():
        node = cluster.get("v1", "Node", name)
        if node and node["metadata"].get("labels", {}).get(roles.label) == role:
            cluster.dynamic.patch(resource, body=label_patch(roles.label, None), name=name)
