"""Waiting out an in-place broker restart on a cluster.

The orchestrator reaches the broker through a port-forward that accepts a local
connection and then loses the pod's port while Kafka restarts: librdkafka reports a
transport failure at once instead of waiting for the broker, and the run's next offset
read failed it (seen on the project's cluster: the read one second after the SIGTERM).
So the restart fault returns only once every broker pod's container has restarted, is
ready, and the broker answers metadata again; until then the orchestrator reads nothing.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka.admin import AdminClient

from scalelab.chaos.injectors import ChaosError
from scalelab.chaos.spec import ChaosFault

RESTART_TIMEOUT_S = 180.0
POLL_S = 0.5


class BrokerRestartWatch:
    """Restart counts of the broker container before the fault, then the wait until back."""

    def __init__(self, core: Any, namespace: str, container: str, bootstrap: str):
        self.core, self.namespace, self.container = core, namespace, container
        self.bootstrap = bootstrap

    def restarts(self, pod: str) -> tuple[int, bool]:
        """(restart count, ready) of the broker container; (-1, False) while it has none."""
        status = self.core.read_namespaced_pod(pod, self.namespace).status
        for container in status.container_statuses or []:
            if container.name == self.container:
                return int(container.restart_count or 0), bool(container.ready)
        return -1, False

    def wait_back(self, fault: ChaosFault, before: dict[str, int]) -> float:
        """Seconds until every pod restarted its container and the broker answers."""
        started = time.monotonic()
        deadline = started + RESTART_TIMEOUT_S
        pending = dict(before)
        while pending:
            for pod, count in list(pending.items()):
                now, ready = self.restarts(pod)
                if now > count and ready:
                    del pending[pod]
            if pending and time.monotonic() > deadline:
                raise ChaosError(fault, f"the broker did not come back: {sorted(pending)}")
            if pending:
                time.sleep(POLL_S)
        self._wait_metadata(fault, deadline)
        return time.monotonic() - started

    def _wait_metadata(self, fault: ChaosFault, deadline: float) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        while True:
            try:
                admin.list_topics(timeout=2)
                return
            except Exception as error:  # noqa: BLE001 - KafkaException while it starts
                if time.monotonic() > deadline:
                    raise ChaosError(fault, f"the broker does not answer: {error}") from error
                time.sleep(POLL_S)
