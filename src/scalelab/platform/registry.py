"""Platforms keyed by the spec's `platform.kind`; a platform's client is imported only when used."""

from __future__ import annotations

import importlib
from pathlib import Path

from scalelab.errors import ConfigError
from scalelab.platform.base import Platform
from scalelab.spec.models import ExperimentSpec

# kind -> "module:class"; the class is built as Cls(spec, run_id, run_dir, state_dir, detached)
PLATFORMS: dict[str, str] = {
    "local": "scalelab.platform.local.platform:LocalPlatform",
    "kubernetes": "scalelab.platform.kubernetes.platform:KubernetesPlatform",
}


def make_platform(
    spec: ExperimentSpec, run_id: str, run_dir: Path, state_dir: Path, detached: bool
) -> Platform:
    target = PLATFORMS.get(spec.platform.kind)
    if target is None:
        raise ConfigError(
            f"unknown platform {spec.platform.kind!r} (known: {', '.join(PLATFORMS)})"
        )
    module_name, class_name = target.split(":")
    platform_class = getattr(importlib.import_module(module_name), class_name)
    platform: Platform = platform_class(spec, run_id, run_dir, state_dir, detached)
    return platform
