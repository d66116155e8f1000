"""One run end to end: session, stack, the experiment, export and analysis.

Failures and Ctrl-C are recorded in run.json by the session, never raised
from here: the caller reads the record's status.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from scalelab.analysis.analyse import analyse_run
from scalelab.errors import ScalelabError
from scalelab.export.run_export import export_run
from scalelab.run.experiment import Experiment
from scalelab.run.model import resolve_model
from scalelab.run.record import RunRecord
from scalelab.run.session import RunSession
from scalelab.spec.models import ExperimentSpec


def run_experiment(
    spec: ExperimentSpec, spec_path: Path | None, console: Console, repetition: int = 1
) -> tuple[RunRecord, Path]:
    """Run the experiment once; failures and Ctrl-C are recorded, not raised."""
    model = resolve_model(spec.workload, spec.base_dir)
    session = RunSession(spec, spec_path)
    session.record.repetition = repetition
    try:
        with session:
            session.record.versions["model_sha256"] = model.sha256
            endpoints = session.start_stack()
            try:
                Experiment(session, endpoints, str(model.path), console).execute()
            finally:
                export_metrics(session, console)
    except (KeyboardInterrupt, Exception):  # noqa: BLE001 - recorded in run.json by the session
        pass
    analyse_run(session.dir)
    return session.record, session.dir


def export_metrics(session: RunSession, console: Console) -> None:
    """Export the run's window while Prometheus still runs; a failure is noted, never raised."""
    url = session.endpoints.prometheus_url if session.endpoints else None
    if url is None:
        return
    try:
        export_run(session.dir, session.spec, session.record, url, console)
    except ScalelabError as error:
        session.record.warnings.append(f"export failed: {error}")
    session.save()
