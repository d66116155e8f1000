"""Paths in a spec are relative to the spec file, not to the working directory."""

from __future__ import annotations

from pathlib import Path


def resolve_path(path: Path, base_dir: Path | str | None) -> Path:
    """`path` itself if absolute, else relative to `base_dir` (the spec file's directory)."""
    path = Path(path).expanduser()
    if path.is_absolute() or base_dir is None:
        return path
    return Path(base_dir) / path
