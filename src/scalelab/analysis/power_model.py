"""The power model behind energy ESTIMATES when no energy counter exists.

Linear in CPU utilisation, the usual first-order model of server power and
the one Cloud Carbon Footprint uses (average watts = min watts + utilisation ×
(max watts − min watts), per vCPU): idle power per core plus a dynamic part
proportional to busy CPU time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CpuPowerModel:
    """P(t) = cores × P_idle + (P_max − P_idle) × busy_cores(t), per core.

    Defaults are the Cloud Carbon Footprint coefficients for an average AWS
    vCPU (0.74 W idle, 3.5 W fully busy), derived from SPECpower_ssj2008
    results. They are assumptions about typical server CPUs, not measurements
    of this machine: memory, disks, fans and the power supply are left out.
    """

    idle_w_per_core: float = 0.74
    max_w_per_core: float = 3.5
    source: str = (
        "Cloud Carbon Footprint methodology: AWS average per vCPU, "
        "0.74 W idle and 3.5 W at 100 % (from SPECpower_ssj2008)"
    )

    @property
    def dynamic_w_per_core(self) -> float:
        return self.max_w_per_core - self.idle_w_per_core

    def joules(self, cores: float, seconds: float, cpu_seconds: float) -> float:
        """∫P dt = cores × P_idle × T + (P_max − P_idle) × CPU-seconds."""
        return cores * self.idle_w_per_core * seconds + self.dynamic_w_per_core * cpu_seconds

    def describe(self, cores: float) -> dict[str, Any]:
        return {
            "model": "P(t) = cores × P_idle + (P_max − P_idle) × busy_cores(t); "
            "E = cores × P_idle × T + (P_max − P_idle) × CPU-seconds",
            "assumptions": {
                "P_idle_w_per_core": self.idle_w_per_core,
                "P_max_w_per_core": self.max_w_per_core,
                "cores": cores,
                "source": self.source,
                "components": "dynamic share only: (P_max − P_idle) × CPU-seconds",
            },
        }
