"""Grafana dashboards as code, from the metric list in `metrics.py`, shipped as ConfigMaps.

kube-prometheus-stack's Grafana runs a sidecar that loads every ConfigMap
labelled `grafana_dashboard: "1"` (the values scalelab generates turn it on
for all namespaces), so installing a dashboard is applying a ConfigMap.
"""

from __future__ import annotations

import json
from typing import Any

from scalelab.platform.kubernetes.labels import DASHBOARD_LABEL, MANAGED_BY
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.metrics import Metric, cluster_metrics, experiment_metrics

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_W, PANEL_H = 12, 8


def _panel(index: int, metric: Metric) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": metric.title,
        "datasource": DATASOURCE,
        "gridPos": {
            "x": (index % 2) * PANEL_W,
            "y": (index // 2) * PANEL_H,
            "w": PANEL_W,
            "h": PANEL_H,
        },
        "fieldConfig": {"defaults": {"unit": metric.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "expr": metric.query,
                "legendFormat": metric.legend or metric.name,
            }
        ],
    }


def _variables(with_run: bool) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        {
            "name": "namespace",
            "type": "custom",
            "query": "scalelab",
            "label": "Namespace",
            "current": {"text": "scalelab", "value": "scalelab"},
        },
    ]
    if with_run:
        variables.append(
            {
                "name": "run_id",
                "type": "query",
                "label": "Run",
                "datasource": DATASOURCE,
                "query": {
                    "query": "label_values(scalelab_worker_processed_total, run_id)",
                    "refId": "run_id",
                },
                "definition": "label_values(scalelab_worker_processed_total, run_id)",
                "refresh": 2,
                "sort": 2,
                "includeAll": False,
                "multi": False,
            }
        )
    return variables


def dashboard(uid: str, title: str, panels: list[Metric], with_run: bool) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["scalelab"],
        "timezone": "utc",
        "refresh": "5s",
        "schemaVersion": 39,
        "time": {"from": "now-15m", "to": "now"},
        "templating": {"list": _variables(with_run)},
        "panels": [_panel(i, metric) for i, metric in enumerate(panels)],
    }


def experiment_dashboard(kepler_version: str) -> dict[str, Any]:
    return dashboard(
        "scalelab-experiment",
        "scalelab: experiment",
        experiment_metrics(kepler_version),
        with_run=True,
    )


def cluster_dashboard(kepler_version: str) -> dict[str, Any]:
    return dashboard(
        "scalelab-cluster", "scalelab: cluster", cluster_metrics(kepler_version), with_run=False
    )


def configmap(board: dict[str, Any], namespace: str) -> Manifest:
    name = board["uid"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{name}-dashboard",
            "namespace": namespace,
            "labels": {DASHBOARD_LABEL: "1", MANAGED_BY: "scalelab", "scalelab.io/dashboard": name},
        },
        "data": {f"{name}.json": json.dumps(board, indent=2)},
    }


def dashboard_configmaps(kepler_version: str, namespace: str) -> list[Manifest]:
    boards = (experiment_dashboard(kepler_version), cluster_dashboard(kepler_version))
    return [configmap(board, namespace) for board in boards]
