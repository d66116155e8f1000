"""A `ComponentLaunch` from the core, as a pod runs it.

The core gives every component the same arguments on every platform. Paths
and the bootstrap address are this machine's; the pod has its own (the spec
ConfigMap, /data, the in-cluster bootstrap, the model inside the pod), which
`components.component_args` fills in. What remains are the role arguments,
rewritten where they name something local.
"""

from __future__ import annotations

from scalelab.errors import ConfigError
from scalelab.platform.base import ComponentLaunch
from scalelab.platform.kubernetes.plan import Plan

PLATFORM_OPTIONS = {
    "--spec",
    "--bootstrap",
    "--run-id",
    "--run-dir",
    "--base-dir",
    "--metrics-port",
}
ROLES = ("tracker", "worker", "producer")


def component_of(launch: ComponentLaunch) -> str:
    if launch.role not in ROLES:
        raise ConfigError(
            f"component {launch.name}: role {launch.role!r} has no Kubernetes "
            f"object (known: {', '.join(ROLES)})"
        )
    return launch.role


def role_args(plan: Plan, launch: ComponentLaunch) -> list[str]:
    """The launch's role arguments with local names replaced by the pod's."""
    out: list[str] = []
    args = list(launch.args)
    while args:
        option = args.pop(0)
        value = args.pop(0) if args and not args[0].startswith("--") else None
        if option in PLATFORM_OPTIONS:
            continue
        if option == "--name" and launch.role == "worker":
            value = "$(POD_NAME)"  # one Deployment: each replica is named after its pod
        elif option == "--model":
            value = plan.model_path
        out += [option] if value is None else [option, value]
    return out
