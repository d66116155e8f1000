"""Analysis of runs: verdict, energy, correlations, plots and reports.

The notebook entry points are importable from here, loaded on first use so
that components importing `scalelab.analysis.summary` stay light:

    from scalelab.analysis import open_run, open_runs, runs_table
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "open_run": "dataset",
    "open_runs": "dataset",
    "runs_table": "dataset",
    "analyse_run": "analyse",
    "build_report": "report",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
