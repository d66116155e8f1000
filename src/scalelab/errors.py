"""Exceptions that carry data. Only the CLI turns them into exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class ScalelabError(Exception):
    """Base of every error scalelab raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a spec: where it is and what was expected."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    value: object = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else ""
        if self.file and not self.line:
            where = f"{self.file}: "
        shown = f" (got {self.value!r})" if self.value is not None else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}{field}{self.message}{shown}"


class SpecError(ScalelabError):
    """A spec that does not parse or does not pass its checks."""

    exit_code = 2

    def __init__(self, problems: list[SpecProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ConfigError(ScalelabError):
    """Bad user input outside the spec (a missing file, a bad option value)."""

    exit_code = 2


class MissingDependencyError(ScalelabError):
    """A program or file scalelab needs is not installed; names how to install it."""

    exit_code = 3

    def __init__(self, what: str, install_hint: str):
        self.what = what
        self.install_hint = install_hint
        super().__init__(f"{what} is missing: {install_hint}")


class ModelError(ScalelabError):
    """A model that is missing, unreadable or not shaped like a detector we can run."""

    exit_code = 2

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"model {path}: {reason}")


class ComponentError(ScalelabError):
    """A component failed to start, became unready, or died during a run."""

    def __init__(self, component: str, reason: str, log_tail: str = ""):
        self.component = component
        self.reason = reason
        self.log_tail = log_tail
        msg = f"{component}: {reason}"
        if log_tail:
            msg += f"\n--- last lines of its log ---\n{log_tail}"
        super().__init__(msg)


class PortInUseError(ScalelabError):
    """A port the user fixed is already taken."""

    exit_code = 2

    def __init__(self, component: str, port: int):
        self.component = component
        self.port = port
        super().__init__(f"{component}: port {port} on 127.0.0.1 is already in use")


class SourceError(ConfigError):
    """A frame source that cannot give a frame: a missing path, an unreadable file, no image.

    `field` is the spec field to blame under `source:` ('path', or 'sensor' for an
    HDF5 recording without that sensor), so a spec check can name it.
    """

    def __init__(self, kind: str, path: object, reason: str, field: str = "path"):
        self.kind = kind
        self.path = path
        self.reason = reason
        self.field = field
        super().__init__(f"{kind} source {path}: {reason}")
