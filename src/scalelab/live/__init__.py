"""The live dashboard of a run: a page served on 127.0.0.1 while `scalelab run` goes on.

The page polls a JSON endpoint; the server answers it from the run's own
Prometheus (the same PromQL as the Grafana dashboard it also generates) and
from run.json (phases, injected faults). Nothing here touches the run: the
dashboard follows the run directory the orchestrator writes.
"""

from __future__ import annotations

from scalelab.live.server import Dashboard, start_dashboard

__all__ = ["Dashboard", "start_dashboard"]
