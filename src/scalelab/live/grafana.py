"""A Grafana dashboard for a local run, with the same PromQL as the live page.

Two files: `dashboard.json` (import it, or provision it) and `datasource.yaml`
(a Grafana provisioning file naming the run's Prometheus, uid `scalelab`),
written under the run directory's `grafana/` as soon as Prometheus is up.
Phases become the dashboard's time range; injected faults its annotations are not
(Grafana only annotates from a data source), so they are listed in the description.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scalelab.live import queries
from scalelab.live.follow import RunState

DATASOURCE_UID = "scalelab"
UNITS = {"msg/s": "reqps", "s": "s", "msg": "short", "cores": "short", "W": "watt"}


def dashboard(state: RunState, measured_energy: bool = False) -> dict[str, Any]:
    panels = queries.panels(state.id, state.scrape_interval_s, measured_energy)
    return {
        "title": f"scalelab {state.id}",
        "uid": f"scalelab-{state.id[-20:]}",
        "description": _description(state),
        "tags": ["scalelab"],
        "timezone": "utc",
        "refresh": f"{max(1, round(state.scrape_interval_s))}s",
        "time": _time_range(state),
        "schemaVersion": 39,
        "panels": [_panel(panel, index) for index, panel in enumerate(panels)],
    }


def datasource(prometheus_url: str) -> str:
    """Grafana provisioning YAML for the run's Prometheus."""
    return (
        "apiVersion: 1\n"
        "datasources:\n"
        "  - name: scalelab\n"
        f"    uid: {DATASOURCE_UID}\n"
        "    type: prometheus\n"
        "    access: proxy\n"
        f"    url: {prometheus_url}\n"
    )


def write(state: RunState, measured_energy: bool = False) -> Path | None:
    """Write grafana/dashboard.json and grafana/datasource.yaml; None when not possible yet."""
    if state.prometheus is None:
        return None
    folder = state.dir / "grafana"
    try:
        folder.mkdir(exist_ok=True)
        (folder / "dashboard.json").write_text(
            json.dumps(dashboard(state, measured_energy), indent=2)
        )
        (folder / "datasource.yaml").write_text(datasource(state.prometheus))
    except OSError:
        return None
    return folder / "dashboard.json"


def _panel(panel: queries.Panel, index: int) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": f"{panel.title} ({panel.unit})",
        "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": UNITS.get(panel.unit, "short")}, "overrides": []},
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
                "expr": query.expr,
                "legendFormat": f"{{{{{query.by}}}}}" if query.by else query.label,
            }
            for n, query in enumerate(panel.queries)
        ],
    }


def _time_range(state: RunState) -> dict[str, str]:
    ends = [b.end for b in state.phases if b.end is not None]
    if state.status == "running" or not ends:
        return {"from": f"{int(state.started * 1000)}", "to": "now"}
    return {"from": f"{int(state.started * 1000)}", "to": f"{int(max(ends) * 1000) + 1}"}


def _description(state: RunState) -> str:
    faults = "; ".join(f"{b.label} at {b.start:.0f}" for b in state.faults) or "none"
    return f"Run {state.id} ({state.dir}). Injected faults (epoch s): {faults}."
