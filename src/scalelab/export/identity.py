"""Is the Prometheus answering at an address the one that holds a run's data?

A port is only an address: after the run's Prometheus stopped, anything may
listen there (another stack, a system Prometheus), and exporting from it
would replace a run's data with another's, or with nothing. Two facts name a
Prometheus: where it keeps its data (``storage.tsdb.path`` from
``/api/v1/status/flags``) and whether it holds series labelled with the run's
``run_id`` in the run's window.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from scalelab.export.segments import Window, epoch_text, format_time

_TIMEOUT = 5.0


def storage_path(url: str) -> str | None:
    """Where the Prometheus at ``url`` keeps its TSDB; None when it does not say."""
    try:
        response = httpx.get(f"{url}/api/v1/status/flags", timeout=_TIMEOUT)
        path = response.json()["data"]["storage.tsdb.path"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return str(path) if path else None


def holds_run(url: str, run_id: str, window: Window) -> bool | None:
    """Whether any series labelled ``run_id`` has samples in the window; None if unknown."""
    params = {
        "match[]": f"{{run_id={json.dumps(run_id)}}}",
        "start": epoch_text(window.start),
        "end": epoch_text(window.end),
    }
    try:
        response = httpx.get(f"{url}/api/v1/label/__name__/values", params=params, timeout=_TIMEOUT)
        return bool(response.json()["data"]) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def mismatch(url: str, run_id: str, window: Window, expected_data: Path | None) -> str | None:
    """Why the Prometheus at ``url`` is not the run's, or None when nothing says it is not.

    Its data directory must be ``expected_data`` (when both are known as absolute
    paths), and it must hold series of the run in the run's window.
    """
    actual = storage_path(url)
    if not _same_place(actual, expected_data):
        return (
            f"the Prometheus at {url} keeps its data in {actual}, "
            f"not in {expected_data} where run {run_id}'s Prometheus kept it"
        )
    if holds_run(url, run_id, window) is False:
        span = f"{format_time(window.start)} to {format_time(window.end)}"
        return (
            f"the Prometheus at {url} (data in {actual or 'an unknown directory'}) holds no "
            f"series labelled run_id={run_id} from {span}"
        )
    return None


def _same_place(actual: str | None, expected: Path | None) -> bool:
    """False only when both are known absolute paths and they differ (a relative path is
    relative to a working directory we do not know)."""
    if actual is None or expected is None or not Path(actual).is_absolute():
        return True
    return Path(actual).resolve() == expected.resolve()
