"""The built-in policies: hpa, ds2, transscale, threshold, schedule."""

from __future__ import annotations

import math
from statistics import fmean

from scalelab.autoscale.policy import Want, register
from scalelab.autoscale.signals import Signals, known
from scalelab.autoscale.stabilise import Stabiliser
from scalelab.autoscale.transscale_model import ThroughputModel
from scalelab.spec.autoscale import AutoscalerSpec

MIN_BUSY = 0.02  # less total busy time than this says nothing about a worker's true rate


@register("hpa")
class Hpa:
    """Kubernetes' HPA rule on CPU: desired = ceil(current × utilisation ÷ target)."""

    name = "hpa"
    measures_capacity = True

    def __init__(self, spec: AutoscalerSpec):
        self.spec = spec
        self.stabiliser = Stabiliser(spec.stabilisation_up, spec.stabilisation_down)

    def decide(self, s: Signals) -> Want:
        if not s.cpu or s.current == 0:
            return Want(max(s.current, self.spec.min), "no CPU figures from the workers yet")
        utilisation = fmean(s.cpu) / self.spec.cpu_per_worker
        ratio = utilisation / self.spec.target_utilisation
        if abs(ratio - 1) <= self.spec.tolerance:
            raw = s.current
        else:
            raw = math.ceil(s.current * ratio - 1e-9)
        wanted = self.stabiliser.stable(s.elapsed, s.current, raw)
        return Want(
            wanted,
            f"CPU {utilisation:.0%} of request vs target {self.spec.target_utilisation:.0%}: "
            f"raw {raw}, stabilised {wanted}",
        )


def true_rate(s: Signals) -> float | None:
    """Messages one worker processes per second of busy time (DS2's true processing rate)."""
    busy = sum(s.busy)
    if busy < MIN_BUSY or not known(s.processed_rate) or s.processed_rate <= 0:
        return None
    return s.processed_rate / busy


def unmeasured(s: Signals) -> str:
    """Why DS2 has no figure to divide: no busy time, no records through the busy
    workers in the window (a stalled job, a sink flush), or no arrival rate yet."""
    if sum(s.busy) < MIN_BUSY:
        return "no busy time measured yet"
    if not known(s.processed_rate) or s.processed_rate <= 0:
        return f"busy {fmean(s.busy):.0%} but no records processed in the window: no true rate"
    return "no arrival rate yet"


@register("ds2")
class Ds2:
    """DS2 / the Flink operator's rule: target = arrival + lag ÷ catch-up, served at
    `target_utilisation` of each worker's true rate."""

    name = "ds2"
    measures_capacity = True

    def __init__(self, spec: AutoscalerSpec):
        self.spec = spec
        self.stabiliser = Stabiliser(spec.stabilisation_up, spec.stabilisation_down)

    def decide(self, s: Signals) -> Want:
        rate = true_rate(s)
        if rate is None or not known(s.arrival_rate):
            if s.current == 0 and (s.lag > 0 or s.arrival_rate > 0):
                return Want(max(1, self.spec.min), "load but no worker: start one")
            return Want(s.current, f"{unmeasured(s)}: keep")
        lag = s.lag if known(s.lag) else 0.0
        target = s.arrival_rate + lag / self.spec.catch_up
        raw = max(1, math.ceil(target / (rate * self.spec.target_utilisation) - 1e-9))
        wanted = self.stabiliser.stable(s.elapsed, s.current, raw)
        return Want(
            wanted,
            f"target {target:.1f}/s (arrival {s.arrival_rate:.1f}/s + lag {lag:.0f} ÷ "
            f"{self.spec.catch_up:g} s), true rate {rate:.1f}/s per worker at "
            f"{self.spec.target_utilisation:.0%}: raw {raw}, stabilised {wanted}",
        )


