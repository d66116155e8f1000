"""The PromQL behind every live panel, shared by the page and the Grafana dashboard.

Rates and percentiles are taken over a sliding window of a few scrape
intervals (never one sample pair), so a Poisson load at 6/s reads about 6/s.
Latency is the tracker's histogram, measured from each message's intended
send time.
"""

from __future__ import annotations

from dataclasses import dataclass

from scalelab.analysis.power_model import CpuPowerModel

MIN_WINDOW_S = 5.0
WINDOW_SCRAPES = 4
BUSY = 'node_cpu_seconds_total{mode!~"idle|iowait|steal"}'


@dataclass(frozen=True)
class Query:
    """One line of a panel; `by` names the label that splits it into several lines."""

    key: str
    label: str
    expr: str
    by: str | None = None


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    unit: str
    queries: tuple[Query, ...]


def window_s(scrape_interval_s: float) -> float:
    """The rate window: a few scrapes, at least `MIN_WINDOW_S`."""
    return max(MIN_WINDOW_S, WINDOW_SCRAPES * scrape_interval_s)


def duration(seconds: float) -> str:
    """A PromQL range duration in whole milliseconds (`5000ms`)."""
    return f"{max(1, round(seconds * 1000))}ms"


def rate_panel(run: str, window: str) -> Panel:
    return Panel(
        "rate",
        "Rate: target, sent, completed",
        "msg/s",
        (
            Query("target", "target", f"sum(scalelab_producer_target_rate{{{run}}})"),
            Query(
                "sent", "sent", f"sum(rate(scalelab_producer_messages_total{{{run}}}[{window}]))"
            ),
            Query(
                "completed",
                "completed",
                f"sum(rate(scalelab_tracker_records_total{{{run}}}[{window}]))",
            ),
        ),
    )


def latency_panel(run: str, window: str) -> Panel:
    buckets = f"sum by (le) (rate(scalelab_tracker_latency_seconds_bucket{{{run}}}[{window}]))"
    queries = tuple(
        Query(f"p{q}", f"p{q}", f"histogram_quantile(0.{q}, {buckets})") for q in (50, 95, 99)
    )
    return Panel("latency", "Latency from intended send time", "s", queries)


def backlog_panel(run: str) -> Panel:
    """Sent but not yet completed: what is queued in Kafka or inside a worker's batch."""
    expr = (
        f"clamp_min(sum(scalelab_producer_acked_total{{{run}}})"
        f" - sum(scalelab_tracker_records_total{{{run}}})"
        f" - (sum(scalelab_worker_dead_letter_total{{{run}}}) or vector(0)), 0)"
    )
    errors = (
        f"(sum(scalelab_producer_send_errors_total{{{run}}}) or vector(0))"
        f" + (sum(scalelab_worker_dead_letter_total{{{run}}}) or vector(0))"
    )
    return Panel(
        "lag",
        "Consumer lag and errors",
        "msg",
        (Query("lag", "lag (sent − completed)", expr), Query("errors", "errors", errors)),
    )


def cpu_panel(window: str) -> Panel:
    """Per component (every scraped process) and the host's busy cores.

    Not filtered by run id: a stack reused from `scalelab up` carries that run's id, and
    only one stack runs at a time.
    """
    per = f'sum by (component) (rate(process_cpu_seconds_total{{component!=""}}[{window}]))'
    host = f"sum(rate({BUSY}[{window}]))"
    return Panel(
        "cpu",
        "CPU per component",
        "cores",
        (Query("cpu", "component", per, by="component"), Query("host", "host busy", host)),
    )


def energy_panel(window: str, measured: bool, model: CpuPowerModel | None = None) -> Panel:
    """Host power: RAPL counters where the kernel has them, else the CPU power model's estimate."""
    if measured:
        expr = (
            f"sum(rate(node_rapl_package_joules_total[{window}]))"
            f" + (sum(rate(node_rapl_dram_joules_total[{window}])) or vector(0))"
        )
        return Panel("energy", "Power (measured, RAPL)", "W", (Query("power", "measured", expr),))
    model = model or CpuPowerModel()
    cores = 'count(node_cpu_seconds_total{mode="idle"})'
    expr = (
        f"{cores} * {model.idle_w_per_core:g}"
        f" + {model.dynamic_w_per_core:g} * sum(rate({BUSY}[{window}]))"
    )
    return Panel("energy", "Power (estimate from CPU)", "W", (Query("power", "estimate", expr),))


RAPL_PRESENT = "count(node_rapl_package_joules_total)"


def panels(run_id: str, scrape_interval_s: float, measured_energy: bool) -> list[Panel]:
    window = duration(window_s(scrape_interval_s))
    run = f'run_id="{run_id}"'
    return [
        rate_panel(run, window),
        latency_panel(run, window),
        backlog_panel(run),
        cpu_panel(window),
        energy_panel(window, measured_energy),
    ]
