"""A run named the way people name it: `latest`, a full id, a prefix, an experiment's name, a hash.

Run ids are `<UTC timestamp>-<name>-<short hash>`, so sorting them sorts by
start time. Wherever a run id is expected, `find_run` accepts, in order:

- a path to a run directory;
- the full id;
- `latest` (the newest run), `latest~N` (N runs before it);
- a prefix of exactly one id (`20261128T1654`), or the hash (`526026`);
- an experiment's name (`quickstart`): its newest run.

Anything else, or a prefix shared by several runs, is a ConfigError naming
the candidates (exit 2).
"""

from __future__ import annotations

from pathlib import Path

from scalelab import paths
from scalelab.analysis.runs import RUN_FILE, resolve_run, run_ids
from scalelab.errors import ConfigError

LATEST = "latest"


def run_name(run_id: str) -> str:
    """The experiment's name inside a run id (`<timestamp>-<name>-<hash>`)."""
    parts = run_id.split("-")
    return "-".join(parts[1:-1]) if len(parts) >= 3 else run_id


def find_run(text: str | Path, root: Path | None = None) -> Path:
    """The directory of the run `text` names (see the module's docstring)."""
    root = root or paths.runs_dir()
    candidate = Path(text)
    if (candidate / RUN_FILE).is_file() or (root / str(text) / RUN_FILE).is_file():
        return resolve_run(text, root)
    match = match_id(str(text), run_ids(root))
    return root / match if match else resolve_run(text, root)


def find_runs(texts: list[str] | list[Path], root: Path | None = None) -> list[Path]:
    return [find_run(text, root) for text in texts]


def match_id(text: str, known: list[str]) -> str | None:
    """The id `text` stands for among `known` (oldest first); None when nothing matches."""
    if text == LATEST or text.startswith(LATEST + "~"):
        return _latest(text, known)
    for rule in (_by_prefix, _by_hash, _by_name):
        found = rule(text, known)
        if len(found) == 1 or (found and rule is _by_name):
            return found[-1]
        if found:
            raise ConfigError(
                f"{text!r} matches {len(found)} runs: {', '.join(found[-5:])}; give more of the id"
            )
    return None


def _latest(text: str, known: list[str]) -> str:
    back = text[len(LATEST) + 1 :] or "0"
    if not back.isdecimal():
        raise ConfigError(f"{text!r}: write latest or latest~N (N runs before the newest)")
    if int(back) >= len(known):
        raise ConfigError(f"{text!r}: there are {len(known)} runs")
    return known[-1 - int(back)]


def _by_prefix(text: str, known: list[str]) -> list[str]:
    return [k for k in known if k.startswith(text)] if text else []


def _by_hash(text: str, known: list[str]) -> list[str]:
    return [k for k in known if text and k.endswith("-" + text)]


def _by_name(text: str, known: list[str]) -> list[str]:
    return [k for k in known if run_name(k) == text]
