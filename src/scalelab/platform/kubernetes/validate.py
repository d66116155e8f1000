"""Offline validation of manifests: built-in kinds against the official schemas, CRDs by shape."""

from __future__ import annotations

from scalelab.errors import MissingDependencyError
from scalelab.platform.kubernetes import crds
from scalelab.platform.kubernetes.manifests import Manifest

KUBERNETES_VERSION = "1.30"
INSTALL_HINT = "pip install 'scalelab[kubernetes]' (kubernetes and kubernetes-validate)"


def validate_builtin(obj: Manifest, version: str = KUBERNETES_VERSION) -> list[str]:
    """Problems of a built-in object against the official JSON schemas, unknown fields rejected."""
    try:
        import kubernetes_validate
    except ImportError as error:
        raise MissingDependencyError("kubernetes-validate", INSTALL_HINT) from error
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path) or "(top)"
        return [f"{where}: {path}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{where}: {error.message}"]
    return []


def validate_objects(objects: list[Manifest], version: str = KUBERNETES_VERSION) -> list[str]:
    problems: list[str] = []
    for obj in objects:
        if crds.is_custom(obj):
            problems += crds.check_custom(obj)
        else:
            problems += validate_builtin(obj, version)
    return problems


def have_validator() -> bool:
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        return False
    return True
