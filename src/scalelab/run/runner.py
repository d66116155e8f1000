"""One run end to end: session, stack, the experiment, export and analysis.

Failures and Ctrl-C are recorded in run.json by the session, never raised
from here: the caller reads the record's status. The one exception is a run
directory that cannot be created (RunDirError): then nothing has started and
there is no record to read.

Signals are handled for the whole of it, analysis included (`Interrupts`):
the first aborts the run, a second forces a fast teardown and skips export
and analysis.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from scalelab.analysis.analyse import analyse_run
from scalelab.errors import ScalelabError
from scalelab.export.run_export import export_run
from scalelab.run.experiment import Experiment
from scalelab.run.model import resolve_model
from scalelab.run.progress import LiveView
from scalelab.run.record import RunDirError, RunRecord
from scalelab.run.session import Interrupts, RunSession
from scalelab.spec.models import ExperimentSpec, YoloWorkload


def run_experiment(
    spec: ExperimentSpec, spec_path: Path | None, console: Console, repetition: int = 1
) -> tuple[RunRecord, Path]:
    """Run the experiment once; failures and Ctrl-C are recorded, not raised."""
    workload = spec.workload
    model = resolve_model(workload, spec.base_dir) if isinstance(workload, YoloWorkload) else None
    with Interrupts() as interrupts, LiveView(console, spec.load.duration) as view:
        session = RunSession(spec, spec_path, interrupts=interrupts)
        session.record.repetition = repetition
        session.platform.on_step = view.step
        try:
            with session:
                if model is not None:
                    session.record.versions["model_sha256"] = model.sha256
                view.phase("setup", "broker, Prometheus, node exporter")
                endpoints = session.start_stack()
                view.watch(endpoints.prometheus_url, session.id)
                try:
                    path = str(model.path) if model is not None else ""
                    Experiment(session, endpoints, path, console, view).execute()
                finally:
                    view.phase("export", "metrics.parquet from Prometheus")
                    export_metrics(session, console)
                    view.phase("teardown")
        except RunDirError:
            raise
        except (KeyboardInterrupt, Exception):  # noqa: BLE001 - recorded in run.json by the session
            pass
        view.phase("analysis", "summary, verdict, correlations, report")
        analyse(session)
    return session.record, session.dir


def export_metrics(session: RunSession, console: Console) -> None:
    """Export the run's window while Prometheus still runs; a failure is noted, never raised.

    Skipped after a forced stop (Prometheus is already gone).
    """
    url = session.endpoints.prometheus_url if session.endpoints else None
    if url is None or session.interrupts.forced.is_set():
        return
    try:
        export_run(session.dir, session.spec, session.record, url, console)
    except (ScalelabError, OSError) as error:
        session.record.warnings.append(f"export failed: {error}")
    session.save()


def analyse(session: RunSession) -> None:
    """Verdict and report; skipped after a forced stop, cut short by a signal, never raised."""
    interrupts = session.interrupts
    if interrupts.forced.is_set():
        return
    interrupts.arm()
    try:
        analyse_run(session.dir)
    except KeyboardInterrupt:
        session.record.warnings.append("analysis skipped: interrupted")
    except (ScalelabError, OSError) as error:
        session.record.warnings.append(f"analysis failed: {error}")
    else:
        return
    finally:
        interrupts.shield()
    session.save()
