"""Node affinity from node roles: load generation never shares a node with the system under test.

Producer pods require a `producer` node; workers require a `consumer` node;
Kafka and the tracker only avoid producer nodes.
"""

from __future__ import annotations

from scalelab.platform.kubernetes.config import NodeRoles
from scalelab.platform.kubernetes.manifests import Manifest

PRODUCER = "producer"
CONSUMER = "consumer"

_RULES = {
    "producer": ("In", PRODUCER),
    "worker": ("In", CONSUMER),
    "tracker": ("NotIn", PRODUCER),
    "kafka": ("NotIn", PRODUCER),
}


def affinity(roles: NodeRoles, component: str) -> Manifest | None:
    """The pod affinity for a component, or None when the spec assigns no node roles."""
    if not roles.enabled or component not in _RULES:
        return None
    operator, value = _RULES[component]
    term = {"matchExpressions": [{"key": roles.label, "operator": operator, "values": [value]}]}
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }
