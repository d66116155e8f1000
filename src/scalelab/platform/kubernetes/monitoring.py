"""What `scalelab cluster monitoring|strimzi install` puts on a cluster: pinned charts, values.

kube-prometheus-stack selects every PodMonitor/ServiceMonitor (not only the
chart's own), keeps Grafana's admin password in a Secret (the user's, or one
scalelab generates; never the chart's default) and loads dashboards from
ConfigMaps in any namespace. Kepler is pinned: a floating "latest" is known
to break metric names and deployments.
"""

from __future__ import annotations

from typing import Any

from scalelab.platform.kubernetes.config import KafkaCluster, MonitoringStack
from scalelab.platform.kubernetes.helm import Chart
from scalelab.platform.kubernetes.labels import MANAGED_BY

PROMETHEUS_REPO = "https://prometheus-community.github.io/helm-charts"
KEPLER_CHART = "oci://quay.io/sustainable_computing_io/charts/kepler"
STRIMZI_REPO = "https://strimzi.io/charts/"
GRAFANA_SECRET = "scalelab-grafana-admin"
USER_KEY, PASSWORD_KEY = "admin-user", "admin-password"


def prometheus_chart(stack: MonitoringStack) -> Chart:
    return Chart(
        stack.release,
        stack.namespace,
        "kube-prometheus-stack",
        stack.kube_prometheus_stack_version,
        PROMETHEUS_REPO,
    )


def kepler_chart(stack: MonitoringStack) -> Chart:
    return Chart("kepler", stack.kepler_namespace, KEPLER_CHART, stack.kepler_chart_version)


def strimzi_chart(kafka: KafkaCluster, namespace: str = "strimzi") -> Chart:
    return Chart(
        "strimzi", namespace, "strimzi-kafka-operator", kafka.strimzi_version, STRIMZI_REPO
    )


def grafana_secret_name(stack: MonitoringStack) -> str:
    return stack.grafana_secret or GRAFANA_SECRET


def prometheus_values(stack: MonitoringStack) -> dict[str, Any]:
    return {
        "alertmanager": {"enabled": False},
        "prometheus": {
            "service": {"type": "ClusterIP"},
            "prometheusSpec": {
                "podMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorNamespaceSelector": {},
                "serviceMonitorNamespaceSelector": {},
                "scrapeInterval": "15s",
                "retention": "15d",
            },
        },
        "grafana": {
            "service": {"type": "ClusterIP"},
            "admin": {
                "existingSecret": grafana_secret_name(stack),
                "userKey": USER_KEY,
                "passwordKey": PASSWORD_KEY,
            },
            "defaultDashboardsTimezone": "utc",
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": "grafana_dashboard",
                    "labelValue": "1",
                    "searchNamespace": "ALL",
                }
            },
        },
    }


def kepler_values() -> dict[str, Any]:
    """Kepler's own ServiceMonitor, scraped by the stack above (it selects every monitor)."""
    return {"serviceMonitor": {"enabled": True, "interval": "5s"}}


def strimzi_values() -> dict[str, Any]:
    """The operator watches every namespace, so runs can use any `platform.namespace`."""
    return {"watchAnyNamespace": True}


def grafana_secret(namespace: str, password: str) -> dict[str, Any]:
    """The Secret holding a generated admin password; applied to the cluster, never written."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": GRAFANA_SECRET,
            "namespace": namespace,
            "labels": {MANAGED_BY: "scalelab"},
        },
        "stringData": {USER_KEY: "admin", PASSWORD_KEY: password},
    }


def namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {MANAGED_BY: "scalelab"}},
    }
