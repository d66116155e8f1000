"""The workers' rates from Prometheus: `rate()` of counters, never the processes' own gauges.

Per-second gauges are averages over a past window and lie after a restart; `rate()`
of `scalelab_worker_processed_total`, `scalelab_worker_busy_seconds_total` and
`process_cpu_seconds_total` does not. Only targets that are up count: a stopped
worker's last samples stay in the range for a window and must not.

Locally each worker is its own target (`role="worker"`, `component="worker-3"`); on a
cluster every worker pod is `component="worker"` and told apart by `instance` (the pod):
the platform gives that selector and key (`Sources.worker_selector`, `worker_key`).
"""

from __future__ import annotations

import math

import httpx

from scalelab.errors import ScalelabError


class PromReader:
    def __init__(
        self,
        url: str,
        run_id: str,
        window: float,
        components: str = "worker-.*",
        selector: str | None = None,
        key: str = "component",
    ):
        self.client = httpx.Client(base_url=url, timeout=5.0)
        self.sel = selector or f'run_id="{run_id}",role="worker",component=~"{components}"'
        self.key = key  # the label that tells one worker from another
        self.run_id = run_id
        self.window = f"{max(1, round(window))}s"

    def close(self) -> None:
        self.client.close()

    def readings(self) -> dict[str, object]:
        """Everything a policy reads from Prometheus, as `Signals` fields."""
        return dict(
            busy=self.busy(),
            cpu=self.cpu(),
            processed_rate=self.processed_rate(),
            latency_p95=self.latency_p95(),
        )

    def samples(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's series: (labels, value) each."""
        try:
            reply = self.client.get("/api/v1/query", params={"query": expr})
            reply.raise_for_status()
        except httpx.HTTPError as error:
            raise ScalelabError(f"prometheus query failed: {expr}: {error}") from error
        return [(dict(r["metric"]), float(r["value"][1])) for r in reply.json()["data"]["result"]]

    def query(self, expr: str) -> list[float]:
        return [value for _, value in self.samples(expr)]

    def _per_worker(self, counter: str) -> tuple[float, ...]:
        live = f"(up{{{self.sel}}} == 1)"
        expr = (
            f"clamp_max(rate({counter}{{{self.sel}}}[{self.window}]), 1) and on({self.key}) {live}"
        )
        values = self.query(expr)
        return tuple(v for v in values if not math.isnan(v))

    def busy(self) -> tuple[float, ...]:
        """Busy fraction of each live worker, clamped to 1 (a batch straddling the window)."""
        return self._per_worker("scalelab_worker_busy_seconds_total")

    def cpu(self) -> tuple[float, ...]:
        """CPU cores each live worker used (not clamped: a worker may use several threads)."""
        live = f"(up{{{self.sel}}} == 1)"
        expr = (
            f"rate(process_cpu_seconds_total{{{self.sel}}}[{self.window}]) "
            f"and on({self.key}) {live}"
        )
        return tuple(self.query(expr))

    def processed_rate(self) -> float:
        expr = f"sum(rate(scalelab_worker_processed_total{{{self.sel}}}[{self.window}]))"
        values = self.query(expr)
        return values[0] if values else math.nan

    def latency_p95(self) -> float:
        expr = (
            "histogram_quantile(0.95, sum by (le) (rate(scalelab_tracker_latency_seconds_bucket"
            f'{{run_id="{self.run_id}"}}[{self.window}])))'
        )
        values = self.query(expr)
        return values[0] if values else math.nan
