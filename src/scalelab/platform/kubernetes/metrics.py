"""The metric list of a run on Kubernetes: what the dashboards plot and an export can query.

Names follow ARCHITECTURE.md and what the components export
(`scalelab_producer_*`, `scalelab_worker_*`, `scalelab_tracker_*`), with the
`run_id`, `component` and `instance` labels the monitors add; CPU comes from
the kubelet (cAdvisor), power from Kepler by version (`kepler.py`).

Queries hold three placeholders: `$run_id`, `$namespace` and `$__rate_interval`
(Grafana fills them in; `concrete()` does for an export).
"""

from __future__ import annotations

from dataclasses import dataclass

from scalelab.platform.kubernetes import kepler

RUN = 'run_id=~"$run_id"'
WINDOW = "$__rate_interval"


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    query: str
    unit: str
    legend: str = ""


def _rate(metric: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{{{RUN}}}[{WINDOW}]))"


def _quantile(q: float, metric: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{RUN}}}[{WINDOW}])))"


def experiment_metrics(kepler_version: str) -> list[Metric]:
    """Rate, throughput, lag, latency, CPU and power per pod of one run."""
    pods = 'namespace="$namespace", container!="", container!="POD"'
    return [
        Metric("target_rate", "Target rate", f"sum(scalelab_producer_target_rate{{{RUN}}})",
               "reqps", "target"),
        Metric("achieved_rate", "Acknowledged rate", _rate("scalelab_producer_acked_total"),
               "reqps", "acked"),
        Metric("throughput", "Throughput per worker",
               _rate("scalelab_worker_processed_total", "instance"), "reqps", "{{instance}}"),
        Metric("dead_letter_rate", "Dead-lettered frames",
               _rate("scalelab_worker_dead_letter_total"), "reqps", "dead-lettered"),
        Metric("consumer_lag", "Consumer lag (messages)",
               'sum(kafka_consumergroup_lag{consumergroup=~"scalelab-workers-$run_id"})',
               "short", "lag"),
        Metric("schedule_lag", "Producer schedule lag",
               f"max(scalelab_producer_schedule_lag_seconds{{{RUN}}})", "s", "lag"),
        Metric("latency_p50", "End-to-end latency p50",
               _quantile(0.5, "scalelab_tracker_latency_seconds"), "s", "p50"),
        Metric("latency_p95", "End-to-end latency p95",
               _quantile(0.95, "scalelab_tracker_latency_seconds"), "s", "p95"),
        Metric("latency_p99", "End-to-end latency p99",
               _quantile(0.99, "scalelab_tracker_latency_seconds"), "s", "p99"),
        Metric("inference_p95", "Inference time p95 per frame",
               "histogram_quantile(0.95, sum by (le) (rate(scalelab_worker_stage_seconds_bucket"
               f'{{{RUN}, stage="inference"}}[{WINDOW}])))', "s", "inference p95"),
        Metric("cpu_cores", "CPU per pod (cores)",
               f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[{WINDOW}]))",
               "short", "{{pod}}"),
        Metric("memory_bytes", "Memory per pod",
               f"sum by (pod) (container_memory_working_set_bytes{{{pods}}})", "bytes",
               "{{pod}}"),
        Metric("power_watts", "Power per pod (Kepler)",
               kepler.pod_power(kepler_version, "$namespace", WINDOW), "watt", "{{pod}}"),
    ]  # fmt: skip


def cluster_metrics(kepler_version: str) -> list[Metric]:
    """Per node: CPU, memory, network, power, and the pods each node runs."""
    return [
        Metric("node_cpu_cores", "CPU per node (cores)",
               f'sum by (instance) (rate(node_cpu_seconds_total{{mode!="idle"}}[{WINDOW}]))',
               "short", "{{instance}}"),
        Metric("node_memory_used_bytes", "Memory used per node",
               "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes", "bytes",
               "{{instance}}"),
        Metric("node_network_receive_bytes", "Network received per node",
               f'sum by (instance) (rate(node_network_receive_bytes_total{{device!="lo"}}'
               f"[{WINDOW}]))", "Bps", "{{instance}}"),
        Metric("node_power_watts", "Power per node (Kepler)",
               kepler.node_power(kepler_version, WINDOW), "watt", "{{node}}"),
        Metric("pods_per_node", "Pods per node",
               "count by (node) (kube_pod_info)", "short", "{{node}}"),
    ]  # fmt: skip


def concrete(metric: Metric, run_id: str, namespace: str, window_s: float) -> str:
    """The query with its placeholders filled in (for an export of one run)."""
    return (
        metric.query.replace("$__rate_interval", f"{max(1, round(window_s))}s")
        .replace("$run_id", run_id)
        .replace("$namespace", namespace)
    )


def export_queries(
    run_id: str, namespace: str, scrape_interval: float, kepler_version: str
) -> list[tuple[str, str]]:
    """(name, PromQL) pairs of a run, usable as `monitoring.metrics` for the export."""
    window = max(4 * scrape_interval, 4.0)
    return [
        (m.name, concrete(m, run_id, namespace, window)) for m in experiment_metrics(kepler_version)
    ]
