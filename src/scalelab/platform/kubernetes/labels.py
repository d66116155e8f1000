"""Labels every object of a run carries, and the names scalelab gives its objects.

Deleting a run is one label selector: `scalelab.io/run-id=<value>`. Label
values are at most 63 characters, run ids can be longer, so long ids are
shortened deterministically (the full id is kept in an annotation).
"""

from __future__ import annotations

import hashlib
import re

RUN_ID = "scalelab.io/run-id"
COMPONENT = "scalelab.io/component"
RUN_ID_ANNOTATION = "scalelab.io/run-id-full"
MANAGED_BY = "app.kubernetes.io/managed-by"
FIELD_MANAGER = "scalelab"
DASHBOARD_LABEL = "grafana_dashboard"

KAFKA_CLUSTER = "scalelab"
KAFKA_POOL = "kafka"
SPEC_CONFIGMAP = "scalelab-spec"
KAFKA_METRICS_CONFIGMAP = "scalelab-kafka-metrics"
WORKERS = "workers"
TRACKER = "tracker"
PRODUCER = "producer"

_MAX_LABEL = 63
_LABEL_OK = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def run_label_value(run_id: str) -> str:
    """The run id as a label value: itself when it fits, else a prefix and a hash."""
    if len(run_id) <= _MAX_LABEL and _LABEL_OK.match(run_id):
        return run_id
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    prefix = re.sub(r"[^-A-Za-z0-9_.]", "-", run_id)[: _MAX_LABEL - 9].rstrip("-_.")
    return f"{prefix}-{digest}"


def run_selector(run_id: str) -> str:
    return f"{RUN_ID}={run_label_value(run_id)}"


def run_labels(run_id: str, component: str | None = None) -> dict[str, str]:
    labels = {RUN_ID: run_label_value(run_id), MANAGED_BY: "scalelab"}
    if component is not None:
        labels[COMPONENT] = component
        labels["app.kubernetes.io/name"] = "scalelab"
        labels["app.kubernetes.io/component"] = component
    return labels


def selector_labels(run_id: str, component: str) -> dict[str, str]:
    """The labels a Deployment, Service or monitor selects its pods by."""
    return {RUN_ID: run_label_value(run_id), COMPONENT: component}


def metadata(
    name: str,
    run_id: str,
    namespace: str | None = None,
    component: str | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, object]:
    meta: dict[str, object] = {
        "name": name,
        "labels": {**run_labels(run_id, component), **(extra_labels or {})},
        "annotations": {RUN_ID_ANNOTATION: run_id},
    }
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


# The ReplicaSet deletes pods with the lowest cost first when its replicas drop: a worker
# the autoscaler removes, or the one kill-worker deletes, gets this one.
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
FIRST_OUT = "-1000"
