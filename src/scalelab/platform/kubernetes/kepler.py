"""Kepler's energy metrics by Kepler version: the names changed between releases.

- 0.7.x to 0.9.x: `kepler_container_joules_total` (all components, labels
  `pod_name`, `container_namespace`), `kepler_node_platform_joules_total`
  (Kepler's own `instance` label, which Prometheus keeps as `exported_instance`).
- 0.10.x (the rewrite): CPU energy per zone, `kepler_container_cpu_joules_total`
  (labels `container_name`, `pod_id`, `zone`) and `kepler_node_cpu_joules_total`
  (`node_name`); pods are named through kube-state-metrics' `kube_pod_info`.
- 0.11.x on: also `kepler_pod_cpu_joules_total` (`pod_name`, `pod_namespace`).

The queries return watts (a rate of joules) with one `pod` or `node` label,
whichever version produced them, so analysis and dashboards need not care.
"""

from __future__ import annotations

from dataclasses import dataclass

from scalelab.errors import ConfigError

PACKAGE_ZONE = 'zone="package"'


@dataclass(frozen=True)
class KeplerMetrics:
    since: tuple[int, int]
    container_joules: str
    pod_joules: str | None
    node_joules: str
    pod_label: str
    namespace_label: str
    node_label: str
    zone_filter: str


TABLE = (
    KeplerMetrics((0, 7), "kepler_container_joules_total", None,
                  "kepler_node_platform_joules_total", "pod_name", "container_namespace",
                  "exported_instance", ""),
    KeplerMetrics((0, 10), "kepler_container_cpu_joules_total", None,
                  "kepler_node_cpu_joules_total", "pod", "namespace", "node_name", PACKAGE_ZONE),
    KeplerMetrics((0, 11), "kepler_container_cpu_joules_total", "kepler_pod_cpu_joules_total",
                  "kepler_node_cpu_joules_total", "pod_name", "pod_namespace", "node_name",
                  PACKAGE_ZONE),
)  # fmt: skip


def parse_version(version: str) -> tuple[int, int]:
    parts = version.lstrip("v").replace("release-", "").split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError as error:
        raise ConfigError(f"not a Kepler version: {version!r} (e.g. '0.11' or '0.7.12')") from error


def metrics_for(version: str) -> KeplerMetrics:
    """The newest table entry not newer than the version."""
    wanted = parse_version(version)
    known = [entry for entry in TABLE if entry.since <= wanted]
    if not known:
        raise ConfigError(f"Kepler {version} is older than 0.7, whose metric names scalelab knows")
    return known[-1]


def _selector(*parts: str) -> str:
    chosen = [p for p in parts if p]
    return "{" + ", ".join(chosen) + "}" if chosen else ""


def pod_power(version: str, namespace: str, window: str) -> str:
    """Watts per pod of a namespace, label `pod`."""
    m = metrics_for(version)
    if m.pod_joules:
        selector = _selector(f'{m.namespace_label}="{namespace}"', m.zone_filter)
        inner = f"rate({m.pod_joules}{selector}[{window}])"
        return f'sum by (pod) (label_replace({inner}, "pod", "$1", "{m.pod_label}", "(.*)"))'
    if m.pod_label == "pod":  # 0.10: join container energy to pod names by pod uid
        energy = f"rate({m.container_joules}{_selector(m.zone_filter)}[{window}])"
        info = (
            f'label_replace(kube_pod_info{{namespace="{namespace}"}}, '
            '"pod_id", "$1", "uid", "(.*)")'
        )
        return f"sum by (pod) ({energy} * on (pod_id) group_left (pod) {info})"
    inner = f'rate({m.container_joules}{{{m.namespace_label}="{namespace}"}}[{window}])'
    return f'sum by (pod) (label_replace({inner}, "pod", "$1", "{m.pod_label}", "(.*)"))'


def node_power(version: str, window: str) -> str:
    """Watts per node, label `node`."""
    m = metrics_for(version)
    inner = f"rate({m.node_joules}{_selector(m.zone_filter)}[{window}])"
    return f'sum by (node) (label_replace({inner}, "node", "$1", "{m.node_label}", "(.*)"))'


def energy_counters(version: str) -> dict[str, str]:
    """Joule counters whose increase is the energy of pods, for `analysis.energy(kepler=...)`.

    From 0.10 on the counters are per RAPL zone: select `zone="package"` (which
    contains core and uncore) before summing, as `pod_power` does.
    """
    m = metrics_for(version)
    return {"pod": m.pod_joules or m.container_joules}