@register("transscale")
class Transscale:
    """Back-pressure above the threshold twice in a row: remember the throughput at this
    scale and add one; at or below it: the least replicas the fitted model says suffice."""

    name = "transscale"
    measures_capacity = True

    def __init__(self, spec: AutoscalerSpec):
        self.spec = spec
        self.model = ThroughputModel()
        self.pressured = 0
        self.stabiliser = Stabiliser(0.0, spec.stabilisation_down)

    def decide(self, s: Signals) -> Want:
        if not s.busy:
            return Want(s.current, "no busy time measured yet: keep")
        pressure = fmean(s.busy)
        limit = self.spec.backpressure
        if pressure > limit:
            return self._pressured(s, pressure)
        self.pressured = 0
        return self._relaxed(s, pressure)

    def _pressured(self, s: Signals, pressure: float) -> Want:
        self.pressured += 1
        if known(s.processed_rate):
            self.model.observe(s.current, s.processed_rate)
        if self.pressured < 2:
            return Want(s.current, f"back-pressure {pressure:.0%} (once): wait for a second")
        self.pressured = 0
        return Want(s.current + 1, f"back-pressure {pressure:.0%} twice: one more")

    def _relaxed(self, s: Signals, pressure: float) -> Want:
        rate = true_rate(s)
        if rate is not None and not self.model.fitted():
            self.model.observe(s.current, rate * s.current)  # saturated estimate at p
        demand = s.arrival_rate if known(s.arrival_rate) else s.processed_rate
        if not known(demand) or not self.model.fitted():
            return Want(s.current, f"back-pressure {pressure:.0%}: no model yet, keep")
        need = self.model.least_sufficient(demand / self.spec.target_utilisation, s.current)
        wanted = self.stabiliser.stable(s.elapsed, s.current, need)
        return Want(
            wanted,
            f"back-pressure {pressure:.0%}: model {self.model.describe()} says {need} "
            f"serve {demand:.1f}/s; stabilised {wanted}",
        )


@register("threshold")
class Threshold:
    """Lag or p95 latency above its high mark: add `step`; below its low mark: remove one step."""

    name = "threshold"
    measures_capacity = False

    def __init__(self, spec: AutoscalerSpec):
        self.spec = spec

    def decide(self, s: Signals) -> Want:
        high = self._over(s)
        if high:
            return Want(s.current + self.spec.step, high)
        low = self._under(s)
        if low:
            return Want(s.current - self.spec.step, low)
        return Want(s.current, "between the thresholds: keep")

    def _over(self, s: Signals) -> str:
        sp = self.spec
        if sp.lag_high is not None and known(s.lag) and s.lag > sp.lag_high:
            return f"lag {s.lag:.0f} above {sp.lag_high}"
        if sp.latency_high is not None and known(s.latency_p95) and s.latency_p95 > sp.latency_high:
            return f"p95 latency {s.latency_p95:.2f} s above {sp.latency_high:g} s"
        return ""

    def _under(self, s: Signals) -> str:
        sp = self.spec
        checks: list[tuple[float | None, float, str]] = [
            (sp.lag_low, s.lag, "lag"),
            (sp.latency_low, s.latency_p95, "p95 latency"),
        ]
        used = [(low, value, what) for low, value, what in checks if low is not None]
        if not used or not all(known(v) and v < low for low, v, _ in used):
            return ""
        return " and ".join(f"{what} {v:.2f} below {low:g}" for low, v, what in used)


@register("schedule")
class Schedule:
    """Fixed changes at given times (Scalehub's step strategies)."""

    name = "schedule"
    measures_capacity = False

    def __init__(self, spec: AutoscalerSpec):
        self.steps = sorted(spec.steps, key=lambda step: step.at)

    def decide(self, s: Signals) -> Want:
        due = [step for step in self.steps if step.at <= s.elapsed]
        if not due:
            return Want(s.current, "before the first step: keep")
        step = due[-1]
        return Want(step.replicas, f"step at {step.at:g} s: {step.replicas} replicas")
